"""The proxy's one request budget for every task of the invocation: how many requests may be upstream at
once, found by the proxy itself, and who goes next.

`Controller` (pure, the clock passed in) is AIMD with a latency-gradient signal, as TCP Vegas and
Netflix's concurrency-limits do. Growth, only while the demand fills the limit: slow start (+1 per clean
answer, doubling per round trip) until the latency starts to rise (EARLY x its floor, as TCP HyStart) or
up to half the concurrency of the last trouble; additive increase (+1 per round trip) up to just below
it; then a probe of +1 every PROBE round trips (at least PROBE_SECONDS; TCP CUBIC's plateau); clean
answers above that concurrency forget it (a passing error costs little). Multiplicative decrease on
429/503/504 and timeouts (x0.5, and below the concurrency at which the rejected request was sent: a
capacity of K is found in one burst) and on a smoothed latency above TOLERANCE x its recent floor (by the
gradient TOLERANCE x floor / latency, within x0.5-x0.9); one decrease per round trip. A latency that
does not follow the concurrency down (halved, and still above 3/4 of its peak) was not caused by it (the
proxy's own host, longer prompts): it becomes the floor and the limit comes back. The same holds, without
the halving, for a rise that answers sent at the same concurrency show too (each answer's latency is also
smoothed per quarter octave of its position, the requests upstream when it was sent): under a queue at
the upstream a concurrency has the same latency each time, under a busy host it does not. `max_concurrent`
is the hard cap.

`FairQueue` (pure): per-task FIFO queues served round-robin, so a task with a large parallelism cannot
starve another. `Limiter` (asyncio) puts both together with the other hard caps (requests_per_second
evenly spaced, tokens_per_second spent after each answer) and Retry-After: no request starts before
the time an upstream asked for.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections import deque
from dataclasses import dataclass, field

from launcher.proxy.settings import BudgetSettings

TASK_HEADER = "X-Launcher-Task"  # sent by launcher.harness.client (which imports no launcher part)
INITIAL = 8  # the first limit (below max_concurrent): slow start reaches 64 in three round trips
TOLERANCE = 2.0  # smoothed latency over its recent floor that counts as queueing at the upstream
SMOOTHING = 0.1  # EWMA weight of one answer's latency (about the last 10 answers)
FLOOR_WINDOW = 1000  # the floor is the lowest smoothed latency of the last 1,000-2,000 answers
BACKOFF_OVERLOAD, BACKOFF_LATENCY = 0.5, 0.9
EARLY = 1.5  # smoothed latency over its floor that ends slow start (1.25 ended it on this host's noise)
PROBE, PROBE_SECONDS = 8, 5.0  # near the last trouble: +1 per PROBE round trips and at least 5 s
SAME_SHARE = 0.75  # the share of a rise seen at the same concurrency that makes it not caused by it


@dataclass
class Controller:
    cap: int  # max_concurrent: never exceeded
    limit: float = INITIAL
    ceiling: float | None = None  # where the last trouble was: slow start below half, a probe above
    changed_at: float = 0.0
    tried: list | None = None  # [limit before, highest latency] of the decreases for latency in a row
    smooth: float | None = None  # EWMA of the latency of clean answers (s)
    hold_until: float = 0.0  # one decrease per round trip: a burst of 429s is one signal
    window: list = field(default_factory=lambda: [math.inf, math.inf, 0])  # previous min, current min, n
    at: dict = field(default_factory=dict)  # position (quarter octaves): [EWMA, prev min, cur min, n]

    def __post_init__(self):
        self.limit = float(min(self.cap, self.limit))

    @property
    def allowed(self) -> int:
        return max(1, min(self.cap, int(self.limit)))

    @property
    def floor(self) -> float:
        return min(self.window[0], self.window[1])

    def rise_at(self, latency: float, position: int) -> float | None:
        """The smoothed latency of answers sent at about `position` over its recent floor (None: fewer
        than 1/SMOOTHING answers there yet)."""
        s = self.at.setdefault(int(4 * math.log2(position)), [latency, math.inf, math.inf, 0])
        s[0] += SMOOTHING * (latency - s[0])
        s[3] += 1
        if s[3] >= 1 / SMOOTHING:
            s[2] = min(s[2], s[0])
        if s[3] >= FLOOR_WINDOW:
            s[1], s[2], s[3] = s[2], s[0], 1 / SMOOTHING
        low = min(s[1], s[2])
        return s[0] / low if low < math.inf else None

    def on_success(self, now: float, latency: float, in_flight: int, position: int | None = None) -> None:
        """A clean answer that took `latency` s; `in_flight` requests (this one included) were upstream;
        `position`: how many were when it was sent (itself included), when known."""
        self.smooth = latency if self.smooth is None else self.smooth + SMOOTHING * (latency - self.smooth)
        prev, cur, n = self.window
        self.window = [cur, self.smooth, 1] if n >= FLOOR_WINDOW else [prev, min(cur, self.smooth), n + 1]
        same = self.rise_at(latency, position) if position else None
        if self.smooth > TOLERANCE * self.floor:
            if same is not None and same >= SAME_SHARE * self.smooth / self.floor:
                # as much slower at the same concurrency: not caused by it (this machine's CPU, the
                # upstream's other users). The floor rises by as much; the limit stays.
                floor = self.floor * same  # only that part of the rise: a queue above it stays visible
                self.window, self.tried = [floor, floor, 0], None
                return
            if self.tried is not None:
                self.tried[1] = max(self.tried[1], self.smooth)
            if now < self.hold_until:
                return
            if (
                self.tried is not None
                and self.limit <= self.tried[0] / 2
                and self.smooth > 0.75 * self.tried[1]
            ):
                # Half the requests did not make them faster: not queueing at the upstream (e.g. this
                # machine's CPU, longer prompts). The latency is the new floor; the limit comes back.
                self.limit, self.tried = max(self.limit, self.tried[0]), None
                self.window = [self.smooth, self.smooth, 0]
                return
            factor = min(BACKOFF_LATENCY, max(BACKOFF_OVERLOAD, TOLERANCE * self.floor / self.smooth))
            self.ceiling = self.limit
            self.tried = self.tried or [self.limit, self.smooth]
            self._decrease(now, self.limit * factor)
            self.hold_until = now + 2 * self.smooth  # the answers of requests sent after it
            return
        self.tried = None
        if in_flight * 2 < self.limit:  # the demand does not fill the limit: no evidence for more
            return
        if self.ceiling is None and self.smooth > EARLY * self.floor:
            self.ceiling = 2 * self.limit  # the latency starts to rise: slow start ends (as HyStart)
        if self.ceiling is None or self.limit < self.ceiling / 2:
            step = 1.0  # slow start
        elif self.limit < self.ceiling - 1:
            step = 1.0 / self.limit
        elif now - self.changed_at >= max(PROBE * self.smooth, PROBE_SECONDS):
            step = 1.0  # one probe above the last trouble
        else:
            return
        self.limit = min(float(self.cap), self.limit + step)
        self.changed_at = now
        if self.ceiling is not None and self.limit > self.ceiling:
            self.ceiling = None  # clean above the last trouble: it has passed, grow fast again

    def on_overload(self, now: float, position: int | None = None) -> None:
        """429/503/504 or a timeout; `position`: the requests upstream when the rejected one was sent
        (itself included), when known: the limit goes below it and the trouble is remembered there."""
        if now < self.hold_until:  # the same burst: only what it shows about the capacity
            if position:
                self.ceiling = min(self.ceiling or math.inf, float(position))
                self.limit = max(1.0, min(self.limit, position - 1.0))
            return
        trouble = min(self.limit, float(position)) if position else self.limit
        self.ceiling = trouble
        self._decrease(now, min(self.limit * BACKOFF_OVERLOAD, trouble - 1))

    def _decrease(self, now: float, to: float) -> None:
        self.limit = max(1.0, to)
        self.hold_until = now + (self.smooth or 0.0)
        self.changed_at = now


class FairQueue:
    """Waiters per task, FIFO inside a task, tasks served round-robin."""

    def __init__(self):
        self.queues: dict[str, deque] = {}
        self.turn: deque[str] = deque()  # tasks with waiters, next first

    def __len__(self) -> int:
        return sum(len(q) for q in self.queues.values())

    def push(self, task: str, item) -> None:
        if task not in self.queues:
            self.queues[task] = deque()
            self.turn.append(task)
        self.queues[task].append(item)

    def pop(self):
        task = self.turn.popleft()
        queue = self.queues[task]
        item = queue.popleft()
        if queue:
            self.turn.append(task)
        else:
            del self.queues[task]
        return item

    def remove(self, task: str, item) -> None:
        queue = self.queues.get(task)
        if queue is not None and item in queue:
            queue.remove(item)
            if not queue:
                del self.queues[task]
                self.turn.remove(task)


@dataclass
class Ticket:
    sent: float = 0.0  # when it went upstream (monotonic)
    position: int = 0  # requests upstream when it was let in, itself included


class Limiter:
    def __init__(self, settings: BudgetSettings, clock=time.monotonic):
        self.settings, self.clock = settings, clock
        self.control = Controller(settings.max_concurrent)
        self.queue = FairQueue()
        self.in_flight = self.max_in_flight = 0
        self.gate = 0.0  # no request starts before this (Retry-After)
        self.wake_at: asyncio.TimerHandle | None = None
        self.next_start = 0.0
        self.tokens = float(settings.tokens_per_second or 0)
        self.tokens_at = clock()
        self.limits: deque[int] = deque(maxlen=1000)  # the limit after each answer: `settled` is the median
        self.waited = 0.0  # seconds requests spent waiting for a slot, Retry-After and the rate caps
        self.throttled = self.overloaded = self.server_errors = 0

    # ---- admission ------------------------------------------------------------------------------------
    def _free(self) -> bool:
        return self.in_flight < self.control.allowed and self.clock() >= self.gate

    async def acquire(self, task: str = "") -> Ticket:
        asked = self.clock()
        if self.queue or not self._free():
            waiter = asyncio.get_running_loop().create_future()
            self.queue.push(task, waiter)
            self._wake()
            try:
                position = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():  # granted just as the client went away
                    self._leave()
                else:
                    self.queue.remove(task, waiter)
                raise
        else:
            position = self._enter()
        try:
            await self._pace()
        except BaseException:
            self._leave()
            raise
        now = self.clock()
        self.waited += now - asked
        return Ticket(now, position)

    def _enter(self) -> int:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return self.in_flight

    def _leave(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self.queue and self._free():
            waiter = self.queue.pop()
            if not waiter.done():
                waiter.set_result(self._enter())
        if self.queue and self.clock() < self.gate and self.wake_at is None:
            loop = asyncio.get_running_loop()
            self.wake_at = loop.call_later(self.gate - self.clock(), self._wake_later)

    def _wake_later(self) -> None:
        self.wake_at = None
        self._wake()

    # ---- outcome --------------------------------------------------------------------------------------
    def release(
        self,
        ticket: Ticket,
        status: int | None,
        tokens: int = 0,
        retry_after: float | None = None,
        timed_out: bool = False,
    ) -> None:
        """`status`: the upstream's HTTP status, None when there was no answer (a timeout, which counts
        as overload, or a broken connection). `retry_after`: no request starts before that many s."""
        now = self.clock()
        if status == 429:
            self.throttled += 1
        elif status is not None and status >= 500:
            self.server_errors += 1
        if status in (429, 503, 504) or timed_out:
            self.overloaded += 1
            self.control.on_overload(now, None if timed_out else ticket.position)
        elif status is not None and status < 400:
            self.control.on_success(now, now - ticket.sent, self.in_flight, ticket.position)
        if retry_after:
            self.gate = max(self.gate, now + retry_after)
        if self.settings.tokens_per_second:
            self._refill()
            self.tokens -= tokens
        self.limits.append(self.control.allowed)
        self._leave()

    # ---- the rate caps --------------------------------------------------------------------------------
    def _refill(self) -> None:
        now = self.clock()
        rate = self.settings.tokens_per_second
        self.tokens = min(float(rate), self.tokens + (now - self.tokens_at) * rate)
        self.tokens_at = now

    async def _pace(self) -> None:
        rate = self.settings.requests_per_second
        if rate:
            now = self.clock()
            start = max(now, self.next_start)
            self.next_start = start + 1.0 / rate
            if start > now:
                await asyncio.sleep(start - now)
        if self.settings.tokens_per_second:
            self._refill()
            while self.tokens < 0:
                await asyncio.sleep(-self.tokens / self.settings.tokens_per_second)
                self._refill()

    def resize(self, settings: BudgetSettings) -> None:
        """New hard caps (a Slurm node's share of the invocation's, launcher.proxy.node); the adaptive
        limit stays where it is, below the new max_concurrent."""
        self.settings = settings
        self.control.cap = settings.max_concurrent
        self._wake()

    def snapshot(self) -> dict:
        """The `concurrency` entry of the proxy's counters (launcher.proxy.stats)."""
        return {
            "limit": self.control.allowed,
            "settled": int(statistics.median(self.limits)) if self.limits else self.control.allowed,
            "max_concurrent": self.settings.max_concurrent,
            "queued": len(self.queue),
            "upstream_429": self.throttled,
            "upstream_5xx": self.server_errors,
            "overloads": self.overloaded,
            "waited_s": round(self.waited, 3),
        }
