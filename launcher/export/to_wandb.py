"""`--dest wandb`: one W&B run per task (job) with an id derived from the job id, so a second export
resumes the same run instead of creating another. Online needs WANDB_API_KEY in the environment (read
by wandb itself, by name); WANDB_MODE=offline writes the run under ./wandb for a later `wandb sync`.
API used: wandb.init(id=..., resume="allow"), run.summary, wandb.Artifact (wandb 0.31).
"""

from __future__ import annotations

import re

from launcher.export import source
from launcher.export.source import TaskRun
from launcher.export.to_mlflow import metrics, params


def run_id(job_id: str) -> str:
    """W&B run ids allow letters, digits, '-' and '_': 'a1b2c3d4.0' -> 'launcher-a1b2c3d4-0'."""
    return "launcher-" + re.sub(r"[^A-Za-z0-9_-]", "-", job_id)


def exporter(settings: dict):
    try:
        import wandb
    except ImportError:
        from launcher.export.errors import missing_extra

        raise missing_extra("wandb", "wandb") from None

    def export_run(run: TaskRun) -> str:
        wb = wandb.init(
            project=settings.get("project") or "launcher",
            entity=settings.get("entity"),
            id=run_id(run.job_id),
            name=f"{run.model} {run.task} {run.job_id}",
            group=run.sweep_id or run.invocation_id,
            job_type="evaluation",
            tags=[t for t in (run.task, run.model) if t][:2],
            config=params(run),
            resume="allow",
            reinit="finish_previous",
        )
        try:
            wb.summary.update(metrics(run))  # summary, not history: re-exporting overwrites, never appends
            art = wandb.Artifact(name=f"results-{run_id(run.job_id)}", type="evaluation-results")
            rels = (
                source.TASK_RESULTS_JSON,
                source.TASK_RESULTS_YML,
                *((source.TASK_SAMPLES,) if settings.get("log_samples") else ()),
            )
            for name, text in source.artifacts(run, rels):
                with art.new_file(name) as fh:
                    fh.write(text)
            config = source.resolved_config_text(run)
            if config:
                with art.new_file("config.yaml") as fh:
                    fh.write(config)
            wb.log_artifact(art)
        except BaseException:
            wb.finish(exit_code=1)
            raise
        wb.finish()
        return "exported"

    return export_run
