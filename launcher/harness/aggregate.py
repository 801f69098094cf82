"""From per-sample records to results.json: per-item mean over repeats, then the task mean and its
standard error over items.

An errored sample (a request that failed after its retries, a scorer error, a program without a verdict)
scores 0 in the headline value, as the references score an answer they did not get (simple-evals scores an
empty reply; lm-eval has no way to leave a sample out): a model whose hardest prompts make the server refuse
them cannot look better for it. The score over answered samples only, and the error count, are reported
beside it; `max_error_fraction` only decides whether the task failed."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from launcher.harness.api import Task


@dataclass(frozen=True)
class Tally:
    values: Mapping[str, float]  # metric -> mean over items, an errored sample scoring 0
    stderr: Mapping[str, float]
    items: int  # items with at least one sample record (scored or errored)
    attempts: int  # sample records, scored or errored
    errors: int
    answered: Mapping[str, float]  # metric -> mean over items, errored samples left out
    answered_stderr: Mapping[str, float]
    answered_items: int  # items with at least one scored repeat
    std: Mapping[str, float]  # population std over every sample (np.std: simple-evals' `score:std`)

    @property
    def error_fraction(self) -> float:
        return self.errors / self.attempts if self.attempts else 0.0


def sample_key(item_id: str, repeat: int, repeats: int) -> str:
    return item_id if repeats == 1 else f"{item_id}#{repeat}"


def _mean_stderr(xs: Sequence[float]) -> tuple[float, float]:
    """The mean and its standard error (sample standard deviation / sqrt(n), as lm-eval's mean_stderr)."""
    n = len(xs)
    mean = sum(xs) / n if n else 0.0
    variance = sum((x - mean) ** 2 for x in xs) / (n - 1) if n > 1 else 0.0
    return mean, math.sqrt(variance / n) if n else 0.0


def tally(
    metrics: Sequence[str], item_ids: Sequence[str], repeats: int, records: Mapping[str, dict]
) -> Tally:
    every: dict[str, list[float]] = {m: [] for m in metrics}  # per item, an error scoring 0
    samples: dict[str, list[float]] = {m: [] for m in metrics}  # per sample, an error scoring 0
    answered: dict[str, list[float]] = {m: [] for m in metrics}  # per item, over its scored repeats
    attempts = errors = 0
    for item in item_ids:
        scored, tried = [], 0
        for r in range(repeats):
            record = records.get(sample_key(item, r, repeats))
            if record is None:
                continue
            tried += 1
            if record.get("error") is not None or not isinstance(record.get("scores"), dict):
                continue
            scored.append(record["scores"])
        attempts += tried
        errors += tried - len(scored)
        for m in metrics if tried else ():
            values = [float(s.get(m, 0.0)) for s in scored]
            samples[m] += values + [0.0] * (tried - len(scored))
            total = sum(values)
            every[m].append(total / tried)
            if scored:
                answered[m].append(total / len(scored))
    values, stderr, ans, ans_stderr, std = {}, {}, {}, {}, {}
    for m in metrics:
        values[m], stderr[m] = _mean_stderr(every[m])
        ans[m], ans_stderr[m] = _mean_stderr(answered[m])
        xs = samples[m]
        mean = sum(xs) / len(xs) if xs else 0.0
        std[m] = math.sqrt(sum((x - mean) ** 2 for x in xs) / len(xs)) if xs else 0.0
    items = len(every[metrics[0]]) if metrics else 0
    answered_items = len(answered[metrics[0]]) if metrics else 0
    return Tally(values, stderr, items, attempts, errors, ans, ans_stderr, answered_items, std)


def results(
    task: Task,
    tally_: Tally,
    requested_items: int,
    loaded_items: int,
    repeats: int,
    limit: float,
    config: Mapping[str, Any],
) -> dict:
    metrics = {
        m: {
            "scores": {
                m: {
                    "value": tally_.values[m],
                    "stats": {
                        "stderr": tally_.stderr[m],  # over item means (each the mean of its repeats)
                        "std": tally_.std[m],  # over every sample, as simple-evals' `score:std`
                        "count": tally_.items,
                        "errors": tally_.errors,
                        # the same metric over answered samples only (errored ones left out)
                        "answered": tally_.answered[m],
                        "answered_stderr": tally_.answered_stderr[m],
                        "answered_count": tally_.answered_items,
                    },
                }
            }
        }
        for m in task.metrics
    }
    size = task.size if task.size is not None else loaded_items
    notes = (
        [f"first {requested_items} of {loaded_items} items (limit_samples)"]
        if requested_items < loaded_items
        else []
    )
    if loaded_items < size:
        notes.append(task.subsample or f"{loaded_items} of {size} items")
    note = "; ".join(notes) or None
    entry = {
        "metrics": metrics,
        "headline": task.metrics[0],
        "protocol": task.protocol,
        "chance": task.chance,
        "samples": {"items": requested_items, "size": size, "subsample": note, "repeats": repeats},
        "errors": {
            "count": tally_.errors,
            "attempts": tally_.attempts,
            "fraction": tally_.error_fraction,
            "max_error_fraction": limit,  # above it the task FAILED; it never changes the value
            "scored_as": "0 in value; left out of stats.answered",
        },
    }
    return {
        "results": {"tasks": {task.name: entry}},
        "model_id": config.get("model_id"),
        "task": task.name,
        "config": dict(config),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
