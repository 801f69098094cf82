"""A finished task's per-item values of one metric, read from the harness's samples.jsonl (read-only).

Only each line's head (key, error, scores: launcher.harness.checkpoint.LINE_HEADS, found over blocks
of whole lines) is read, and each distinct head is parsed once, so two 100,000-sample runs read in well
under a second; a block whose lines do not all match (another shape) is read line by line, and a line
that names a `category` is parsed whole for it. A key counts as the harness counts it
(checkpoint._accept): its first successful record, else its last errored one. Keys are `<id>#<repeat>`
when the results say repeats > 1; an item's value is the mean over its scored repeats.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

from launcher.export.source import TASK_SAMPLES, TaskRun
from launcher.harness.checkpoint import BLOCK, LINE_HEADS

CATEGORY = b'"category": "'
ERRORED = None  # a key's outcome when its record errored (or has no scores)


@dataclass
class Items:
    """One run's values of one metric per item."""

    run: TaskRun
    values: dict[str, float] = field(default_factory=dict)  # item -> mean over its scored repeats
    attempted: set[str] = field(default_factory=set)  # every item with a record, scored or errored
    categories: dict[str, str] = field(default_factory=dict)
    metrics: frozenset[str] = frozenset()  # the metric names the records carry


def read(run: TaskRun, metric: str, passing: bool = False) -> Items:
    """`metric` per item; with `passing`, the share of an item's repeats that score above 0 (pass@1)."""
    outcomes: dict[str, float | None] = {}
    categories: dict[str, str] = {}
    heads: dict[tuple[bytes, bytes], float | None] = {}  # equal (error, scores) heads parsed once
    names: set[str] = set()

    def outcome(error: object, scores: object) -> float | None:
        if error is not None or not isinstance(scores, dict):
            return ERRORED
        names.update(scores)
        value = _num(scores.get(metric))  # a missing metric scores 0, as the harness's aggregate counts it
        return float(value > 0) if passing else value

    for block in _blocks(run):
        found = LINE_HEADS.findall(b"\n" + block)
        for key, error, scores in found:  # the hot loop: one line each, kept inline
            value = heads.get((error, scores), heads)
            if value is heads:
                value = heads[(error, scores)] = outcome(json.loads(error), json.loads(scores))
            key = key.decode()
            if outcomes.get(key) is ERRORED:  # none yet, or an errored one a retry may replace
                outcomes[key] = value
        if len(found) != block.count(b"\n"):
            for line in block.splitlines():  # another shape somewhere: those lines parsed whole
                if LINE_HEADS.match(b"\n" + line) is None:
                    try:
                        rec = json.loads(line)
                        key = rec["key"]
                    except (ValueError, RecursionError, KeyError, TypeError):
                        continue
                    if isinstance(key, str) and outcomes.get(key) is ERRORED:
                        outcomes[key] = outcome(rec.get("error"), rec.get("scores"))
        if CATEGORY in block:
            _categories(block, categories)
    return _items(run, outcomes, categories, frozenset(names))


def _blocks(run: TaskRun) -> Iterator[bytes]:
    """The file in blocks of whole lines; a torn last line is left out (the harness re-requests it)."""
    try:
        fh = open(run.path(TASK_SAMPLES), "rb")  # noqa: SIM115 - closed below; a missing file is no records
    except FileNotFoundError:
        return
    with fh:
        rest = b""
        while chunk := fh.read(BLOCK):
            data = rest + chunk
            cut = data.rfind(b"\n") + 1
            if cut:
                yield data[:cut]
            rest = data[cut:]


def _items(run: TaskRun, outcomes: dict, categories: dict[str, str], names: frozenset[str]) -> Items:
    if (run.repeats or 1) == 1:
        values = {k: v for k, v in outcomes.items() if v is not ERRORED}
        return Items(run, values, set(outcomes), categories, names)
    sums: dict[str, list[float]] = {}
    items = Items(run, {}, set(), {}, names)
    for key, value in outcomes.items():
        item = key.rpartition("#")[0] if "#" in key else key
        items.attempted.add(item)
        if key in categories:
            items.categories.setdefault(item, categories[key])
        if value is not ERRORED:
            total = sums.setdefault(item, [0.0, 0])
            total[0] += value
            total[1] += 1
    items.values = {item: s / n for item, (s, n) in sums.items()}
    return items


def _categories(block: bytes, out: dict[str, str]) -> None:
    for line in block.splitlines():
        if CATEGORY in line:
            try:
                rec = json.loads(line)
                key, value = rec["key"], rec.get("category")
            except (ValueError, RecursionError, KeyError, TypeError, AttributeError):
                continue
            if isinstance(key, str) and isinstance(value, str) and value:
                out.setdefault(key, value)


def _num(value) -> float:
    return float(value) if isinstance(value, (int, float)) else 0.0  # a bool counts as 0/1, as in aggregate
