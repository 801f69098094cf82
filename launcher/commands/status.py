"""Status tables, live watching and the runs listing."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict

from launcher.executors.base import JobStatus, State


def table(headers: list[str], rows: list[list]) -> str:
    cells = [headers] + [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells)


def collect(records, only_jobs=frozenset()) -> list[tuple[object, list[JobStatus]]]:
    from launcher.commands import _executor

    out = []
    for record in records:
        statuses = _executor(record).status(record)
        if only_jobs:
            statuses = [s for s in statuses if s.job_id in only_jobs]
        out.append((record, statuses))
    return out


def _elapsed(s: JobStatus) -> str:
    if s.started is None:
        return ""
    seconds = int((s.ended or time.time()) - s.started)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _progress(s: JobStatus) -> str:
    if s.total:
        return f"{s.done}/{s.total}"
    return ""


def render(collected) -> str:
    rows = []
    for _record, statuses in collected:
        for s in statuses:
            code = "" if s.exit_code is None else s.exit_code
            rows.append(
                [
                    s.job_id,
                    s.task,
                    s.state.value,
                    _progress(s),
                    s.score,
                    code,
                    _elapsed(s),
                    s.reason,
                    s.folder,
                ]
            )
    headers = ["JOB", "TASK", "STATE", "PROGRESS", "SCORE", "EXIT", "ELAPSED", "REASON", "FOLDER"]
    return table(headers, rows)


def render_results(collected) -> str:
    """The final table of scores (from each task's results.json) and where the artifacts are."""
    from pathlib import Path

    from launcher.state import RESULTS_JSON

    rows = []
    for _record, statuses in collected:
        for s in statuses:
            try:
                data = json.loads((Path(s.folder) / RESULTS_JSON).read_text())
                metrics = data["results"]["tasks"][s.task]["metrics"]
            except (OSError, ValueError, KeyError, TypeError):
                rows.append([s.task, "-", "-", "", "", "", s.state.value])
                continue
            for metric, entry in metrics.items():
                for name, score in entry["scores"].items():
                    stats = score.get("stats", {})
                    rows.append(
                        [
                            s.task,
                            f"{metric}" if name == metric else f"{metric}/{name}",
                            f"{score['value']:.4f}",
                            f"± {stats.get('stderr', 0):.4f}",
                            stats.get("count", ""),
                            stats.get("errors", ""),
                            s.state.value,
                        ]
                    )
    table_text = table(["TASK", "METRIC", "VALUE", "STDERR", "SAMPLES", "ERRORS", "STATE"], rows)
    folders = "\n".join(f"artifacts: {record.folder}" for record, _ in collected)
    return f"\nresults:\n{table_text}\n{folders}"


def render_json(collected) -> str:
    out = []
    for record, statuses in collected:
        jobs = [{**asdict(s), "state": s.state.value} for s in statuses]
        out.append(
            {
                "invocation": record.invocation_id,
                "sweep": record.sweep_id,
                "folder": record.folder,
                "jobs": jobs,
            }
        )
    return json.dumps(out, indent=2)


def print_status(records, as_json: bool = False, only_jobs=frozenset()) -> int:
    collected = collect(records, only_jobs)
    print(render_json(collected) if as_json else render(collected))
    return 0


def watch(records, until_done: bool = True, only_jobs=frozenset(), interval: float = 1.0) -> int:
    """Follow jobs until every one ends; exit 1 if any did not succeed.

    On a terminal the table is redrawn in place; in a log (CI, a pipe) one line is written when a state
    changes, and at most every 10 s while only progress moves.
    """
    tty = sys.stdout.isatty()
    last_text, last_states, last_line_at = "", None, 0.0
    while True:
        collected = collect(records, only_jobs)
        statuses = [s for _, group in collected for s in group]
        if tty:
            text = render(collected)
            if text != last_text:
                print(f"\x1b[H\x1b[2J{text}", flush=True)
                last_text = text
        else:
            states = [s.state for s in statuses]
            if states != last_states or time.monotonic() - last_line_at >= 10:
                summary = "  ".join(f"{s.task} {s.state.value} {_progress(s)}".rstrip() for s in statuses)
                print(f"{time.strftime('%H:%M:%S')}  {summary}", flush=True)
                last_states, last_line_at = states, time.monotonic()
        if until_done and all(s.state.terminal for s in statuses):
            if not tty:
                print(render(collected), flush=True)
            print(render_results(collected), flush=True)
            return 0 if all(s.state == State.SUCCEEDED for s in statuses) else 1
        time.sleep(interval)


def runs_rows(limit: int) -> list[dict]:
    from launcher import state
    from launcher.commands import _record_or_none

    rows = []
    for entry in reversed(state.index_entries()[-limit:] if limit else state.index_entries()):
        record = _record_or_none(entry["folder"])
        if record is None:
            run_state, tasks = "MISSING", ""
        else:
            try:
                ((_, statuses),) = collect([record])
                run_state = overall([s.state for s in statuses])
            except Exception as err:  # one unreadable run must not hide the others
                run_state = f"UNKNOWN ({type(err).__name__})"
                statuses = record.jobs
            tasks = len(statuses)
        rows.append(
            {
                "invocation": entry["id"],
                "sweep": entry.get("sweep") or "",
                "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry["created"])),
                "executor": entry["executor"],
                "tasks": tasks,
                "state": run_state,
                "folder": entry["folder"],
            }
        )
    return rows


def overall(states: list[State]) -> str:
    for candidate in (State.RUNNING, State.PENDING, State.FAILED, State.LOST, State.KILLED):
        if candidate in states:
            return candidate.value
    return State.SUCCEEDED.value
