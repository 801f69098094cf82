"""The flat results table: one row per task x score, the shape spreadsheets and `--dest local` use."""

from __future__ import annotations

from launcher.export.source import TaskRun

COLUMNS = (
    "invocation_id",
    "job_id",
    "sweep_id",
    "model",
    "task",
    "metric",
    "value",
    "stderr",
    "samples",
    "errors",
    "chance",
    "protocol",
    "finished_at",
)
KEY = ("job_id", "metric")  # a row's identity: exporting a job again replaces its rows


def rows(runs: list[TaskRun]) -> list[dict]:
    out = []
    for run in runs:
        for s in run.scores:
            out.append(
                {
                    "invocation_id": run.invocation_id,
                    "job_id": run.job_id,
                    "sweep_id": run.sweep_id or "",
                    "model": run.model,
                    "task": run.task,
                    "metric": s.name,
                    "value": s.value,
                    "stderr": s.stderr,
                    "samples": s.count if s.count is not None else run.samples,
                    "errors": s.errors,
                    "chance": run.chance,
                    "protocol": run.protocol or "",
                    "finished_at": run.finished_at or "",
                }
            )
    return out


def merge(existing: list[dict], new: list[dict]) -> list[dict]:
    """`existing` with rows of the same key replaced in place and the others appended: idempotent."""
    index = {tuple(str(r.get(k, "")) for k in KEY): i for i, r in enumerate(existing)}
    merged = list(existing)
    for row in new:
        key = tuple(str(row.get(k, "")) for k in KEY)
        if key in index:
            merged[index[key]] = row
        else:
            index[key] = len(merged)
            merged.append(row)
    return merged
