"""Per-sample scoring off the event loop: in worker processes, with a time limit.

Python's `re` holds the GIL while it matches, so a scorer that backtracks on a degenerate reply would
freeze a thread pool's event loop as well; in a process it costs that sample only (an error after
SCORE_TIMEOUT) and SIGTERM still ends the run at once (close() kills the workers).
"""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
from typing import Any

from launcher.harness.api import Sample

SCORE_TIMEOUT = 10.0  # seconds per sample
_TASKS: dict[str, dict[str, Any]] = {}  # per worker: registry spec -> name -> api.Task


class ScoringTimeout(Exception):
    pass


def registry(spec: str) -> dict[str, Any]:
    """`module` or `module:attribute` -> task name -> api.Task (the attribute, default TASKS, may be a
    mapping or a sequence of tasks)."""
    module, _, attribute = spec.partition(":")
    found = getattr(importlib.import_module(module), attribute or "TASKS")
    return dict(found) if isinstance(found, dict) else {t.name: t for t in found}


def _score_in_worker(module: str, task_name: str, sample: Sample, record: dict):
    if module not in _TASKS:
        _TASKS[module] = registry(module)
    scores, extracted = _TASKS[module][task_name].score(sample, record)
    return {k: float(v) for k, v in scores.items()}, extracted


class ScorePool:
    """`await pool.score(sample, record)` -> (scores, extracted). One single-process pool per slot, so a
    stuck scorer is killed without touching the others; the task is found by module and name in each
    worker (spawned: nothing of the parent's loop or sockets is inherited)."""

    def __init__(self, module: str, task_name: str, workers: int, timeout: float = SCORE_TIMEOUT):
        self.module, self.task_name, self.timeout = module, task_name, timeout
        self.pools: list = [None] * workers
        self.free: asyncio.Queue[int] = asyncio.Queue()
        for i in range(workers):
            self.free.put_nowait(i)

    async def score(self, sample: Sample, record: dict) -> tuple[dict[str, float], str | None]:
        loop = asyncio.get_running_loop()
        slot = await self.free.get()
        try:
            if self.pools[slot] is None:
                self.pools[slot] = multiprocessing.get_context("spawn").Pool(1)
            done: asyncio.Future = loop.create_future()

            def settle(method: str, value) -> None:
                loop.call_soon_threadsafe(lambda: done.done() or getattr(done, method)(value))

            self.pools[slot].apply_async(
                _score_in_worker,
                (self.module, self.task_name, sample, record),
                callback=lambda v: settle("set_result", v),
                error_callback=lambda e: settle("set_exception", e),
            )
            try:
                return await asyncio.wait_for(done, self.timeout)
            except asyncio.TimeoutError:
                self._terminate(slot)  # the stuck worker goes; the next sample gets a fresh one
                raise ScoringTimeout(f"scoring took longer than {self.timeout:g} s") from None
        finally:
            self.free.put_nowait(slot)

    def _terminate(self, slot: int) -> None:
        pool, self.pools[slot] = self.pools[slot], None
        if pool is not None:
            pool.terminate()  # SIGTERM to the worker: a matching regex dies with its process

    def close(self) -> None:
        for slot in range(len(self.pools)):
            self._terminate(slot)
