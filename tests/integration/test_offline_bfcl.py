"""NEL's bfcl catalogue tasks run for real, offline, in our image of nvidia-bfcl 26.3 + nemo-evaluator 0.2.8
(recipe launcher/catalog/images/bfcl), against an endpoint in this test on 127.0.0.1 that answers from the
possible answers bundled in the very wheel the image was built from.

BFCL's `--limit` (limit_samples) is one cut of all the task's entries sorted by category name, not one per
category, so 3 samples of any AST task are irrelevance_0..2 (right when the model calls no function). The
scored run therefore narrows the task to the `simple` category (params.task, as a user may) to grade calls
against the possible answers: tool calls in OpenAI's format for a native-calling task, a Python call list in
text for a prompting one."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest
import yaml
from helpers import invocation_of, jobs

from launcher.catalog import recipes
from launcher.store.results import scores

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]
RECIPE = recipes.recipe_for("bfcl")
RIGHT = 3  # the endpoint answers the first RIGHT distinct `simple` questions right, every later one wrongly


@pytest.fixture(scope="session")
def bfcl_image(docker_engine) -> str:
    """The recipe's image, built by `launcher images build` when missing; a failed build fails the test."""
    proc = subprocess.run(
        [sys.executable, "-m", "launcher", "images", "build", "bfcl"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.fail(f"launcher images build bfcl failed:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
    return RECIPE.image


def bundled(category: str) -> dict[str, dict]:
    """id -> {question, ground_truth} of one BFCL category, from the nvidia-bfcl wheel the image installs."""
    pin = next(ln for ln in RECIPE.requirements.read_text().splitlines() if ln.startswith("nvidia-bfcl=="))
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
        calls.append(
            (
                name,
                {p: next(v for v in allowed if v != "") for p, allowed in params.items() if allowed != [""]},
            )
        )
    return calls


class BfclEndpoint:
    """An OpenAI chat endpoint on 127.0.0.1. A `simple` question is answered with its expected call for
    the first RIGHT distinct questions a model asks and with plain text (no call: wrong) after; any other
    question (irrelevance: no function fits) with plain text, which is right there. A request carrying
    `tools` (native calling) gets OpenAI tool_calls with the tool's own name (BFCL sends dots as "_"), a
    prompting one the call list BFCL's prompt asks for, `[f(a=1)]`."""

    def __init__(self):
        self.simple = {e["question"][0][-1]["content"]: e for e in bundled("simple").values()}
        self.decisions: dict[tuple[str, str], bool] = {}  # (model, simple id) -> answered right
        self.by_model: dict[str, int] = {}
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(started,), daemon=True)
        self.thread.start()
        assert started.wait(10)

    def _serve(self, started: threading.Event) -> None:
        from aiohttp import web

        async def start():
            app = web.Application(client_max_size=16 << 20)
            app.router.add_post("/v1/chat/completions", self._chat)
            self.runner = web.AppRunner(app, shutdown_timeout=2)
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]
            started.set()

        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(start())
        self.loop.run_forever()

    def reply(self, model: str, question: str, tools: list | None) -> dict:
        entry = self.simple.get(question)
        if entry is not None:
            asked = [i for (m, i) in self.decisions if m == model]
            right = self.decisions.setdefault((model, entry["id"]), len(asked) < RIGHT)
        if entry is None or not right:
            return {"role": "assistant", "content": "None of the functions given can do that."}
        calls = expected_calls(entry["ground_truth"])
        if tools is None:
            text = ", ".join(
                f"{name}({', '.join(f'{k}={v!r}' for k, v in args.items())})" for name, args in calls
            )
            return {"role": "assistant", "content": f"[{text}]"}
        offered = {t["function"]["name"] for t in tools}
        tool_calls = []
        for n, (name, args) in enumerate(calls):
            sent = name if name in offered else name.replace(".", "_")
            assert sent in offered, (sent, offered)
            tool_calls.append(
                {
                    "id": f"call_{n}",
                    "type": "function",
                    "function": {"name": sent, "arguments": json.dumps(args)},
                }
            )
        return {"role": "assistant", "content": None, "tool_calls": tool_calls}

    async def _chat(self, request):
        from aiohttp import web

        body = await request.json()
        model = body.get("model", "")
        self.by_model[model] = self.by_model.get(model, 0) + 1
        question = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        message = self.reply(model, question, body.get("tools"))
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        return web.json_response(
            {
                "id": f"bfcl-{sum(self.by_model.values())}",
                "object": "chat.completion",
                "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110},
            }
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def endpoint():
    ep = BfclEndpoint()
    yield ep
    ep.stop()


def config(tmp_path: Path, url: str, image: str, tasks: list[dict], limit: int) -> Path:
    """A NEL 0.2.6-shaped run config: the catalogue tasks in our image, all at once."""
    doc = {
        "defaults": [{"execution": "local"}, "_self_"],
        "execution": {"output_dir": str(tmp_path / "out"), "max_parallel": len(tasks)},
        "target": {"api_endpoint": {"url": url, "model_id": "bfcl-plain", "type": "chat"}},
        "evaluation": {
            "harness_images": {"bfcl": image},
            "nemo_evaluator_config": {"config": {"params": {"limit_samples": limit, "parallelism": 2}}},
            "tasks": tasks,
        },
    }
    path = tmp_path / "bfcl.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def run(cli, path: Path) -> tuple[str, dict]:
    proc = cli("run", "--config", str(path), "--wait", timeout=1200)
    inv = invocation_of(proc)
    found = jobs(cli, inv)
    logs = {
        name: (Path(job["folder"]) / "logs/output.log").read_text()[-3000:]
        for name, job in found.items()
        if job["state"] != "SUCCEEDED"
    }
    assert proc.returncode == 0 and not logs, proc.stdout[-3000:] + json.dumps(logs, indent=1)
    return inv, found


def read_back(cli, tmp_path: Path, inv: str, metric: str) -> dict[str, float]:
    """task -> `metric` as `results` and `export` give it (they must agree)."""
    rows = json.loads(cli("results", inv, "--format", "json", check_rc=0).stdout)
    shown = {r["coords"]["task"]: r["value"] for r in rows if r["coords"]["metric"] == metric}
    out = tmp_path / "export.json"
    cli("export", inv, "--format", "json", "-o", str(out), check_rc=0)
    text = out.read_text()
    assert all(task in text for task in shown) and metric in text, text[:2000]
    return shown


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


def test_a_task_runs_with_no_network_at_all_as_any_user(docker_engine, bfcl_image):
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
        bfcl_image, ["sh", "-c", script], user="4321:4321", network_mode="none", remove=True
    ).decode()
    metrics = yaml.safe_load(out)["results"]["groups"]["bfcl"]["metrics"]
    assert (
        metrics["irrelevance_detection_non_live"]["scores"]["irrelevance_detection_non_live"]["value"]
        == 100.0
    )


def test_every_offline_bfcl_task_runs_three_samples(cli, tmp_path, docker_engine, bfcl_image, endpoint):
    """The recipe's offline tasks, by their catalogue names, in one invocation: 3 samples each (BFCL's one
    cut: irrelevance_0..2), each answered without a call, so irrelevance detection is 100 (percent)."""
    names = [f"bfcl.{task}" for task in RECIPE.offline]
    inv, found = run(cli, config(tmp_path, endpoint.url, bfcl_image, [{"name": n} for n in names], 3))
    assert sorted(found) == sorted(names)
    assert endpoint.by_model == {"bfcl-plain": 3 * len(names)} and endpoint.decisions == {}
    for name in names:
        got = {s.name: s.value for s in scores(found[name]["folder"])}
        assert got["irrelevance_detection_non_live"] == 100.0, (name, got)
        assert "irrelevance_detection_non_live=100.0000" in found[name]["score"]
    assert read_back(cli, tmp_path, inv, "irrelevance_detection_non_live") == dict.fromkeys(names, 100.0)


# (task, model): a native-calling task answered with tool_calls, a prompting one with a call list in text.
SCORED = (("bfcl.bfclv3_ast", "oracle-tools"), ("bfcl.bfclv2_ast_prompting", "oracle-text"))


def test_scores_from_the_possible_answers_reach_our_results(
    cli, tmp_path, docker_engine, bfcl_image, endpoint
):
    """4 `simple` questions per task, the first RIGHT answered with the expected call: BFCL grades them
    against its possible answers and reports Python Simple AST = RIGHT/4 in percent, which status,
    results and export show as the harness wrote it."""
    limit = 4
    tasks = [
        {
            "name": name,
            "nemo_evaluator_config": {
                "config": {"params": {"task": "simple"}},
                "target": {"api_endpoint": {"model_id": model}},
            },
        }
        for name, model in SCORED
    ]
    inv, found = run(cli, config(tmp_path, endpoint.url, bfcl_image, tasks, limit))
    expected = 100.0 * RIGHT / limit
    for name, model in SCORED:
        assert (
            endpoint.by_model[model] == limit
            and len([d for d in endpoint.decisions if d[0] == model]) == limit
        )
        got = {s.name: s.value for s in scores(found[name]["folder"])}
        assert got["python_simple_ast_non_live"] == expected, (name, got)
        assert f"python_simple_ast_non_live={expected:.4f}" in found[name]["score"]
    shown = read_back(cli, tmp_path, inv, "python_simple_ast_non_live")
    assert shown == {name: expected for name, _ in SCORED}
