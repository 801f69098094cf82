"""AIME: our scorer vs lm-evaluation-harness 0.4.13's own lm_eval/tasks/aime/utils.py (process_results),
loaded from the installed package by path (it imports only the standard library)."""

import pytest

from launcher.harness.api import Sample
from launcher.harness.benchmarks import aime
from tests.parity.reference import lm_eval_module, lm_eval_yaml, require

require("lm_eval")

RESPONSES = [
    "<think>…the answer is 40…</think> \\boxed{42}",
    "<think>the answer is 40?</think> The final answer is \\boxed{42}.",
    "The answer is 42.",
    "42",
    " 42 ",
    "\\boxed{42}",
    "\\boxed{ 42 }",
    "\\boxed{042}",
    "\\boxed{42.}",
    "\\boxed 42$ and more",
    "First \\boxed{41} then \\boxed{42}",
    "\\boxed{41} then \\boxed 42",
    "$x = 42$",
    "so $42$",
    "We get $a=3$ and $b=4$, thus $42$",
    "\\fbox{42}",
    "\\boxed{\\frac{84}{2}}",
    "\\boxed{84/2}",
    "\\boxed{42^\\circ}",
    "\\boxed{42^{\\circ}}",
    "\\boxed{42\\text{ units}}",
    "\\boxed{42\\text{ a}\\text{ b}}",
    "\\boxed{k = 42}",
    "\\boxed{\\sqrt{42}}",
    "\\boxed{42",
    "\\boxed{{42}}",
    "\\boxed{4 2}",
    "\\boxed{\\$42}",
    "\\boxed{42\\%}",
    "\\boxed{.5}",
    "\\boxed{336}",
    "answer: 336^\\circ",
    "\\boxed{336^\\circ}",
    "",
    " " * 1000 + "\n" * 1000,
    "\\boxed{}",
    "\\boxed{-42}",
    "x=\n42",
]
TARGETS = ["42", "336^\\circ", "70"]


@pytest.fixture(scope="module")
def reference():
    return lm_eval_module("tasks/aime/utils.py")


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("response", RESPONSES)
def test_scores_match_lm_eval(reference, response, target):
    ours, _ = aime.score(Sample("x", "q", target), {"response": response})
    theirs = reference.process_results({"answer": target}, [response])
    assert ours == {"exact_match": float(theirs["exact_match"])}


def test_prompt_and_stops_are_the_yamls():
    config = lm_eval_yaml("tasks/aime/aime25.yaml")
    assert aime.prompt("QQ") == config["doc_to_text"].replace("{{problem}}", "QQ")
    assert tuple(config["generation_kwargs"]["until"]) == aime.STOP
    assert aime.TASKS[0].defaults["max_tokens"] == config["generation_kwargs"]["max_gen_toks"]
