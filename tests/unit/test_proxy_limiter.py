"""The proxy's adaptive budget: the AIMD controller and the fair queue as pure units (the clock passed in),
and the asyncio limiter around them (real event loop, no upstream)."""

from __future__ import annotations

import asyncio

import pytest

from launcher.proxy.limiter import INITIAL, PROBE_SECONDS, Controller, FairQueue, Limiter
from launcher.proxy.settings import BudgetSettings


def round_trip(c: Controller, now: float, latency: float, demand: int | None = None) -> float:
    """One round trip at the current limit: every slot answers cleanly after `latency`."""
    n = c.allowed
    for _ in range(n):
        c.on_success(now + latency, latency, min(n, demand or n))
    return now + latency


@pytest.mark.parametrize(
    "cap, trips, expected",
    [
        (64, 0, INITIAL),
        (64, 1, 2 * INITIAL),  # slow start: doubles per round trip
        (64, 2, 4 * INITIAL),
        (64, 10, 64),  # never past max_concurrent
        (4, 0, 4),  # a cap below the first limit
        (4, 5, 4),
    ],
)
def test_slow_start_doubles_per_round_trip_up_to_the_cap(cap, trips, expected):
    c, now = Controller(cap), 0.0
    for _ in range(trips):
        now = round_trip(c, now, 0.1)
    assert c.allowed == expected


def test_no_growth_without_demand():
    c, now = Controller(64), 0.0
    for _ in range(20):
        for _ in range(2):  # only 2 requests ever in flight
            c.on_success(now, 0.1, 2)
        now += 0.1
    assert c.allowed == INITIAL


@pytest.mark.parametrize(
    "limit, positions, expected",
    [
        (32, [17] * 16, 16),  # a capacity of 16: the limit goes below the first rejected position
        (32, [30, 25, 17], 16),  # a burst is one decrease; the lowest rejected position wins
        (32, [33], 16),  # rejected above the limit: halved
        (10, [1], 1),  # a quota exhausted: down to one, never zero
    ],
)
def test_429_burst_is_one_multiplicative_decrease_below_the_rejected_position(limit, positions, expected):
    c = Controller(64, limit=limit)
    c.smooth = 0.1  # a round trip: the hold window of one decrease
    for i, position in enumerate(positions):
        c.on_overload(0.001 * i, position)
    assert c.allowed == expected


def test_after_an_overload_the_limit_holds_below_it_then_probes():
    c, now = Controller(64, limit=32), 0.0
    c.smooth = 0.1
    c.on_overload(now, 17)
    assert c.allowed == 16 and c.ceiling == 17
    for _ in range(20):  # 2 s of clean round trips: no probe yet (PROBE_SECONDS)
        now = round_trip(c, now, 0.1)
    assert c.allowed == 16
    now = round_trip(c, now + PROBE_SECONDS, 0.1)
    assert c.allowed == 17  # one probe, to where the trouble was
    round_trip(c, now + PROBE_SECONDS, 0.1)
    assert c.allowed == 18 + 16 and c.ceiling is None  # clean above it: forgotten, slow start again


def test_a_lone_rejected_request_recovers_by_doubling_after_one_probe():
    c = Controller(64, limit=64)
    c.on_overload(0.0, 1)
    assert c.allowed == 1
    now = round_trip(c, PROBE_SECONDS, 0.1)
    for _ in range(5):
        now = round_trip(c, now, 0.1)
    assert c.allowed == 64


def test_a_timeout_halves_the_limit():
    c = Controller(64, limit=40)
    c.on_overload(1.0)
    assert c.allowed == 20


@pytest.mark.parametrize(
    "latencies, decreased",
    [
        ([0.1] * 300, False),  # steady
        ([0.1, 0.15, 0.05] * 100, False),  # noisy but not rising
        ([0.1] * 100 + [0.3] * 100, True),  # tripled: queueing at the upstream
        ([0.1] * 100 + [0.14] * 100, False),  # below TOLERANCE x the floor
    ],
)
def test_latency_well_above_its_floor_decreases(latencies, decreased):
    c = Controller(1000, limit=50, ceiling=51)
    now, lowest = 0.0, c.limit
    for latency in latencies:
        now += 0.01
        c.on_success(now, latency, 50)
        lowest = min(lowest, c.limit)
    assert (lowest < 50) is decreased


def test_a_slow_drift_becomes_the_new_floor():
    """Latency that rises over thousands of answers (longer prompts) is not read as queueing forever."""
    c = Controller(1000, limit=50, ceiling=51)
    now = 0.0
    for i in range(3000):
        now += 0.01
        c.on_success(now, 0.1 + i * 0.0001, 50)  # 0.1 s -> 0.4 s
    assert c.floor > 0.2 and c.limit >= 45


def test_fair_queue_serves_tasks_round_robin_fifo_inside_each():
    q = FairQueue()
    for i in range(100):
        q.push("big", f"big{i}")
    q.push("small", "small0")
    q.push("small", "small1")
    order = [q.pop() for _ in range(6)]
    assert order == ["big0", "small0", "big1", "small1", "big2", "big3"]
    q.remove("big", "big4")
    assert q.pop() == "big5" and len(q) == 102 - 8  # 7 served, 1 gone


def run(coro):
    return asyncio.run(coro)


def test_limiter_never_exceeds_max_concurrent_and_serves_a_late_task_early():
    async def go():
        limiter = Limiter(BudgetSettings(max_concurrent=3))
        order: list[str] = []
        peak = 0

        async def one(task: str, i: int):
            nonlocal peak
            ticket = await limiter.acquire(task)
            order.append(task)
            peak = max(peak, limiter.in_flight)
            await asyncio.sleep(0.005)
            limiter.release(ticket, 200)

        big = [asyncio.create_task(one("big", i)) for i in range(60)]
        await asyncio.sleep(0)  # the big task's requests queue first
        small = [asyncio.create_task(one("small", i)) for i in range(3)]
        await asyncio.gather(*big, *small)
        return limiter, order, peak

    limiter, order, peak = run(go())
    assert peak == 3 and limiter.max_in_flight == 3 and limiter.in_flight == 0
    last_small = max(i for i, t in enumerate(order) if t == "small")
    assert last_small < 3 + 2 * 3  # round-robin: not behind the big task's 60
    assert limiter.snapshot()["queued"] == 0


def test_limiter_holds_every_request_until_retry_after():
    async def go():
        limiter = Limiter(BudgetSettings(max_concurrent=8))
        loop = asyncio.get_running_loop()
        first = await limiter.acquire("a")
        limiter.release(first, 429, retry_after=0.2)
        asked = loop.time()
        starts = []

        async def one(task: str):
            ticket = await limiter.acquire(task)
            starts.append(loop.time())
            limiter.release(ticket, 200)

        await asyncio.gather(*(one(t) for t in "abc"))  # the limit is 1 now: one after the other
        return limiter, min(starts) - asked

    limiter, waited = run(go())
    assert waited >= 0.19  # not before the time the upstream asked for
    snap = limiter.snapshot()
    assert snap["upstream_429"] == 1 and snap["overloads"] == 1 and snap["waited_s"] > 0.5


def test_limiter_counts_5xx_and_only_overload_statuses_decrease():
    async def go():
        limiter = Limiter(BudgetSettings(max_concurrent=64))
        for status in (500, 502, 404):
            limiter.release(await limiter.acquire(), status)
        before = limiter.control.allowed
        limiter.release(await limiter.acquire(), 503)
        return limiter, before

    limiter, before = run(go())
    snap = limiter.snapshot()
    # a 503 for a request sent alone: nothing more until a probe
    assert before == INITIAL and snap["limit"] == 1 and snap["upstream_5xx"] == 3


def test_limiter_cancelled_waiter_leaves_the_queue():
    async def go():
        limiter = Limiter(BudgetSettings(max_concurrent=1))
        held = await limiter.acquire("a")
        waiting = asyncio.create_task(limiter.acquire("b"))
        await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        limiter.release(held, 200)
        again = await limiter.acquire("c")  # the slot is free, not held by the cancelled waiter
        limiter.release(again, 200)
        return limiter

    limiter = run(go())
    assert limiter.in_flight == 0 and len(limiter.queue) == 0


def test_limiter_tokens_overdrawn_waits():
    async def go():
        limiter = Limiter(BudgetSettings(max_concurrent=10, tokens_per_second=1000))
        limiter.release(await limiter.acquire(), 200, tokens=1100)  # overdrawn by ~100 tokens
        loop = asyncio.get_running_loop()
        start = loop.time()
        limiter.release(await limiter.acquire(), 200)
        return loop.time() - start, limiter.tokens

    waited, tokens = run(go())
    assert waited > 0 and tokens >= -1  # it waited until the budget was back to >= 0


def test_slow_start_ends_when_the_latency_starts_to_rise():
    c, now = Controller(1000), 0.0
    for latency in (0.1, 0.1, 0.1, 0.14, 0.16, 0.2):  # the queue builds as the limit doubles
        now = round_trip(c, now, latency)
    assert c.ceiling is not None and c.allowed < INITIAL * 2**6


def test_slow_start_goes_on_through_a_small_rise():
    c, now = Controller(1000), 0.0
    for latency in (0.1, 0.1, 0.13, 0.13, 0.13):  # a busier host, not a queue yet (below EARLY)
        now = round_trip(c, now, latency)
    assert c.ceiling is None and c.allowed == INITIAL * 2**5


def test_a_latency_that_does_not_follow_the_concurrency_down_becomes_the_floor():
    c = Controller(1000, limit=60, ceiling=61)
    now = 0.0
    for latency in [0.1] * 100 + [0.4] * 300:  # slower for good, whatever the concurrency (host CPU)
        now += 0.01
        c.on_success(now, latency, c.allowed)
    assert c.allowed >= 60 and c.floor > 0.3


def test_a_latency_that_follows_the_concurrency_down_keeps_the_decrease():
    c = Controller(1000, limit=60, ceiling=61)
    now = 0.0
    for _ in range(100):
        now += 0.01
        c.on_success(now, 0.1, c.allowed)
    for _ in range(400):  # a queue at the upstream: latency in proportion to the concurrency above 20
        now += 0.01
        c.on_success(now, 0.1 * max(1.0, c.allowed / 20), c.allowed)
    assert c.allowed <= 2 * 20 and c.floor < 0.15  # within 2x of the knee (TOLERANCE)


@pytest.mark.parametrize(
    "before, after, decreased",
    [
        ((40, 0.1), (40, 0.3), False),  # 3x slower at the same concurrency: this machine, not the upstream
        ((40, 0.1), (41, 0.3), False),  # a position in the same quarter octave is the same concurrency
        ((20, 0.1), (60, 0.3), True),  # 3x slower only at 3x the concurrency: a queue at the upstream
        ((40, 0.1), (40, 0.3, None), True),  # positions unknown: every rise is read as queueing
    ],
)
def test_a_rise_at_the_same_concurrency_is_not_caused_by_it(before, after, decreased):
    c, now, lowest = Controller(1000, limit=64, ceiling=65), 0.0, 64
    for (position, latency, *known), count in ((before, 200), (after, 300)):
        for _ in range(count):
            now += 0.01
            c.on_success(now, latency, position, position if not known else known[0])
            lowest = min(lowest, c.allowed)
    assert (lowest < 64) is decreased  # (a decrease the latency does not follow is taken back later)


def test_a_ticket_knows_how_many_were_upstream_when_it_was_let_in():
    async def go():
        limiter = Limiter(BudgetSettings(max_concurrent=64))
        held = [await limiter.acquire() for _ in range(INITIAL)]
        later = asyncio.gather(*(limiter.acquire() for _ in range(3)))  # queued: the limit is full
        await asyncio.sleep(0)
        for ticket in held[:3]:
            limiter.release(ticket, 200)
        return [t.position for t in held], [t.position for t in await later]

    first, later = run(go())
    # each let in as a slot freed (the limit grows meanwhile): never counted as if all came at once
    assert first == list(range(1, INITIAL + 1)) and min(later) == INITIAL and max(later) <= INITIAL + 2
