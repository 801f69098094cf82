"""The scoring pool with real worker processes (this module is the task registry they import). A stuck
scorer is a sleep standing in for a backtracking regex (both hold their worker until it is killed): that
sample errors alone, the samples queued behind it are scored by a fresh worker, the event loop keeps
running, and close() leaves no process behind."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from launcher.harness.scoring import ScorePool, ScoringFailed, ScoringTimeout


def _score(sample, record):
    if sample == "stuck":
        time.sleep(3600)
    if sample == "raises":
        raise ValueError("bad reply")
    if sample == "prints":
        print('{"scores": {"acc": 0.0}}')  # a scorer's print never reaches the protocol
    if sample == "dies":
        os._exit(3)
    if sample.startswith("pid"):
        return {"acc": 1.0}, str(os.getpid())
    return {"acc": 1.0}, sample


TASKS = [SimpleNamespace(name="t", score=_score)]


def score_all(samples, workers=1, timeout=2.0, module=__name__):
    """Every sample's result or exception. The start-up limit is an hour: a sample that waited for it
    instead of its own limit would fail the wait_for (a wrong limit, not a slow machine: 2 s vs 3,600 s)."""

    async def run():
        pool = ScorePool(module, "t", workers, timeout, start_timeout=3600.0)
        try:
            scored = asyncio.gather(*(pool.score(s, {}) for s in samples), return_exceptions=True)
            return await asyncio.wait_for(scored, 120)
        finally:
            await pool.close()

    return dict(zip(samples, asyncio.run(run()), strict=True))


def test_a_stuck_sample_errors_alone_and_the_ones_behind_it_are_scored():
    samples = (
        [f"s{i}" for i in range(6)] + ["stuck", "raises", "prints", "dies"] + [f"s{i}" for i in range(6, 12)]
    )
    results = score_all(samples)
    assert isinstance(results.pop("stuck"), ScoringTimeout)
    assert str(results.pop("raises")) == "ValueError: bad reply"
    assert "exited with code 3" in str(results.pop("dies"))
    assert results == {s: ({"acc": 1.0}, s) for s in results}


def test_the_loop_runs_while_a_scorer_is_stuck_and_close_kills_it():
    async def run():
        pool = ScorePool(__name__, "t", 1, 600.0)
        pid = (await pool.score("pid", {}))[1]
        stuck = asyncio.ensure_future(pool.score("stuck", {}))
        ticks = 0
        while ticks < 20:  # the loop is free: each tick is a round of the loop, not a wait on the worker
            await asyncio.sleep(0.01)
            ticks += 1
        assert not stuck.done()
        await pool.close()
        assert stuck.cancelled()
        return int(pid)

    pid = asyncio.run(run())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped: nothing outlives the pool


def test_a_task_module_that_cannot_be_imported_fails_every_sample_with_the_reason():
    results = score_all(["a", "b", "c"], workers=2, module="no_such_module_here")
    assert all(isinstance(r, ScoringFailed) and "before it was ready" in str(r) for r in results.values())


def test_samples_spread_over_the_workers():
    results = score_all([f"pid{i}" for i in range(200)], workers=2)
    assert all(scores == {"acc": 1.0} for scores, _ in results.values())
    assert len({pid for _, pid in results.values()}) == 2


PARENT = """
import asyncio, sys
sys.path[:0] = sys.argv[1:]
from launcher.harness.scoring import ScorePool

async def main():
    pool = ScorePool("test_harness_scoring_pool", "t", 1, 600.0)
    print((await pool.score("pid", {}))[1], flush=True)
    await pool.score("stuck", {})

asyncio.run(main())
"""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="Linux: PR_SET_PDEATHSIG and /proc")
def test_a_worker_stuck_in_a_scorer_dies_with_a_killed_harness():
    here = os.path.dirname(__file__)
    root = os.path.dirname(os.path.dirname(here))
    parent = subprocess.Popen([sys.executable, "-c", PARENT, here, root], stdout=subprocess.PIPE, text=True)
    worker = int(parent.stdout.readline())
    time.sleep(0.5)  # let it enter the stuck scorer
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 30
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(worker), "the stuck worker outlived the harness"
