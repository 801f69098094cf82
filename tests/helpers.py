"""What the tests share: the test image, task and config builders, and reading ids and states the way a
user would."""

import json
import os
import socket
import time
from pathlib import Path

import pytest

TEST_IMAGE = "launcher-testtask:1"  # tests/images/testtask, built by `make test-images` or on first use


def task(name: str, mode: str, *args: str) -> dict:
    """A custom task of the test image: /opt/task.py <mode> (ok, fail, sleep, http URL, ...)."""
    return {"name": name, "container": TEST_IMAGE, "command": ["python3", "/opt/task.py", mode, *args]}


def write_config(
    tmp_path: Path, executor: str, tasks: list, env_vars=None, api_key=None, **execution
) -> list[str]:
    """A primary config in tmp_path/cfg.yaml; returns the arguments that select it."""
    cfg = {
        "defaults": [{"execution": executor}, "_self_"],
        "execution": {"output_dir": str(tmp_path / "out"), **execution},
        "target": {
            "api_endpoint": {
                "url": "http://127.0.0.1:9/v1/chat/completions",
                "model_id": "m",
                "api_key": api_key,
            }
        },
        "evaluation": {"tasks": tasks, "env_vars": env_vars or {}},
    }
    (tmp_path / "cfg.yaml").write_text(json.dumps(cfg))
    return ["--config-dir", str(tmp_path), "--config-name", "cfg"]


def write_run_config(
    results: Path,
    url: str = "http://127.0.0.1:9/v1/chat/completions",
    task: str = "add",
    chat: bool = True,
    **extra,
) -> Path:
    """The harness's own run config (results/run_config.json, launcher.harness.contract.RunConfig), as the
    host writes it into a task container's /results; `params` are merged into small-run defaults."""
    results.mkdir(parents=True, exist_ok=True)
    params = {"parallelism": 8, "request_timeout": 5.0, "max_retries": 3, "max_error_fraction": 0.05}
    config = {
        "task": task,
        "model_id": "fake",
        "url": url,
        "endpoint_type": "chat" if chat else "completions",
        "api_key_env": "API_KEY",
        "params": {**params, **extra.pop("params", {})},
        **extra,
    }
    path = results / "run_config.json"
    path.write_text(json.dumps(config))
    return path


# The invocation folder, id and time every golden script is rendered with (tests/golden).
GOLDEN_FOLDER = "/data/evals/2026-01-01-00-00-00-0000abcd"
GOLDEN_ID, GOLDEN_CREATED = "0000abcd", 1767225600.0


def plan_of(spec, folder: str = GOLDEN_FOLDER):
    """The plan spec's executor makes of it, with the golden scripts' folder, id and time."""
    from launcher.executors.registry import get

    return get(spec.executor)(spec.execution).plan(spec, GOLDEN_ID, folder, GOLDEN_CREATED)


def free_port(host: str = "127.0.0.1") -> int:
    """A port free at this moment (the kernel's pick): another process may still take it first."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def invocation_of(proc) -> str:
    """The invocation id from the launcher's start report."""
    return next(ln.split()[1].rstrip(":") for ln in proc.stdout.splitlines() if ln.startswith("invocation "))


def jobs(cli, ident) -> dict:
    """task name -> job status (from `status --json`)."""
    proc = cli("status", ident, "--json", check_rc=0)
    return {j["task"]: j for inv in json.loads(proc.stdout) for j in inv["jobs"]}


def wait_for(predicate, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def unavailable(problem: str, how: str) -> None:
    """A service the tests need is missing: fail under `make test` and in CI, skip elsewhere (a laptop)."""
    if os.environ.get("LAUNCHER_REQUIRE_DOCKER") == "1" or os.environ.get("CI"):
        pytest.fail(f"{problem} ({how})")
    pytest.skip(problem)


# `status`'s SCORE of launcher.gsm8k_cot_zeroshot answered perfectly (lm-eval's two filters).
GSM8K_PERFECT = "exact_match,flexible-extract=1.0000 exact_match,strict-match=1.0000"


def labelled_containers(docker_engine, invocation: str) -> list:
    """An invocation's containers (by label). The SDK lists, then inspects each one: a container removed
    in between (`--rm` at its exit, or a kill) raises NotFound, so the listing is simply taken again."""
    import time

    import docker

    for _ in range(50):
        try:
            return docker_engine.containers.list(
                all=True, filters={"label": f"launcher.invocation={invocation}"}
            )
        except docker.errors.NotFound:
            time.sleep(0.1)
    raise AssertionError(f"the containers of {invocation} kept vanishing while being listed")
