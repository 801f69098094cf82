"""Export orchestration shared by `launcher export` and the auto-export hook."""

from __future__ import annotations

import sys
from pathlib import Path

from launcher.errors import LauncherError
from launcher.export import source
from launcher.export.errors import ExportFailed, failed
from launcher.export.source import TaskRun

DESTINATIONS = ("local", "mlflow", "wandb")
FORMATS = ("csv", "json")


def check_dest(dest: str) -> None:
    if dest not in DESTINATIONS:
        raise LauncherError(f"--dest {dest!r} is not a destination; allowed: {', '.join(DESTINATIONS)}")


def export_runs(runs: list[TaskRun], dest: str, settings: dict, out=sys.stdout) -> int:
    """Export finished jobs to one destination; jobs without results are named and skipped. 0 on success."""
    check_dest(dest)
    done = [r for r in runs if r.has_results]
    for r in runs:
        if not r.has_results:
            print(f"{r.job_id} {r.task}: no results yet, skipped", file=out)
    if not done:
        raise LauncherError(
            "nothing to export: none of the given jobs has results yet (`launcher status` shows why)"
        )
    if dest == "local":
        from launcher.export import local

        fmt = settings.get("format") or "csv"
        if fmt not in FORMATS:
            raise LauncherError(
                f"--format {fmt!r} is not allowed for --dest local; allowed: {', '.join(FORMATS)}"
            )
        try:
            path, n = local.export(done, settings.get("path"), fmt)
        except OSError as err:
            raise failed(
                "local", "the table", err, f"launcher export {done[0].invocation_id} --dest local -o FILE"
            ) from None
        print(f"{n} rows for {len(done)} jobs in {path}", file=out)
        return 0
    if dest == "mlflow":
        from launcher.export.to_mlflow import exporter
    else:
        from launcher.export.to_wandb import exporter
    one = exporter(settings)
    exported, failures = 0, []
    for i, run in enumerate(done):
        try:
            outcome = one(run)
        except LauncherError:
            raise
        except Exception as err:  # the destination's error: report it, keep going only if it worked before
            if not exported:  # nothing got through (unreachable, bad credentials): one line, not one per job
                rest = " ".join(r.job_id for r in done[i:])
                raise failed(
                    dest, f"job {run.job_id} ({run.task})", err, f"launcher export {rest} --dest {dest}"
                ) from None
            failures.append(run.job_id)
            retry = f"launcher export {run.job_id} --dest {dest}"
            print(f"error: {failed(dest, f'job {run.job_id} ({run.task})', err, retry)}", file=sys.stderr)
            continue
        exported += 1
        print(f"{run.job_id} {run.task}: {outcome} to {dest}", file=out)
    if failures:
        raise ExportFailed(
            f"{len(failures)} of {len(done)} jobs were not exported to {dest}; "
            f"retry with: launcher export {' '.join(failures)} --dest {dest}"
        )
    return 0


def auto_export(folder: str | Path, destinations: list[str], settings: dict) -> list[str]:
    """Called once an invocation has finished: export it to each destination; never raises.

    `settings` maps a destination to its options (the `export` config group), e.g.
    {"mlflow": {"tracking_uri": ..., "experiment": ...}, "local": {"path": ..., "format": "csv"}}.
    Returns one line per destination that failed (also printed), naming the retry command.
    """
    problems = []
    for dest in destinations:
        try:
            runs = source.load([str(folder)])
            export_runs(runs, dest, dict(settings.get(dest) or {}))
        except LauncherError as err:
            problems.append(f"auto-export to {dest}: {err}")
        except Exception as err:  # never let an exporter bug hide the finished run
            problems.append(f"auto-export to {dest}: {type(err).__name__}: {err}")
    for line in problems:
        print(f"warning: {line}", file=sys.stderr)
    return problems
