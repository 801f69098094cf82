"""A finished task's per-item scores, read from the harness's samples.jsonl (read-only).

Only each line's head (key, error, scores: launcher.harness.checkpoint.read_head) is parsed, so two
100,000-sample runs read in well under a second; a line that also names a `category` is parsed whole
for it. A key counts as the harness counts it (checkpoint._accept): its first successful record, else
its last errored one. Keys are `<id>#<repeat>` when the results say repeats > 1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from launcher.export.source import SAMPLES, TaskRun
from launcher.harness.checkpoint import read_head

CATEGORY = b'"category": "'


@dataclass
class Items:
    """One run's outcome per item: the scores of its repeats (errored repeats left out)."""

    run: TaskRun
    scored: dict[str, list[dict]] = field(default_factory=dict)  # item -> the scores of scored repeats
    attempted: set[str] = field(default_factory=set)  # every item with a record, scored or errored
    categories: dict[str, str] = field(default_factory=dict)

    @property
    def errored(self) -> set[str]:
        return self.attempted - self.scored.keys()

    def metrics(self) -> list[str]:
        first = next(iter(self.scored.values()), [{}])
        return list(first[0]) if first else []

    def values(self, metric: str) -> dict[str, float]:
        """item -> its metric averaged over its scored repeats (a missing metric scores 0, as the
        harness's aggregate counts it)."""
        return {
            item: sum(_num(s.get(metric)) for s in repeats) / len(repeats)
            for item, repeats in self.scored.items()
        }


def read(run: TaskRun) -> Items:
    outcomes: dict[str, tuple[object, object]] = {}
    categories: dict[str, str] = {}
    heads: dict[bytes, tuple[object, object]] = {}  # equal heads parsed once
    try:
        fh = open(run.path(SAMPLES), "rb")  # noqa: SIM115 - closed below; a missing file is no records
    except FileNotFoundError:
        return Items(run)
    with fh:
        for line in fh:
            if not line.endswith(b"\n"):
                continue  # a torn last line: the harness re-requests it
            head = read_head(line)
            if head is not None:
                key, text = head
                outcome = heads.get(text)
                if outcome is None:
                    parsed = json.loads(b"{" + text[2:] + b"}")
                    outcome = heads[text] = (parsed["error"], parsed["scores"])
            else:
                try:
                    record = json.loads(line)
                    key, outcome = record["key"], (record.get("error"), record.get("scores"))
                except (ValueError, RecursionError, KeyError, TypeError):
                    continue
            if not isinstance(key, str):
                continue
            held = outcomes.get(key)
            if held is None or held[0] is not None:
                outcomes[key] = outcome
            if CATEGORY in line:
                category = _category(line)
                if category is not None:
                    categories[key] = category
    return _items(run, outcomes, categories)


def _items(run: TaskRun, outcomes: dict[str, tuple], categories: dict[str, str]) -> Items:
    items = Items(run)
    split = (run.repeats or 1) > 1
    for key, (error, scores) in outcomes.items():
        item = key.rpartition("#")[0] if split and "#" in key else key
        items.attempted.add(item)
        if key in categories:
            items.categories.setdefault(item, categories[key])
        if error is None and isinstance(scores, dict):
            items.scored.setdefault(item, []).append(scores)
    return items


def _category(line: bytes) -> str | None:
    try:
        value = json.loads(line).get("category")
    except (ValueError, RecursionError, AttributeError):
        return None
    return value if isinstance(value, str) and value else None


def _num(value) -> float:
    return float(value) if isinstance(value, (int, float)) else 0.0  # a bool counts as 0/1, as in aggregate
