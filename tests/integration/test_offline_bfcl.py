"""NEL's bfcl catalogue tasks run for real, offline, in our image of nvidia-bfcl 26.3 + nemo-evaluator 0.2.8
(recipe launcher/catalog/images/bfcl), against an endpoint in this test on 127.0.0.1 that answers from the
possible answers bundled in the very wheel the image was built from.

BFCL's `--limit` (limit_samples) is one cut of all the task's entries sorted by category name, not one per
category, so 3 samples of any AST task are irrelevance_0..2 (right when the model calls no function). The
scored run therefore narrows the task to the `simple` category (params.task, as a user may) to grade calls
against the possible answers: tool calls in OpenAI's format for a native-calling task, a Python call list in
text for a prompting one."""

from __future__ import annotations

import json
import zipfile

import pytest
import yaml
from offline_catalogue import ChatEndpoint, build_recipe_image, run_offline

from launcher.catalog import recipes

pytestmark = pytest.mark.docker
RIGHT = 3  # the endpoint answers the first RIGHT distinct `simple` questions right, every later one wrongly
NO_CALL = "None of the functions given can do that."


@pytest.fixture(scope="session")
def recipe(docker_engine):
    return build_recipe_image("bfcl")


def bundled(recipe, category: str) -> dict[str, dict]:
    """id -> {question, ground_truth} of one BFCL category, from the nvidia-bfcl wheel the image installs."""
    pin = next(ln for ln in recipe.requirements.read_text().splitlines() if ln.startswith("nvidia-bfcl=="))
    wheel = recipes.wheels_dir() / f"nvidia_bfcl-{pin.split('==')[1]}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as whl:

        def lines(name: str) -> list[dict]:
            return [json.loads(ln) for ln in whl.read(f"bfcl/data/{name}").decode().splitlines() if ln]

        entries = {e["id"]: e for e in lines(f"BFCL_v3_{category}.json")}
        for answer in lines(f"possible_answer/BFCL_v3_{category}.json"):
            entries[answer["id"]]["ground_truth"] = answer["ground_truth"]
    return entries


def expected_calls(ground_truth: list[dict]) -> list[tuple[str, dict]]:
    """(function, arguments) per call: each parameter's first allowed value; "" allows leaving it out."""
    calls = []
    for call in ground_truth:
        ((name, params),) = call.items()
        args = {p: next(v for v in allowed if v != "") for p, allowed in params.items() if allowed != [""]}
        calls.append((name, args))
    return calls


class SimpleOracle:
    """Answers a `simple` question with its expected call for the first RIGHT distinct questions a model
    asks and with plain text (no call: wrong) after; any other question with plain text. A request with
    `tools` (native calling) gets OpenAI tool_calls under the tool's own name (BFCL sends dots as "_"), a
    prompting one the call list BFCL's prompt asks for, `[f(a=1)]`."""

    def __init__(self, recipe):
        self.simple = {e["question"][0][-1]["content"]: e for e in bundled(recipe, "simple").values()}
        self.decisions: dict[tuple[str, str], bool] = {}  # (model, simple id) -> answered right

    def __call__(self, body: dict) -> str | dict:
        model = body.get("model", "")
        question = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        entry = self.simple.get(question)
        if entry is None:
            return NO_CALL
        asked = [i for (m, i) in self.decisions if m == model]
        if not self.decisions.setdefault((model, entry["id"]), len(asked) < RIGHT):
            return NO_CALL
        calls = expected_calls(entry["ground_truth"])
        if "tools" not in body:
            listed = (f"{name}({', '.join(f'{k}={v!r}' for k, v in args.items())})" for name, args in calls)
            return f"[{', '.join(listed)}]"
        offered = {t["function"]["name"] for t in body["tools"]}
        tool_calls = []
        for n, (name, args) in enumerate(calls):
            sent = name if name in offered else name.replace(".", "_")
            assert sent in offered, (sent, offered)
            function = {"name": sent, "arguments": json.dumps(args)}
            tool_calls.append({"id": f"call_{n}", "type": "function", "function": function})
        return {"role": "assistant", "content": None, "tool_calls": tool_calls}


# An OpenAI chat endpoint that answers every request with text, served inside the task's own container.
STUB = """
import json
from http.server import BaseHTTPRequestHandler, HTTPServer
class Stub(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        message = {"role": "assistant", "content": "None of the functions given can do that."}
        body = json.dumps({"id": "x", "object": "chat.completion", "model": "m",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 9, "total_tokens": 10}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
HTTPServer(("127.0.0.1", 8000), Stub).serve_forever()
"""


def test_a_task_runs_with_no_network_at_all_as_any_user(docker_engine, recipe):
    """No hidden download or call home: nemo-evaluator's run_eval of bfclv3_ast (BFCL's widest import
    path, multi-turn categories included) with no network device but loopback, as an arbitrary uid."""
    script = (
        f"python3 -c '{STUB}' & "
        "API_KEY=k nemo-evaluator run_eval --eval_type bfclv3_ast --model_id m --model_type chat"
        " --model_url http://127.0.0.1:8000/v1/chat/completions --api_key_name API_KEY"
        " --output_dir /tmp/out --overrides config.params.limit_samples=3 >/tmp/log 2>&1"
        " && cat /tmp/out/results.yml || tail -c 3000 /tmp/log"
    )
    out = docker_engine.containers.run(
        recipe.image, ["sh", "-c", script], user="4321:4321", network_mode="none", remove=True
    ).decode()
    irrelevance = yaml.safe_load(out)["results"]["groups"]["bfcl"]["metrics"][
        "irrelevance_detection_non_live"
    ]
    assert irrelevance["scores"]["irrelevance_detection_non_live"]["value"] == 100.0


def test_every_offline_bfcl_task_runs_three_samples(cli, tmp_path, recipe):
    """The recipe's offline tasks, by their catalogue names, in one invocation: 3 samples each (BFCL's one
    cut: irrelevance_0..2), each answered without a call, so irrelevance detection is 100 (percent)."""
    with ChatEndpoint(lambda body: NO_CALL) as ep:
        run = run_offline(cli, tmp_path, recipe, list(recipe.offline), ep.url)
    assert {model: len(bodies) for model, bodies in ep.requests.items()} == dict.fromkeys(recipe.offline, 3)
    native = {model: all("tools" in b for b in bodies) for model, bodies in ep.requests.items()}
    assert native == {t: not t.endswith("_prompting") for t in recipe.offline}  # as framework.yml says
    for task in recipe.offline:
        assert run.scores[f"bfcl.{task}"]["irrelevance_detection_non_live"] == 100.0, run.scores


def test_scores_from_the_possible_answers_reach_our_results(cli, tmp_path, recipe):
    """4 `simple` questions per task, the first RIGHT answered with the expected call (tool_calls for the
    native-calling task, a call list in text for the prompting one): BFCL grades them against its
    possible answers, and Python Simple AST = RIGHT/4 in percent reaches status, results and export."""
    tasks, limit = ["bfclv3_ast", "bfclv2_ast_prompting"], 4
    oracle = SimpleOracle(recipe)
    with ChatEndpoint(oracle) as ep:
        run = run_offline(cli, tmp_path, recipe, tasks, ep.url, limit=limit, params={"task": "simple"})
    assert {model: len(bodies) for model, bodies in ep.requests.items()} == dict.fromkeys(tasks, limit)
    assert len(oracle.decisions) == limit * len(tasks)
    simple = 100.0 * RIGHT / limit
    for task in tasks:
        got = run.scores[f"bfcl.{task}"]
        # BFCL's aggregates are unweighted means with a category not run counting 0: Simple AST over
        # Python/Java/JavaScript, the non-live overall over 9 groups (eval_runner_helper.py)
        assert (got["python_simple_ast_non_live"], got["non_live_overall_acc"]) == (
            simple,
            round(simple / 3 / 9, 2),
        )
