"""Shared fixtures: an isolated state dir, a CLI runner, Docker gating (skip on laptops, fail in CI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import TEST_IMAGE, unavailable

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated_state(tmp_path, monkeypatch):
    monkeypatch.setenv("LAUNCHER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "state"


class Cli:
    def __init__(self, env: dict):
        self.env = env

    def __call__(
        self, *args: str, env: dict | None = None, timeout: float = 120, check_rc: int | None = None
    ):
        full_env = {**os.environ, **self.env, **(env or {})}
        proc = subprocess.run(
            [sys.executable, "-m", "launcher", *args],
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
        )
        if check_rc is not None:
            assert proc.returncode == check_rc, (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:])
        return proc


@pytest.fixture
def cli():
    return Cli({"PYTHONPATH": str(ROOT)})


def _docker_ok() -> str | None:
    try:
        import docker

        docker.from_env(timeout=5).ping()
        return None
    except Exception as err:
        return str(err)[:200]


@pytest.fixture(scope="session")
def docker_engine():
    problem = _docker_ok()
    if problem:
        unavailable(f"Docker engine not reachable: {problem}", "`make test` starts the engine")
    import docker

    return docker.from_env()


def build_if_missing(docker_engine, image: str, *script_args: str) -> str:
    """`image`, built on first use with one of scripts/ (the same scripts `make` runs)."""
    try:
        docker_engine.images.get(image)
    except Exception:
        subprocess.run(["bash", *script_args], check=True, env={**os.environ, "PYTHON": sys.executable})
    return image


@pytest.fixture(scope="session")
def test_image(docker_engine):
    """The tiny task image (tests/images/testtask), from the local or given base."""
    folder = ROOT / "tests/images/testtask"
    return build_if_missing(
        docker_engine,
        TEST_IMAGE,
        str(ROOT / "scripts/build-image.sh"),
        TEST_IMAGE,
        str(folder / "Dockerfile"),
        str(folder),
    )


class RunningEndpoint:
    """The fake OpenAI-compatible endpoint (launcher.testing.endpoint) in its own process."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "launcher.testing.endpoint", "--port", "0", *args],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        line = self.proc.stdout.readline()
        assert line.startswith("listening on "), line
        self.port = int(line.split()[-1])
        self.base = f"http://127.0.0.1:{self.port}"

    def url(self, chat: bool = True) -> str:
        return f"{self.base}/v1/chat/completions" if chat else f"{self.base}/v1/completions"

    def stats(self) -> dict:
        import json
        import urllib.request

        with urllib.request.urlopen(f"{self.base}/stats", timeout=10) as resp:
            return json.load(resp)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture
def endpoint():
    started: list[RunningEndpoint] = []

    def start(
        mode: str = "oracle", latency: float = 0.0, fault_rate: float = 0.0, slow: float = 2.0, *extra: str
    ):
        ep = RunningEndpoint(
            "--mode",
            mode,
            "--latency",
            str(latency),
            "--fault-rate",
            str(fault_rate),
            "--slow",
            str(slow),
            *extra,
        )
        started.append(ep)
        return ep

    yield start
    for ep in started:
        ep.stop()


@pytest.fixture(scope="session")
def harness_image(docker_engine):
    """The real harness image (`make image`), built on first use if missing."""
    from launcher.catalog import HARNESS_IMAGE

    return build_if_missing(
        docker_engine, HARNESS_IMAGE, str(ROOT / "scripts/build-harness-image.sh"), HARNESS_IMAGE
    )


@pytest.fixture(scope="session")
def tools_image(docker_engine):
    """The image that runs the endpoint proxy and auto-export on Slurm nodes (`make tools-image`)."""
    from launcher.catalog import TOOLS_IMAGE

    return build_if_missing(
        docker_engine, TOOLS_IMAGE, str(ROOT / "scripts/build-tools-image.sh"), TOOLS_IMAGE
    )


# ---- compose services (pytest-docker) ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def docker_compose_command(docker_engine):
    """Debian's docker-compose 1.29 (`make compose`): it works with the legacy builder."""
    import shutil

    if not shutil.which("docker-compose"):
        unavailable("docker-compose is not installed", "`make compose` installs it")
    return "docker-compose"


@pytest.fixture(scope="session")
def docker_setup():
    return ["up -d"]  # pytest-docker's default adds --wait, which docker-compose 1.29 does not know


@pytest.fixture(scope="session")
def docker_compose_file(harness_image):
    """tests/compose.yaml, its endpoint on a port free now (several checkouts may test at once)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        os.environ["LAUNCHER_TEST_ENDPOINT_PORT"] = str(sock.getsockname()[1])
    os.environ["LAUNCHER_HARNESS_IMAGE"] = harness_image
    return str(ROOT / "tests" / "compose.yaml")


@pytest.fixture(scope="session")
def oracle_endpoint(docker_services) -> str:
    """The base URL of the compose `endpoint` service (oracle answers), once it answers."""
    import urllib.request

    base = f"http://127.0.0.1:{os.environ['LAUNCHER_TEST_ENDPOINT_PORT']}"

    def up() -> bool:
        try:
            with urllib.request.urlopen(f"{base}/stats", timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    docker_services.wait_until_responsive(check=up, timeout=90.0, pause=0.5)
    return base
