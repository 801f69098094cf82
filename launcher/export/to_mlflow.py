"""`--dest mlflow`: one MLflow run per task (job), found again by its `launcher.job` tag.

Why per task, not per invocation with nested runs: a task is what people compare across models and
checkpoints, and MLflow's run table, charts and search work on flat runs; the invocation and sweep ids
are tags, so grouping by invocation is one filter away.
Idempotent: a job whose run is complete is skipped; a run left incomplete by a failed export is deleted
and written again. API used: mlflow.tracking.MlflowClient (mlflow 3.17).
"""

from __future__ import annotations

import os
import re
import time

from launcher import __version__
from launcher.export import source
from launcher.export.source import TaskRun

TAG_JOB = "launcher.job"
TAG_INVOCATION = "launcher.invocation"
TAG_SWEEP = "launcher.sweep"
TAG_COMPLETE = "launcher.export_complete"
SAMPLING = ("temperature", "top_p", "max_tokens", "seed", "stop", "limit_samples", "repeats")


def params(run: TaskRun) -> dict[str, str]:
    p = {
        "model": run.model,
        "task": run.task,
        "protocol": run.protocol or "",
        "invocation_id": run.invocation_id,
        "job_id": run.job_id,
        "launcher_version": __version__,
        "samples": "" if run.samples is None else str(run.samples),
        "endpoint_type": str(run.run_config.get("endpoint_type", "")),
    }
    gen = run.run_config.get("params") or {}
    p.update({k: str(gen[k]) for k in SAMPLING if gen.get(k) is not None})
    return {k: v[:6000] for k, v in p.items()}  # MLflow's param value limit (6000 chars in mlflow 2.x/3.x)


# MLflow (3.x) accepts only letters, digits and `_ - . : /` and spaces in metric names. lm-eval's keys are
# `metric,filter` (exact_match,flexible-extract) and HumanEval's `pass@1`: `,` becomes `/` (a section in
# MLflow's and W&B's charts), `@` becomes `_at_`, any other character `_uXXXX_`. The original name is kept
# in a `launcher.metric.<exported name>` tag; two names meeting in one exported name are refused.
_RENAMED = {",": "/", "@": "_at_"}
_ACCEPTED = re.compile(r"[\w\-. :/]")
TAG_METRIC = "launcher.metric."


def exported_name(name: str) -> str:
    """The name MLflow and W&B receive: 'exact_match,flexible-extract' -> 'exact_match/flexible-extract'."""
    return "".join(
        c if c.isascii() and _ACCEPTED.fullmatch(c) else _RENAMED.get(c, f"_u{ord(c):04x}_") for c in name
    )


def metric_names(run: TaskRun) -> dict[str, str]:
    """Exported name -> the task's own metric name, for every score and its stderr."""
    out: dict[str, str] = {}
    for s in run.scores:
        for own in (s.name, f"{s.name}_stderr") if s.stderr is not None else (s.name,):
            name = exported_name(own)
            if out.setdefault(name, own) != own:
                raise ValueError(
                    f"metrics {out[name]!r} and {own!r} of {run.job_id} would both export as {name!r}"
                )
    return out


def metrics(run: TaskRun) -> dict[str, float]:
    out = {}
    for s in run.scores:
        out[exported_name(s.name)] = s.value
        if s.stderr is not None:
            out[exported_name(f"{s.name}_stderr")] = float(s.stderr)
    metric_names(run)  # refuses a collision
    return out


def tags(run: TaskRun) -> dict[str, str]:
    t = {TAG_JOB: run.job_id, TAG_INVOCATION: run.invocation_id, "model": run.model, "task": run.task}
    t.update({TAG_METRIC + name: own for name, own in metric_names(run).items() if name != own})
    if run.sweep_id:
        t[TAG_SWEEP] = run.sweep_id
    return t


def client(settings: dict):
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        from launcher.export.errors import missing_extra

        raise missing_extra("mlflow", "mlflow") from None
    uri = settings.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI")
    return MlflowClient(tracking_uri=uri) if uri else MlflowClient()


def find_runs(c, experiment_id: str, job_id: str):
    return c.search_runs([experiment_id], filter_string=f"tags.`{TAG_JOB}` = '{job_id}'", max_results=10)


def export_run(c, experiment_id: str, run: TaskRun, with_samples: bool) -> str:
    """Returns 'exported' or 'already exported'."""
    from mlflow.entities import Metric, Param

    for existing in find_runs(c, experiment_id, run.job_id):
        if existing.data.tags.get(TAG_COMPLETE) == "1":
            return "already exported"
        c.delete_run(existing.info.run_id)  # a half-written run from an earlier failed export
    created = c.create_run(experiment_id, tags=tags(run), run_name=f"{run.model} {run.task} {run.job_id}")
    run_id = created.info.run_id
    try:
        now = int(time.time() * 1000)
        c.log_batch(
            run_id,
            metrics=[Metric(k, v, now, 0) for k, v in metrics(run).items()],
            params=[Param(k, v) for k, v in params(run).items()],
        )
        rels = (
            source.TASK_RESULTS_JSON,
            source.TASK_RESULTS_YML,
            *((source.TASK_SAMPLES,) if with_samples else ()),
        )
        for name, text in source.artifacts(run, rels):
            c.log_text(run_id, text, name)
        config = source.resolved_config_text(run)
        if config:
            c.log_text(run_id, config, "config.yaml")
        c.set_tag(run_id, TAG_COMPLETE, "1")
        c.set_terminated(run_id, "FINISHED")
    except BaseException:
        c.set_terminated(run_id, "FAILED")
        raise
    return "exported"


def exporter(settings: dict):
    """A function exporting one TaskRun; connecting and finding the experiment happen on first use."""
    c = client(settings)
    name = settings.get("experiment") or "launcher"
    experiment_ids: list[str] = []

    def export_one(run: TaskRun) -> str:
        if not experiment_ids:
            experiment = c.get_experiment_by_name(name)
            experiment_ids.append(experiment.experiment_id if experiment else c.create_experiment(name))
        return export_run(c, experiment_ids[0], run, bool(settings.get("log_samples")))

    return export_one
