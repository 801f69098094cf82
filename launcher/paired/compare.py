"""`launcher compare BASE CAND`: per task, the two runs' items paired by sample id and compared
(launcher.paired.stats). Runs are paired only when they measured the same thing: the same task, protocol,
item limit, subsample and set of items; anything else is refused in one line naming what differs. Items
that errored on either side have no score to pair: they are left out and counted in the output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from launcher.errors import LauncherError
from launcher.export.source import TASK_SAMPLES, TaskRun
from launcher.paired import records, stats

PASS_AT_1 = "pass@1"  # NeMo Evaluator's metric names, accepted for a task's headline metric (gate policies)
MEAN_REWARD = "mean_reward"


class NotPaired(LauncherError):
    """Two runs that cannot be compared item by item."""


class NoRecords(NotPaired):
    """A run without per-sample records (a catalogue task's harness keeps its own): nothing to pair."""


@dataclass(frozen=True)
class TaskComparison:
    task: str
    metric: str
    protocol: str
    base_job: str
    cand_job: str
    stats: stats.Paired
    errored: tuple[int, int] = (0, 0)  # items without a score in base, in candidate (not paired)
    repeats: tuple[int, int] = (1, 1)
    regressed_items: tuple[str, ...] = ()
    improved_items: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {
            "task": self.task,
            "metric": self.metric,
            "protocol": self.protocol,
            "base_job": self.base_job,
            "candidate_job": self.cand_job,
            **self.stats.as_dict(),
            "errored": {"base": self.errored[0], "candidate": self.errored[1]},
            "repeats": {"base": self.repeats[0], "candidate": self.repeats[1]},
            "regressed_items": list(self.regressed_items),
            "improved_items": list(self.improved_items),
        }


@dataclass(frozen=True)
class Comparison:
    base: tuple[str, ...]
    candidate: tuple[str, ...]
    tasks: tuple[TaskComparison, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)  # tasks present on one side only

    def as_dict(self) -> dict:
        return {
            "base": list(self.base),
            "candidate": list(self.candidate),
            "confidence": stats.CONFIDENCE,
            "power": stats.POWER,
            "seed": stats.SEED,
            "tasks": [t.as_dict() for t in self.tasks],
            "notes": list(self.notes),
        }


def by_task(runs: list[TaskRun], side: str) -> dict[str, TaskRun]:
    """task -> its one run; a side holding a task twice (a sweep) is refused: name one job or cell."""
    out: dict[str, TaskRun] = {}
    for run in runs:
        if run.task in out:
            raise NotPaired(
                f"{side} holds task {run.task} twice ({out[run.task].job_id}, {run.job_id}); "
                "name one invocation, job or sweep cell"
            )
        out[run.task] = run
    return out


def compare_runs(
    base: list[TaskRun],
    cand: list[TaskRun],
    task: str | None = None,
    metric: str | None = None,
    names: tuple[tuple[str, ...], tuple[str, ...]] = ((), ()),
) -> Comparison:
    base_tasks, cand_tasks = by_task(base, "BASE"), by_task(cand, "CAND")
    if task is not None:
        for side, tasks in (("BASE", base_tasks), ("CAND", cand_tasks)):
            if task not in tasks:
                raise NotPaired(
                    f"--task {task!r}: {side} has no such task; it has {', '.join(tasks) or 'none'}"
                )
        base_tasks, cand_tasks = {task: base_tasks[task]}, {task: cand_tasks[task]}
    common = [t for t in base_tasks if t in cand_tasks]
    if not common:
        raise NotPaired(
            f"BASE and CAND share no task (BASE: {', '.join(base_tasks) or 'none'}; "
            f"CAND: {', '.join(cand_tasks) or 'none'})"
        )
    notes = [f"{t}: only in BASE, not compared" for t in base_tasks if t not in cand_tasks]
    notes += [f"{t}: only in CAND, not compared" for t in cand_tasks if t not in base_tasks]
    compared = tuple(pair(base_tasks[t], cand_tasks[t], metric) for t in common)
    return Comparison(names[0], names[1], compared, tuple(notes))


def pair(base: TaskRun, cand: TaskRun, metric: str | None = None) -> TaskComparison:
    """The paired comparison of one task's two runs on `metric` (default: the task's headline)."""
    task = base.task
    for side, run in (("BASE", base), ("CAND", cand)):
        if not run.has_results:
            raise NotPaired(
                f"{task}: {side} job {run.job_id} has no results yet; `launcher status {run.job_id}`"
            )
    for what, b, c in (
        ("protocol", base.protocol, cand.protocol),
        ("item limit (samples)", base.samples, cand.samples),
        ("subsample", base.subsample, cand.subsample),
    ):
        if b != c:
            raise NotPaired(
                f"{task}: the runs differ in {what}: BASE {b!r}, CAND {c!r}; compare like with like"
            )
    metric = metric or base.headline or base.scores[0].metric
    base_items, cand_items = _read(base, metric), _read(cand, metric)
    for side, run, items in (("BASE", base, base_items), ("CAND", cand, cand_items)):
        if not items.attempted:
            raise NoRecords(
                f"{task}: {side} job {run.job_id} has no per-sample records ({TASK_SAMPLES}) to pair"
            )
    _same_items(task, base_items, cand_items)
    base_values, cand_values = base_items.values, cand_items.values
    paired_ids = [i for i in base_values if i in cand_values]
    if not paired_ids:
        raise NotPaired(f"{task}: no item has a score in both runs (every item errored on one side)")
    categories = [base_items.categories.get(i) for i in paired_ids]
    base_list, cand_list = [base_values[i] for i in paired_ids], [cand_values[i] for i in paired_ids]
    result = stats.paired(
        base_list,
        cand_list,
        categories if all(categories) else None,
    )
    return TaskComparison(
        task=task,
        metric=metric,
        protocol=base.protocol or "",
        base_job=base.job_id,
        cand_job=cand.job_id,
        stats=result,
        errored=(
            len(base_items.attempted - base_values.keys()),
            len(cand_items.attempted - cand_values.keys()),
        ),
        repeats=(base.repeats or 1, cand.repeats or 1),
        regressed_items=tuple(i for i, b, c in zip(paired_ids, base_list, cand_list, strict=True) if c < b),
        improved_items=tuple(i for i, b, c in zip(paired_ids, base_list, cand_list, strict=True) if c > b),
    )


def _same_items(task: str, base: records.Items, cand: records.Items) -> None:
    if base.attempted == cand.attempted:
        return
    only_base, only_cand = sorted(base.attempted - cand.attempted), sorted(cand.attempted - base.attempted)
    parts = [
        f"{len(ids)} only in {side} ({', '.join(ids[:3])}{', ...' if len(ids) > 3 else ''})"
        for side, ids in (("BASE", only_base), ("CAND", only_cand))
        if ids
    ]
    raise NotPaired(
        f"{task}: the runs have different sample sets: {'; '.join(parts)}; rerun on the same items"
    )


def _read(run: TaskRun, metric: str) -> records.Items:
    """Per-item values of `metric`; NeMo Evaluator's `mean_reward` and `pass@1` name the headline metric's
    mean and its share of repeats scoring above 0."""
    headline = run.headline or (run.scores[0].metric if run.scores else "")
    known = {s.metric for s in run.scores}
    if metric in (MEAN_REWARD, PASS_AT_1):
        return records.read(run, headline, passing=metric == PASS_AT_1)
    if metric not in known:
        allowed = ", ".join([*sorted(known), MEAN_REWARD, PASS_AT_1])
        raise NotPaired(f"{run.task}: no metric {metric!r} in job {run.job_id}; available: {allowed}")
    return records.read(run, metric)
