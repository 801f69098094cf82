"""`synthetic`: 10,000 generated additions that load the launcher itself (throughput, resume and memory
benchmarks in bench/ and the reliability tests). Not a benchmark of a model: no reference protocol."""

from __future__ import annotations

import random
import re

from launcher.harness.api import Context, Model, Sample, Task
from launcher.harness.benchmarks.common import generate

SEED = 1234  # the same items on every run and machine
INSTRUCTION = "Put the final answer on the last line as 'Answer: <number>'."
NUMBER = re.compile(r"-?\d+")  # linear: one repetition of one class


def load() -> list[Sample]:
    rng = random.Random(SEED)
    pairs = [(rng.randrange(10**6), rng.randrange(10**6)) for _ in range(10_000)]
    return [
        Sample(f"synthetic-{i}", f"What is {a} + {b}?\n\n{INSTRUCTION}", str(a + b))
        for i, (a, b) in enumerate(pairs)
    ]


def score(sample: Sample, record: dict) -> tuple[dict[str, float], str | None]:
    found = NUMBER.findall(record["response"])
    got = found[-1] if found else None
    return {"exact_match": float(got == sample.target)}, got


async def solve(sample: Sample, model: Model, ctx: Context) -> dict:
    return await generate(model, sample.input, ctx)


TASKS = (
    Task(
        name="synthetic",
        protocol="none: the launcher's own load generator (last integer of the reply)",
        metrics=("exact_match",),
        endpoint_types=("chat", "completions"),
        load=load,
        solve=solve,
        score=score,
        size=10_000,
        description="Generated additions for the launcher's own benchmarks; not a model benchmark.",
    ),
)
