"""Catalogue tasks of one harness run offline by name in the image built from its recipe
(launcher/catalog/images/<harness>/, `launcher images build`), for the tests/integration/test_offline_*.py:

    recipe = build_recipe_image("simple_evals")
    with ChatEndpoint(answer) as ep:
        run = run_offline(cli, tmp_path, recipe, ["gpqa_diamond", "humaneval"], ep.url)
    run.scores["simple_evals.humaneval"]  # the harness's scores, as status/results/export read them

`run_offline` runs the tasks as ONE invocation (all at once), `limit_samples` each (default 3, NEL's
`config.params.limit_samples`), asserts every task SUCCEEDED, and reads every score back three ways:
`status --json`, `results --format json` and `export --dest local --format json`, which must agree.

The tasks are named alone, as a user on an air-gapped cluster names them: the executors pick the recipe's
image and mount its data caches (launcher.catalog.image_choice), and the run's `image_why` must say so.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from helpers import invocation_of, jobs

from launcher.catalog import builds, nel, recipes
from launcher.catalog.recipes import Recipe
from launcher.store.results import scores


def build_recipe_image(harness: str) -> Recipe:
    """`launcher images build HARNESS`: a no-op when the image and data are current; a failed build fails
    the test (building offline from the wheel cache is part of what these tests prove)."""
    proc = subprocess.run(
        [sys.executable, "-m", "launcher", "images", "build", harness], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.fail(f"launcher images build {harness} failed:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
    recipe = recipes.recipe_for(harness)
    assert recipe is not None and all(builds.data_ready(recipe).values()), proc.stdout
    return recipe


def endpoint_type(harness: str, task: str) -> str:
    """chat where the catalogue task takes it, else its first endpoint type."""
    types = nel.catalogue().tasks[(harness, task)].endpoint_types
    return "chat" if "chat" in types else types[0]


def offline_config(
    tmp_path: Path, recipe: Recipe, tasks: list[str], url: str, limit: int = 3, params: dict | None = None
) -> Path:
    """A NEL 0.2.6-shaped run config: the catalogue tasks by name, `limit` samples each, all at once,
    each under its own model id (the task's name) so an endpoint can tell them apart. `url` is the
    endpoint's chat URL; a task that takes no chat gets the endpoint's completions URL as its own (as a
    NEL config mixing endpoint types must: the target names one URL)."""
    entries = []
    for task in tasks:
        api = {"model_id": task}
        kind = endpoint_type(recipe.harness, task)
        if kind != "chat":
            api |= {"type": kind, "url": url.replace("/chat/completions", f"/{kind}")}
        entries.append(
            {"name": f"{recipe.harness}.{task}", "nemo_evaluator_config": {"target": {"api_endpoint": api}}}
        )
    config: dict = {
        "defaults": [{"execution": "local"}, "_self_"],
        "execution": {"output_dir": str(tmp_path / "out"), "max_parallel": len(tasks)},
        "target": {"api_endpoint": {"url": url, "model_id": "offline", "type": "chat"}},
        "evaluation": {
            "nemo_evaluator_config": {"config": {"params": {"limit_samples": limit, **(params or {})}}},
            "tasks": entries,
        },
    }
    path = tmp_path / f"offline_{recipe.harness}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@dataclass
class OfflineRun:
    invocation: str
    jobs: dict  # full task name -> its `status --json` row
    scores: dict  # full task name -> {score name: value}, as status, results and export all read them
    output: str


def run_offline(
    cli,
    tmp_path: Path,
    recipe: Recipe,
    tasks: list[str],
    url: str,
    limit: int = 3,
    params: dict | None = None,
    timeout: float = 1200,
) -> OfflineRun:
    """Run `tasks` of `recipe.harness` in one invocation; each must succeed and its scores must reach
    status, results and export alike."""
    config = offline_config(tmp_path, recipe, tasks, url, limit, params)
    proc = cli("run", "--config", str(config), "--wait", timeout=timeout)
    inv = invocation_of(proc)
    found = jobs(cli, inv)
    names = [f"{recipe.harness}.{t}" for t in tasks]
    failed = {n: found[n]["state"] for n in names if found[n]["state"] != "SUCCEEDED"}
    if failed:
        tails = {n: _log_tail(found[n]) for n in failed}
        pytest.fail(f"not SUCCEEDED: {failed}\n" + "\n".join(f"--- {n}\n{t}" for n, t in tails.items()))
    for name in names:  # named alone, each ran in the recipe's image, and status says why
        assert found[name]["image"] == recipe.image, (name, found[name]["image"])
        assert found[name]["image_why"].startswith("local build"), (name, found[name]["image_why"])
    read = {n: {s.name: s.value for s in scores(Path(found[n]["folder"]))} for n in names}
    for name in names:
        assert read[name], f"{name}: no score in its results"
        # status's SCORE column is each score's name=value
        for score, value in read[name].items():
            assert f"{score}={value:.4f}" in found[name]["score"], (name, found[name]["score"])
    rows = json.loads(cli("results", inv, "--format", "json", check_rc=0).stdout)
    from_results = {(r["column"], r["value"]) for r in rows}
    table = tmp_path / f"export_{inv}.json"
    cli("export", inv, "--dest", "local", "--format", "json", "-o", str(table), check_rc=0)
    exported = json.loads(table.read_text())
    exported_text = json.dumps(exported)
    for name in names:
        headline = next(iter(read[name].values()))
        assert any(c.startswith(name) and v == pytest.approx(headline) for c, v in from_results), (name, rows)
        assert name in exported_text, (name, exported)
    return OfflineRun(inv, found, read, proc.stdout)


def _log_tail(job: dict) -> str:
    log = Path(job["folder"]) / "logs/output.log"
    return log.read_text()[-2500:] if log.is_file() else "(no output.log)"


class ChatEndpoint:
    """An OpenAI-compatible endpoint on 127.0.0.1 (chat and completions) whose reply text (or, for chat,
    whole message when a dict) is `answer(body)`; it records every request body by model id. Use as a
    context manager."""

    def __init__(self, answer: Callable[[dict], str | dict] = lambda body: "Answer: A"):
        self.answer = answer
        self.requests: dict[str, list[dict]] = {}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ChatEndpoint:
        from aiohttp import web

        async def start():
            app = web.Application(client_max_size=64 << 20)
            app.router.add_post("/v1/chat/completions", self._reply)
            app.router.add_post("/v1/completions", self._reply)
            self.runner = web.AppRunner(app, shutdown_timeout=2)
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            await site.start()
            return site._server.sockets[0].getsockname()[1]

        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    @property
    def url(self) -> str:
        """The chat URL; the completions one is the same with /v1/completions."""
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"

    async def _reply(self, request):
        from aiohttp import web

        body = await request.json()
        self.requests.setdefault(body.get("model", ""), []).append(body)
        text = self.answer(body)
        chat = "messages" in body
        # a dict is the whole chat message (e.g. OpenAI tool_calls for a native function-calling task)
        message = text if isinstance(text, dict) else {"role": "assistant", "content": text}
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        choice = (
            {"index": 0, "message": message, "finish_reason": finish}
            if chat
            else {"index": 0, "text": text, "finish_reason": "stop"}
        )
        return web.json_response(
            {
                "id": f"offline-{sum(map(len, self.requests.values()))}",
                "object": "chat.completion" if chat else "text_completion",
                "model": body.get("model", ""),
                "choices": [choice],
                "usage": {"prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105},
            }
        )


def prompt_of(body: dict) -> str:
    """The request's prompt text: the last chat message, or the completions prompt."""
    if "messages" in body:
        content = body["messages"][-1]["content"]
        return content if isinstance(content, str) else " ".join(p.get("text", "") for p in content)
    return body.get("prompt", "")
