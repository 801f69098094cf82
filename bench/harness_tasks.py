"""Task variants for the scoring benchmark (bench/harness.py, `--tasks harness_tasks`): the synthetic task
scored inline, inside `solve` on the event loop (what the harness did before scoring moved off the loop:
the reference for its overhead), and unscored (no scoring at all)."""

from __future__ import annotations

import dataclasses

from launcher.harness.benchmarks.synthetic import TASKS as SYNTHETIC
from launcher.harness.benchmarks.synthetic import score, solve

BASE = SYNTHETIC[0]


async def solve_and_score(sample, model, ctx) -> dict:
    output = await solve(sample, model, ctx)
    scores, extracted = score(sample, output)
    return {**output, "inline_scores": scores, "inline_extracted": extracted}


TASKS = (
    BASE,  # off the loop, in the scoring workers
    dataclasses.replace(BASE, name="synthetic-inline", solve=solve_and_score, score=None),
    dataclasses.replace(BASE, name="synthetic-unscored", score=None),
)
