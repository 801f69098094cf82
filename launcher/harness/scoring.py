"""Per-sample scoring off the event loop: in worker processes, with a time limit per sample.

Python's `re` holds the GIL while it matches, so a scorer that backtracks on a degenerate reply would
freeze a thread pool's event loop as well; in a process it costs that sample only (an error after the
time limit) and SIGTERM still ends the run at once (close() kills the workers).

Throughput: samples are pipelined, not sent one round trip at a time. Each worker is a plain child
process (scoreworker) fed through its stdin and read through its stdout by the event loop itself: no
threads in the harness, no waiting for a reply before the next sample is sent, and a sample is one small
write and one line read. A worker answers in order, so the sample at the head of its queue is the one it
is scoring; its time limit runs from the previous answer. When it overruns, that worker is killed, that
sample alone errors and the samples queued behind it go to a fresh worker.

Not a multiprocessing.Pool: one apply_async round trip per sample costs threads that contend for the GIL
with the loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import pickle
import sys

from launcher.harness.api import Sample
from launcher.harness.scoreworker import frame

SCORE_TIMEOUT = 10.0  # seconds per sample
START_TIMEOUT = 60.0  # seconds a worker may take to import the task
MAX_REPLY = 64 * 1024 * 1024  # bytes of one answer line (the extracted text can be a whole reply)
# The worker imports what this process imports: its sys.path is this one (as multiprocessing's spawn
# does), not one that starts with its working directory (`python -m` would put that first).
BOOT = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
    "from launcher.harness.scoreworker import main; sys.exit(main(sys.argv[2:]))"
)


class ScoringTimeout(Exception):
    pass


class ScoringFailed(Exception):
    """The scorer raised ("<Type>: <message>"), or its worker died or could not start."""


class _Worker:
    def __init__(self, slot: int, queue: collections.deque | None = None):
        self.slot = slot
        self.queue: collections.deque[tuple[bytes, asyncio.Future]] = queue or collections.deque()
        self.proc: asyncio.subprocess.Process | None = None
        self.ready = False  # it said so: the task is imported, its head sample's clock may run
        self.dead = False  # killed or gone: nothing more is written to it or read from it
        self.since = 0.0  # loop time the head sample's clock (or the start's) started
        self.timer: asyncio.TimerHandle | None = None  # at or before since + limit; re-armed lazily
        self.unsent = bytearray()  # frames written at the end of this loop round, in one write
        self.serving: asyncio.Task | None = None


class ScorePool:
    """`await pool.score(sample, record)` -> (scores, extracted); raises ScoringTimeout or ScoringFailed.
    `await pool.close()` kills the workers. The task is found by module and name in each worker."""

    def __init__(
        self,
        module: str,
        task_name: str,
        workers: int,
        timeout: float = SCORE_TIMEOUT,
        start_timeout: float = START_TIMEOUT,
    ):
        self.module, self.task_name, self.timeout, self.start_timeout = (
            module,
            task_name,
            timeout,
            start_timeout,
        )
        self.slots: list[_Worker | None] = [None] * max(1, workers)
        self.started: list[_Worker] = []  # every worker of the run, reaped by close()
        self.broken: str | None = None  # a worker could not start: every later sample fails with this
        self.closed = False

    async def score(self, sample: Sample, record: dict) -> tuple[dict[str, float], str | None]:
        if self.broken:
            raise ScoringFailed(self.broken)
        if self.closed:
            raise ScoringFailed("the scoring pool is closed")
        i = min(range(len(self.slots)), key=lambda i: len(self.slots[i].queue) if self.slots[i] else 0)
        worker = self.slots[i] or self._start(i)
        done: asyncio.Future = asyncio.get_running_loop().create_future()
        payload = pickle.dumps((sample, record), protocol=pickle.HIGHEST_PROTOCOL)
        worker.queue.append((payload, done))
        if worker.proc is not None:
            self._send(worker, payload)
        if len(worker.queue) == 1:
            self._clock(worker)
        return await done

    def _send(self, worker: _Worker, payload: bytes) -> None:
        if not worker.unsent:
            asyncio.get_running_loop().call_soon(self._flush, worker)
        worker.unsent += frame(payload)

    def _flush(self, worker: _Worker) -> None:
        if not worker.dead:
            worker.proc.stdin.write(bytes(worker.unsent))
        worker.unsent.clear()

    # ---- one worker's life ---------------------------------------------------------------------------

    def _start(self, slot: int, queue: collections.deque | None = None) -> _Worker:
        worker = self.slots[slot] = _Worker(slot, queue)
        self.started.append(worker)
        worker.serving = asyncio.get_running_loop().create_task(self._serve(worker))
        return worker

    async def _serve(self, worker: _Worker) -> None:
        try:
            worker.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                BOOT,
                json.dumps(sys.path),
                str(os.getpid()),
                self.module,
                self.task_name,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=MAX_REPLY,
            )
        except OSError as err:
            self._break(worker, f"cannot start a scoring worker: {err}")
            return
        for payload, _ in worker.queue:
            self._send(worker, payload)
        self._clock(worker)
        while not worker.dead:
            try:
                line = await worker.proc.stdout.readline()
                answer = json.loads(line) if line else None
            except (ValueError, RecursionError):  # an answer past MAX_REPLY, or not JSON
                if not worker.dead:
                    self._replace(worker, ScoringFailed("the scorer's answer is unreadable"))
                return
            if worker.dead:
                return
            if not isinstance(answer, dict):  # end of output (or not ours): the worker died
                code = await worker.proc.wait()
                if worker.dead:
                    return
                if not worker.ready:
                    self._break(worker, f"the scoring worker exited with code {code} before it was ready")
                else:
                    self._replace(worker, ScoringFailed(f"the scoring worker exited with code {code}"))
                return
            if not worker.ready:
                worker.ready = True
            elif worker.queue:
                _, done = worker.queue.popleft()
                if not done.done():
                    if "error" in answer:
                        done.set_exception(ScoringFailed(str(answer["error"])))
                    else:
                        done.set_result((answer.get("scores") or {}, answer.get("extracted")))
            self._clock(worker)

    # The time limit: the head sample's clock restarts at every answer (one float, no timer call per
    # sample); a timer per worker fires at the earliest possible overrun and re-arms itself if the head
    # moved on since.

    def _limit(self, worker: _Worker) -> float:
        return self.timeout if worker.ready else self.start_timeout

    def _clock(self, worker: _Worker) -> None:
        """The clock of the sample now at the head of the queue (or of the start) runs from now."""
        loop = asyncio.get_running_loop()
        worker.since = loop.time()
        deadline = worker.since + self._limit(worker)
        if worker.timer is not None and worker.timer.when() > deadline:  # the start's longer limit is over
            worker.timer.cancel()
            worker.timer = None
        if worker.timer is None and not worker.dead and worker.proc is not None:
            worker.timer = loop.call_at(deadline, self._check, worker)

    def _check(self, worker: _Worker) -> None:
        worker.timer = None
        if worker.dead or (worker.ready and not worker.queue):
            return
        loop = asyncio.get_running_loop()
        deadline = worker.since + self._limit(worker)
        if loop.time() < deadline:
            worker.timer = loop.call_at(deadline, self._check, worker)
        elif not worker.ready:
            self._break(worker, f"the scoring worker did not start within {self.start_timeout:g} s")
        else:
            self._replace(worker, ScoringTimeout(f"scoring took longer than {self.timeout:g} s"))

    def _replace(self, worker: _Worker, error: Exception) -> None:
        """The head sample fails with `error`; the ones behind it go to a fresh worker in this slot."""
        self._kill(worker)
        if worker.queue:
            _, done = worker.queue.popleft()
            if not done.done():
                done.set_exception(error)
        if self.closed:
            return
        if worker.queue:
            self._start(worker.slot, worker.queue)
        else:
            self.slots[worker.slot] = None

    def _break(self, worker: _Worker, reason: str) -> None:
        self.broken = reason
        self._kill(worker)
        while worker.queue:
            _, done = worker.queue.popleft()
            if not done.done():
                done.set_exception(ScoringFailed(reason))

    def _kill(self, worker: _Worker) -> None:
        worker.dead = True
        if worker.timer is not None:
            worker.timer.cancel()
        if worker.proc is not None and worker.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):  # it is gone already
                worker.proc.kill()  # SIGKILL: a scorer stuck in a regex dies with its process

    async def close(self) -> None:
        """Kill every worker and wait for them (ms): no process outlives the run, no sample waits."""
        self.closed = True
        for worker in self.started:
            self._kill(worker)
            for _, done in worker.queue:
                done.cancel()
            worker.queue.clear()
        for worker in self.started:
            if worker.proc is not None:
                await worker.proc.wait()
            worker.serving.cancel()  # one still starting its process: cancelling it kills that process
        await asyncio.gather(*(w.serving for w in self.started), return_exceptions=True)
