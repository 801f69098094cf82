"""SIGTERM ends the harness with exit 143 and nothing half written, whatever it is doing: real harness
processes (`python -m launcher.harness`), signalled in a phase they announce (tests/harness_tasks.py
SLOW_TASKS write $HARNESS_MARK when the slow part begins). The worker-pool phase is
tests/integration/test_harness.py::test_sigterm_stops_promptly_with_a_distinct_code."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import write_run_config

from launcher.harness import sigterm

ROOT = Path(__file__).resolve().parents[2]
TASKS = "harness_tasks:SLOW_TASKS"


@pytest.fixture(autouse=True)
def spawned():
    """Each harness this test started is gone at its end (its workers die with it: PR_SET_PDEATHSIG)."""
    yield
    for proc in SPAWNED:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    SPAWNED.clear()


SPAWNED: list[subprocess.Popen] = []


def spawn(mark: Path, *args) -> subprocess.Popen:
    SPAWNED.append(proc := _popen(mark, *args))
    return proc


def _popen(mark: Path, *args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "launcher.harness", "--tasks", TASKS, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}", "HARNESS_MARK": str(mark)},
    )


def wait_until(proc: subprocess.Popen, ready, what: str) -> None:
    deadline = time.monotonic() + 60
    while not ready():
        assert proc.poll() is None, f"the harness ended before {what}: {proc.communicate()[0]}"
        assert time.monotonic() < deadline, f"no {what} within 60 s"
        time.sleep(0.02)


def stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == sigterm.EXIT == 143, (proc.returncode, out)
    assert "stopped by SIGTERM" in out and "Traceback" not in out, out
    return out


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file under `folder` with its bytes (a FIFO's as None)."""
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None
        for p in sorted(folder.rglob("*"))
        if not p.is_dir()
    }


def processes_with(mark: Path) -> list[int]:
    """Processes whose environment names this test's mark file: the harness and its scoring workers."""
    needle = f"HARNESS_MARK={mark}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def test_sigterm_while_loading_the_task(tmp_path):
    results, mark = tmp_path / "r", tmp_path / "mark"
    config = write_run_config(results, task="slow_load", params={"parallelism": 1})
    (results / "samples.jsonl").write_text(
        '{"key": "add-0", "error": null, "scores": {"exact_match": 1.0}}\n'
    )
    before = snapshot(results)
    proc = spawn(mark, "run", "--config", config)
    wait_until(proc, mark.exists, "the task's loading")
    stop(proc)
    assert snapshot(results) == before  # no progress.json, no results, no temporary file


def test_sigterm_while_reading_the_checkpoint(tmp_path):
    """A 60 MB checkpoint (about a second to read): the SIGTERM comes when the task has loaded, so while
    the harness reads it (the line it prints next is not there)."""
    results, mark = tmp_path / "r", tmp_path / "mark"
    config = write_run_config(results, task="slow_score", params={"parallelism": 1})
    line = json.dumps({"key": "other", "error": None, "scores": {}, "pad": "x" * 500}) + "\n"
    (results / "samples.jsonl").write_text(line * ((60 << 20) // len(line)))
    before = snapshot(results)
    proc = spawn(mark, "run", "--config", config)
    wait_until(proc, mark.exists, "the task's loading")
    out = stop(proc)
    assert "samples already finished" not in out  # it was still reading
    assert snapshot(results) == before


def test_sigterm_while_scoring_again(tmp_path):
    """`score` rescoring saved samples: the SIGTERM reaches the harness while its worker scores; the
    checkpoint stays as it was (not rewritten in part) and no worker outlives the harness."""
    results, mark = tmp_path / "r", tmp_path / "mark"
    write_run_config(results, task="slow_score", params={"parallelism": 1})
    records = [
        {"key": f"add-{i}", "error": None, "scores": None, "id": f"add-{i}", "output": {"response": "x"}}
        for i in range(3)
    ]
    (results / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    before = snapshot(results)
    proc = spawn(mark, "score", results)
    wait_until(proc, mark.exists, "the scoring")
    wait_until(proc, lambda: len(processes_with(mark)) >= 2, "the harness and its workers in /proc")
    stop(proc)
    assert snapshot(results) == before
    deadline = time.monotonic() + 10
    while processes_with(mark) and time.monotonic() < deadline:  # killed; /proc may lag the reaping
        time.sleep(0.05)
    assert processes_with(mark) == []


@pytest.fixture
def installed():
    previous = signal.getsignal(signal.SIGTERM)
    sigterm.install()
    yield
    signal.signal(signal.SIGTERM, previous)
    sigterm._raised = sigterm._pending = False


def test_a_sigterm_during_a_deferred_write_takes_effect_after_it(installed, tmp_path):
    from launcher.harness import checkpoint

    path = tmp_path / "results.json"
    with pytest.raises(sigterm.Terminated), sigterm.deferred():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # the handler has run by now (it runs between two bytecodes of this thread)
        checkpoint.write_json(path, {"whole": True})  # a nested deferred write: not cut short either
        written = json.loads(path.read_text())
    assert written == {"whole": True} and [p.name for p in tmp_path.iterdir()] == ["results.json"]
    os.kill(os.getpid(), signal.SIGTERM)  # a second SIGTERM while the first unwinds: no second raise
    time.sleep(0.05)


def test_a_sigterm_while_diverted_calls_back_instead_of_raising(installed):
    calls = []
    with sigterm.diverted(lambda: calls.append(1)):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
    assert calls == [1]
    with pytest.raises(sigterm.Terminated):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)


def test_run_cancels_the_coroutine_then_raises(installed):
    """In the event loop a SIGTERM is never raised inside asyncio's own code: the coroutine is cancelled
    (its finally runs) and Terminated comes out of run; also when it ended before the cancellation."""
    import asyncio

    cleaned = []

    async def waits():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.sleep(30)
        finally:
            cleaned.append(True)

    with pytest.raises(sigterm.Terminated):
        sigterm.run(waits())
    assert cleaned == [True]
    sigterm._raised = False

    async def ends_at_once():
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # bytecodes for the handler to run in; no await: nothing to cancel
            pass
        return "done"

    with pytest.raises(sigterm.Terminated):
        sigterm.run(ends_at_once())
