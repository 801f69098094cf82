"""Splitting one task's samples into shards and putting the shards' records back together. Pure.

The rule: number the run's samples in the task's canonical order, item by item and within an item repeat
by repeat (position = item index x repeats + repeat; the same order as results and samples.jsonl), and
give position p to shard p mod N. So every sample is in exactly one shard, the shards differ in size by
one at most, each gets a fair share of the easy and the hard end of the order, and a sample's shard
depends only on its item's position, its repeat, `repeats` and N: it is the same on every machine and
executor, and unchanged when `limit_samples` changes (a shard's checkpoint stays valid). Changing
`repeats` or N moves samples between shards; a shard only counts its own checkpoint, so samples that moved
are requested again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    index: int  # 0 .. count-1
    count: int

    def __post_init__(self) -> None:
        if not (type(self.index) is int and type(self.count) is int and 0 <= self.index < self.count):
            raise ValueError(f"shard {self.index!r} of {self.count!r}: need 0 <= index < count")

    def owns(self, position: int) -> bool:
        return position % self.count == self.index

    def size(self, total: int) -> int:
        """How many of `total` samples are this shard's."""
        return len(range(self.index, total, self.count))


def select(jobs: Iterable[T], shard: Shard | None) -> Iterator[T]:
    """The jobs (in canonical order) that are `shard`'s; all of them without a shard."""
    if shard is None:
        yield from jobs
        return
    for position, job in enumerate(jobs):
        if shard.owns(position):
            yield job


def merge(
    keys: Sequence[str], parts: Sequence[Mapping[str, dict]], count: int
) -> tuple[list[dict], list[tuple[int, int]]]:
    """The records of `keys` (the whole run's sample keys in canonical order), each taken from the part
    (shard) that owns it, in that order; and (shard, samples it has not recorded) for each shard with
    gaps. A record a shard holds for another shard's sample is ignored: only the owner's counts."""
    if len(parts) != count:
        raise ValueError(f"{len(parts)} shard results for {count} shards")
    records, missing = [], [0] * count
    for position, key in enumerate(keys):
        record = parts[position % count].get(key)
        if record is None:
            missing[position % count] += 1
        else:
            records.append(record)
    return records, [(k, n) for k, n in enumerate(missing) if n]
