"""Text the CLI prints: tables, the status and results tables, the start report, the dry run, --watch."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict

from launcher.config.values import terminal_safe
from launcher.model import InvocationRecord, JobStatus, Plan, State


def table(headers: list[str], rows: list[list]) -> str:
    """Aligned columns; every cell terminal-safe (reasons, task and metric names come from tasks)."""
    cells = [headers] + [["" if v is None else terminal_safe(str(v)) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells)


def _elapsed(s: JobStatus) -> str:
    if s.started is None:
        return ""
    seconds = int((s.ended or time.time()) - s.started)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def named(task: str, benchmark: str) -> str:
    """A task id and, when the name alone does not say it (a bare NEL name), the benchmark it runs."""
    if not benchmark or benchmark in (task, task.rsplit(".", 1)[0]):
        return task
    return f"{task} ({benchmark})"


def _progress(s: JobStatus) -> str:
    if s.total:
        return f"{s.done}/{s.total}"
    return f"{s.done}/?" if s.done is not None else ""  # a count without a known total (catalogue tasks)


STATUS_HEADERS = ["JOB", "TASK", "STATE", "PROGRESS", "SCORE", "EXIT", "ELAPSED", "REASON", "FOLDER"]


def render(collected, detail: bool = False) -> str:
    """The status table of api.status()'s InvocationStatus list (an invocation that could not be read is
    one row with its error); `detail` adds a row per shard of a sharded task, and below the table each
    catalogue task's image and why, and each invocation's endpoint-proxy counters."""
    text = table(STATUS_HEADERS, _rows(collected, detail))
    if not detail:
        return text
    images = [line for inv in collected for line in image_lines(inv.record.jobs)]
    return "\n".join([text, *images, *proxy_lines(collected)])


def image_lines(jobs) -> list[str]:
    """`image of <job> <task>: <image> (<why>)` for each job whose image was chosen (catalogue tasks)."""
    return [
        terminal_safe(f"image of {j.job_id} {j.task}: {j.image} ({j.image_why})") for j in jobs if j.image_why
    ]


def proxy_lines(collected) -> list[str]:
    """`proxy of <inv> (live): 120 req, 3 cached, ..., p50 52 ms, p95 80 ms; errors: upstream_503 2`."""
    from launcher.proxy.stats import summary as proxy_summary

    lines = []
    for inv in collected:
        if inv.proxy is None:
            continue
        errors = inv.proxy.get("errors") or {}
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(errors.items()) if n)
        when = "live" if inv.proxy_live else "last written"
        line = f"proxy of {inv.record.invocation_id} ({when}): {proxy_summary(inv.proxy)}"
        lines.append(terminal_safe(f"{line}; errors: {kinds}" if kinds else line))
    return lines


def _rows(collected, detail: bool = False) -> list[list]:
    rows = []
    for inv in collected:
        if inv.error:
            rows.append(
                [inv.record.invocation_id, "", "UNKNOWN", "", "", "", "", inv.error, inv.record.folder]
            )
        for s in (x for job in inv.jobs for x in (job, *(job.shards if detail else ()))):
            code = "" if s.exit_code is None else s.exit_code
            rows.append(
                [
                    s.job_id,
                    named(s.task, s.benchmark),
                    s.state.value,
                    _progress(s),
                    s.score,
                    code,
                    _elapsed(s),
                    s.reason,
                    s.folder,
                ]
            )
    return rows


def render_results(collected) -> str:
    """The final table of scores (from each task's results.json) and where the artifacts are."""
    from launcher.store.results import scores

    rows = []
    for inv in collected:
        for s in inv.jobs:
            found = scores(s.folder)  # one task per folder (the harness may name it without our prefix)
            if not found:
                rows.append([s.task, "-", "-", "", "", "", "", "", s.state.value])
            for score in found:
                rows.append(
                    [
                        s.task,
                        score.label,
                        f"{score.value:.4f}",
                        f"± {score.stderr or 0:.4f}",
                        "" if score.chance is None else f"{score.chance:.4f}",
                        "" if score.count is None else score.count,
                        "" if score.errors is None else score.errors,
                        f"{score.answered:.4f}" if score.errors and score.answered is not None else "",
                        s.state.value,
                    ]
                )
    # VALUE scores an errored sample 0 (as the references); ANSWERED leaves errored samples out.
    headers = ["TASK", "METRIC", "VALUE", "STDERR", "CHANCE", "SAMPLES", "ERRORS", "ANSWERED", "STATE"]
    table_text = table(headers, rows)
    folders = "\n".join(f"artifacts: {inv.record.folder}" for inv in collected)
    return f"\nresults:\n{table_text}\n{folders}"


def render_json(collected) -> str:
    out = []
    for inv in collected:
        planned = {j.job_id: j for j in inv.record.jobs}
        jobs = [{**asdict(s), "state": s.state.value, **image_of(planned.get(s.job_id))} for s in inv.jobs]
        entry = {
            "invocation": inv.record.invocation_id,
            "sweep": inv.record.sweep_id,
            "folder": inv.record.folder,
            "jobs": jobs,
        }
        if inv.error:
            entry["error"] = inv.error
        if inv.proxy is not None:
            entry["proxy"] = {**inv.proxy, "live": inv.proxy_live}
        out.append(entry)
    return json.dumps(out, indent=2)


def image_of(job) -> dict:
    return {"image": job.image, "image_why": job.image_why} if job else {}


def start_report(record: InvocationRecord, statuses: list[JobStatus], note: str | None = None) -> str:
    counts: dict[str, int] = {}
    for s in statuses:
        counts[s.state.value] = counts.get(s.state.value, 0) + 1
    summary = ", ".join(f"{n} {state.lower()}" for state, n in counts.items())
    lines = [f"invocation {record.invocation_id}: {len(statuses)} task(s): {summary}"]
    if note:
        lines.append(f"  {note}")
    for s in statuses:
        if s.state in (State.FAILED, State.LOST):
            lines.append(
                terminal_safe(f"  {s.job_id} {s.task}: {s.state.value} (exit {s.exit_code}): {s.reason}")
            )
    chosen: dict[tuple[str, str], int] = {}  # catalogue tasks' images, once per image and reason
    for job in record.jobs:
        if job.image_why:
            chosen[job.image, job.image_why] = chosen.get((job.image, job.image_why), 0) + 1
    lines += [terminal_safe(f"  image:   {i} ({why}): {n} task(s)") for (i, why), n in chosen.items()]
    lines += [
        f"  folder:  {record.folder}",
        f"  status:  launcher status {record.invocation_id}",
        f"  logs:    launcher logs {record.invocation_id}.0 -f",
        f"  kill:    launcher kill {record.invocation_id}",
    ]
    if record.sweep_id:
        lines.append(f"  sweep:   launcher status {record.sweep_id}")
    return "\n".join(lines)


def render_dry_run(spec, plan: Plan) -> str:
    from launcher.store.layout import to_yaml

    parts = [
        "# dry run: nothing was written or started",
        "# resolved config",
        to_yaml(spec.config).rstrip(),
        f"# invocation folder: {plan.folder}",
    ]
    shown = [named(j.task, j.benchmark) for j in plan.jobs]
    if any(" (" in name for name in shown):  # a bare NEL name: say which benchmark it is
        parts.append(f"# tasks: {', '.join(shown)}")
    parts += [f"# {line}" for line in image_lines(plan.jobs)]
    if plan.host_env:
        parts.append(f"# host variables read at run time: {', '.join(plan.host_env)}")
    parts += [f"# checked at submit: {check}" for check in plan.checks]
    for rel, content in plan.files.items():
        parts += [f"# ---- {rel}", content.rstrip()]
    return "\n".join(parts)


SUMMARY_ABOVE = 30  # more jobs than this: --watch prints one summary line instead of a row each


def summary(statuses: list[JobStatus], now: float | None = None) -> str:
    """`12 succeeded, 3 running, 985 pending; samples 4,210/120,000; ETA 1:02:03`."""
    now = time.time() if now is None else now
    counts: dict[str, int] = {}
    for s in statuses:
        counts[s.state.value] = counts.get(s.state.value, 0) + 1
    order = [
        st.value
        for st in (State.SUCCEEDED, State.RUNNING, State.PENDING, State.FAILED, State.LOST, State.KILLED)
    ]
    parts = [", ".join(f"{counts[name]} {name.lower()}" for name in order if name in counts)]
    done = sum(s.done or 0 for s in statuses if s.total)  # a count without a total (n/?) would skew it
    total = sum(s.total or 0 for s in statuses)
    if total:
        parts.append(f"samples {done:,}/{total:,}")
        starts = [s.started for s in statuses if s.started is not None]
        if done and starts and done < total and now > min(starts):
            rate = done / (now - min(starts))
            parts.append(f"ETA {_clock(int((total - done) / rate))}")
    return "; ".join(parts)


def _clock(seconds: int) -> str:
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def watch(
    refresh, until_done: bool = True, interval: float = 1.0, all_rows: bool = False, detail: bool = False
) -> int:
    """Follow jobs until every one ends; exit 1 if any did not succeed. `refresh()` -> InvocationStatus list.

    On a terminal the table is redrawn in place (one summary line above SUMMARY_ABOVE jobs, unless
    `all_rows`); in a log (CI, a pipe) one line is written when a state changes, and at most every 10 s
    while only progress moves.
    """
    tty = sys.stdout.isatty()
    last_text, last_states, last_line_at = "", None, 0.0
    while True:
        collected = refresh()
        statuses = [s for inv in collected for s in inv.jobs]
        big = len(statuses) > SUMMARY_ABOVE and not all_rows
        if tty:
            text = summary(statuses) if big else render(collected, detail)
            text = "\n".join([text, *proxy_lines(collected)]) if detail and big else text
            if text != last_text:
                print(f"\x1b[H\x1b[2J{text}", flush=True)
                last_text = text
        else:
            states = [s.state for s in statuses]
            if states != last_states or time.monotonic() - last_line_at >= 10:
                if big:
                    line = summary(statuses)
                else:
                    line = "  ".join(f"{s.task} {s.state.value} {_progress(s)}".rstrip() for s in statuses)
                print(f"{time.strftime('%H:%M:%S')}  {terminal_safe(line)}", flush=True)
                for extra in proxy_lines(collected) if detail else ():
                    print(f"{time.strftime('%H:%M:%S')}  {extra}", flush=True)
                last_states, last_line_at = states, time.monotonic()
        if until_done and all(s.state.terminal for s in statuses) and not any(i.error for i in collected):
            if not tty and not big:
                print(render(collected, detail), flush=True)
            elif not tty and detail:
                print("\n".join(proxy_lines(collected)), flush=True)
            print(render_results(collected), flush=True)
            return 0 if all(s.state == State.SUCCEEDED for s in statuses) else 1
        time.sleep(interval)


def overall(states: list[State]) -> str:
    for candidate in (State.RUNNING, State.PENDING, State.FAILED, State.LOST, State.KILLED):
        if candidate in states:
            return candidate.value
    return State.SUCCEEDED.value


def runs_rows(runs: list) -> list[dict]:
    """`ls runs`: one row per api.Run."""
    rows = []
    for run in runs:
        entry, inv = run.entry, run.status
        if inv is None:
            tasks, run_state = "", "MISSING"
        else:
            tasks = len(inv.record.jobs)
            run_state = f"UNKNOWN ({inv.error})" if inv.error else overall([s.state for s in inv.jobs])
        rows.append(
            {
                "invocation": entry.id,
                "sweep": entry.sweep or "",
                "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.created)),
                "executor": entry.executor,
                "tasks": tasks,
                "state": run_state,
                "folder": entry.folder,
            }
        )
    return rows
