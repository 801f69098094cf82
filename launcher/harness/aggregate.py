"""From per-sample records to results.json: per-item mean over repeats, then the task mean and its
standard error over items; errored samples are counted apart and left out of the score."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from launcher.harness.api import Task


@dataclass(frozen=True)
class Tally:
    values: Mapping[str, float]  # metric -> mean over items
    stderr: Mapping[str, float]
    items: int  # items with at least one scored repeat
    attempts: int  # sample records, scored or errored
    errors: int

    @property
    def error_fraction(self) -> float:
        return self.errors / self.attempts if self.attempts else 0.0


def sample_key(item_id: str, repeat: int, repeats: int) -> str:
    return item_id if repeats == 1 else f"{item_id}#{repeat}"


def tally(
    metrics: Sequence[str], item_ids: Sequence[str], repeats: int, records: Mapping[str, dict]
) -> Tally:
    per_item: dict[str, list[float]] = {m: [] for m in metrics}
    attempts = errors = items = 0
    for item in item_ids:
        scored = []
        for r in range(repeats):
            record = records.get(sample_key(item, r, repeats))
            if record is None:
                continue
            attempts += 1
            if record.get("error") is not None or not isinstance(record.get("scores"), dict):
                errors += 1
                continue
            scored.append(record["scores"])
        if not scored:
            continue
        items += 1
        for m in metrics:
            per_item[m].append(sum(float(s.get(m, 0.0)) for s in scored) / len(scored))
    values, stderr = {}, {}
    for m, xs in per_item.items():
        n = len(xs)
        mean = sum(xs) / n if n else 0.0
        variance = sum((x - mean) ** 2 for x in xs) / (n - 1) if n > 1 else 0.0
        values[m], stderr[m] = mean, math.sqrt(variance / n) if n else 0.0
    return Tally(values, stderr, items, attempts, errors)


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
                    "stats": {"stderr": tally_.stderr[m], "count": tally_.items, "errors": tally_.errors},
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
            "max_error_fraction": limit,
        },
    }
    return {
        "results": {"tasks": {task.name: entry}},
        "model_id": config.get("model_id"),
        "task": task.name,
        "config": dict(config),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
