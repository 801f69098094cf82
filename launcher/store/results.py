"""The one reader of a task's results and of the harness's progress file (ours, or in a catalogue task
nemo-evaluator's count of answered requests: nel_progress).

Results: results.json from our harness, or results.yml alone as NEL's harness images write it:
results.tasks.<task>.metrics.<metric>.scores.<name>.{value, stats{stderr, count, errors}} (or
results.groups.<group>... when no task has an entry), with the task's `protocol`, `chance`, `headline`
and `samples` (a count in launcher 0.1, {items, size, subsample, repeats} since 0.2) next to `metrics` or
at the top level, and `model_id`, `finished_at`, `config` at the top level.
`status`, `results`, export and report all read through here. Only regular files are opened (a task could
leave a FIFO there); a file is never repaired.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from launcher.errors import LauncherError
from launcher.store.layout import (
    NEL_PROGRESS,
    NEL_RUN_CONFIG,
    TASK_PROGRESS,
    TASK_RESULTS_JSON,
    TASK_RESULTS_YML,
    read_regular,
)


class UnreadableResults(LauncherError):
    """A results file that is there but is not JSON (YAML); `status` shows no score, export says so."""


@dataclass(frozen=True)
class Score:
    task: str
    metric: str
    name: str
    value: float
    stderr: float | None = None
    count: int | None = None
    errors: int | None = None
    chance: float | None = None  # chance level of the task's headline metric, when the harness says
    protocol: str = ""  # the reference protocol the task reproduces, when the harness says
    answered: float | None = None  # the value over answered samples (errored ones scored 0 in `value`)

    @property
    def label(self) -> str:
        return self.metric if self.name == self.metric else f"{self.metric}/{self.name}"


@dataclass(frozen=True)
class TaskResults:
    """One task's entry in a results document."""

    task: str
    scores: tuple[Score, ...]
    protocol: str = ""
    chance: float | None = None
    headline: str | None = None  # the metric the task leads with
    items: int | None = None  # items evaluated
    subsample: str | None = None  # how the items were drawn when fewer than the reference split
    repeats: int | None = None  # samples per item (`<id>#<repeat>` keys when more than 1)


@dataclass(frozen=True)
class Results:
    """A task folder's results document."""

    tasks: tuple[TaskResults, ...]
    model_id: str | None = None
    finished_at: str | None = None
    config: dict = field(default_factory=dict)  # the harness run config (variable names only, no values)

    def entry(self, task: str) -> TaskResults | None:
        """The named task's entry, or the only one (a harness may name the task otherwise, as NEL's do).
        `task` may be a repeated task's id, `<name>.<position>` (config.schema.task_ids): the harness
        wrote its entry under the name."""
        repeated = re.fullmatch(r"(.+)\.\d+", task)
        for name in (task, repeated.group(1)) if repeated else (task,):
            named = [t for t in self.tasks if t.task == name]
            if named:
                return named[0]
        return self.tasks[0] if len(self.tasks) == 1 else None


def read(task_dir: str | Path) -> Results | None:
    """The task's results; None when it has none yet. A document shaped differently (a custom task's)
    gives what can be read of it; a file that does not parse raises UnreadableResults."""
    data = _document(str(task_dir))
    if data is None:
        return None
    top = data if isinstance(data, dict) else {}
    found = top.get("results") if isinstance(top.get("results"), dict) else {}
    # A harness that scores only a group of sub-tasks (NEL's bfcl: results.groups.bfcl) is read from there.
    tasks = found.get("tasks") or found.get("groups")
    entries = tuple(
        _entry(str(task), body, top) for task, body in (tasks.items() if isinstance(tasks, dict) else ())
    )
    config = top.get("config")
    return Results(
        entries,
        _str(top.get("model_id")),
        _str(top.get("finished_at")),
        config if isinstance(config, dict) else {},
    )


def _document(task_dir: str):
    text = read_regular(os.path.join(task_dir, TASK_RESULTS_JSON))
    if text is not None:
        try:
            return json.loads(text)
        except ValueError as err:
            raise UnreadableResults(
                f"cannot read {os.path.join(task_dir, TASK_RESULTS_JSON)}: {err}"
            ) from None
    text = read_regular(os.path.join(task_dir, TASK_RESULTS_YML))
    if text is None:
        return None
    import yaml  # only for a harness image that writes YAML alone (NEL's)

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        problem = " ".join(str(err).split())  # YAML's messages span lines
        raise UnreadableResults(
            f"cannot read {os.path.join(task_dir, TASK_RESULTS_YML)}: {problem}"
        ) from None


def _entry(task: str, body, top: dict) -> TaskResults:
    body = body if isinstance(body, dict) else {}
    protocol = str(body.get("protocol") or top.get("protocol") or "")
    chance = _num(body.get("chance")) if _num(body.get("chance")) is not None else _num(top.get("chance"))
    scores = []
    metrics = body.get("metrics")
    for metric, entry in metrics.items() if isinstance(metrics, dict) else ():
        named = entry.get("scores") if isinstance(entry, dict) else None
        for name, score in named.items() if isinstance(named, dict) else ():
            if not isinstance(score, dict) or _num(score.get("value")) is None:
                continue
            stats = score.get("stats") if isinstance(score.get("stats"), dict) else {}
            scores.append(
                Score(
                    task,
                    str(metric),
                    str(name),
                    float(score["value"]),
                    _num(stats.get("stderr")),
                    _int(stats.get("count")),
                    _int(stats.get("errors")),
                    chance,
                    protocol,
                    _num(stats.get("answered")),
                )
            )
    samples = body.get("samples")
    items = _items(samples)
    return TaskResults(
        task,
        tuple(scores),
        protocol,
        chance,
        _str(body.get("headline")),
        items if items is not None else _items(top.get("samples")),
        _str(samples.get("subsample")) if isinstance(samples, dict) else None,
        _int(samples.get("repeats")) if isinstance(samples, dict) else None,
    )


def scores(task_dir: str | Path) -> list[Score]:
    """Every score in the task's results; [] when absent, unreadable or shaped differently."""
    try:
        found = read(task_dir)
    except UnreadableResults:
        return []
    return [s for t in found.tasks for s in t.scores] if found else []


def headline(task_dir: str | Path) -> str:
    """`name=value` pairs, the SCORE column of `status`; with errored samples (scored 0 in each value),
    their count and the first score over answered samples follow."""
    found = scores(task_dir)
    text = " ".join(f"{s.name}={s.value:.4f}" for s in found)
    first = found[0] if found else None
    if first is not None and first.errors and first.answered is not None:
        text += f" ({first.errors} errored; answered {first.name}={first.answered:.4f})"
    return text


def progress(task_dir: str | Path) -> tuple[int | None, int | None]:
    """(done, total): our harness's progress.json, else a NEL catalogue task's (nel_progress)."""
    text = read_regular(os.path.join(task_dir, TASK_PROGRESS))
    if text is None:
        return nel_progress(task_dir)
    try:
        data = json.loads(text or "")
        return int(data["done"]), int(data["total"])
    except (ValueError, TypeError, KeyError):
        return None, None


# Harnesses that send one request per sample and repeat (simple-evals 26.3: `--num_repeats n_samples`);
# others may send several (one per choice for loglikelihood tasks), so their total stays unknown.
ONE_REQUEST_PER_SAMPLE = frozenset({"simple_evals"})


def nel_progress(task_dir: str | Path) -> tuple[int | None, int | None]:
    """A catalogue task's progress in requests, not samples: nemo-evaluator 0.2.8's count of answered
    requests (results/progress: status 200, not served from its cache) against limit_samples x n_samples
    of the run_config.yml it wrote at start (`config.params`, harness defaults merged) for a harness in
    ONE_REQUEST_PER_SAMPLE. Total None otherwise, and without a limit (the dataset's size is the
    harness's)."""
    count = read_regular(os.path.join(task_dir, NEL_PROGRESS))
    try:
        done = int((count or "").strip())
    except ValueError:
        return None, None
    import yaml

    try:
        config = yaml.load(read_regular(os.path.join(task_dir, NEL_RUN_CONFIG)) or "", Loader=_yaml_loader())
        params = config["config"]["params"]
        limit, repeats = params.get("limit_samples"), (params.get("extra") or {}).get("n_samples", 1)
        if config.get("framework_name") not in ONE_REQUEST_PER_SAMPLE:
            return done, None
    except (yaml.YAMLError, TypeError, KeyError, AttributeError):
        return done, None
    whole = all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (limit, repeats))
    return done, limit * repeats if whole else None  # a fractional limit_samples: total unknown


def _yaml_loader():
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # status reads one per catalogue task


def _items(samples) -> int | None:
    """`samples`: a count (launcher 0.1) or {items, ...} (0.2)."""
    return _int(samples.get("items") if isinstance(samples, dict) else samples)


def _num(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _int(value) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _str(value) -> str | None:
    return value if isinstance(value, str) and value else None
