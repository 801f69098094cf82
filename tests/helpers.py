"""Small helpers the CLI tests share: read ids and states the way a user would."""

import json
import os
import time

import pytest


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
