"""The proxy's on-disk pieces: cache files, the request log's caps and redaction, the budget."""

import asyncio
import json

from launcher.proxy.budget import Budget
from launcher.proxy.cache import ResponseCache
from launcher.proxy.reqlog import RequestLog
from launcher.proxy.settings import BudgetSettings, LogSettings


def test_cache_roundtrip_and_torn_entry(tmp_path):
    cache = ResponseCache(tmp_path / "c")
    assert cache.get("ab" * 32) is None
    cache.put("ab" * 32, b'{"x": "\xc3\xa9"}')
    assert ResponseCache(tmp_path / "c").get("ab" * 32) == b'{"x": "\xc3\xa9"}'  # another proxy sees it
    (tmp_path / "c" / "cd").mkdir()
    (tmp_path / "c" / "cd" / ("cd" * 32 + ".json")).write_text('{"key": ')
    assert cache.get("cd" * 32) is None
    assert not list((tmp_path / "c").rglob(".tmp-*"))


def test_request_log_redacts_and_caps(tmp_path):
    path = tmp_path / "log.jsonl"
    log = RequestLog(path, LogSettings(enabled=True, max_requests=2), ("sk-secret",))
    for i in range(4):
        log.record(
            "/v1/completions", 200, "miss", 0.01, {"prompt": f"p{i} sk-secret"}, b'{"echo": "sk-secret"}'
        )
    log.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and log.dropped == 2
    assert "sk-secret" not in path.read_text()
    assert json.loads(lines[0])["request"]["prompt"] == "p0 <redacted>"


def test_request_log_byte_cap_and_sampling(tmp_path):
    log = RequestLog(tmp_path / "a.jsonl", LogSettings(enabled=True, max_bytes=400), ())
    for _ in range(10):
        log.record("/v1/completions", 200, "off", 0.0, {"prompt": "x" * 100}, b"not json")
    log.close()
    assert 0 < (tmp_path / "a.jsonl").stat().st_size <= 400 and log.dropped > 0
    sampled = RequestLog(tmp_path / "b.jsonl", LogSettings(enabled=True, sample_rate=0.0), ())
    sampled.record("/v1/completions", 200, "off", 0.0, {}, b"{}")
    sampled.close()
    assert (tmp_path / "b.jsonl").read_text() == ""


def test_budget_never_exceeds_max_concurrent():
    async def run():
        budget = Budget(BudgetSettings(max_concurrent=3))
        seen = []

        async def one():
            await budget.acquire()
            seen.append(budget.in_flight)
            await asyncio.sleep(0.01)
            budget.release()

        await asyncio.gather(*(one() for _ in range(20)))
        return budget, seen

    budget, seen = asyncio.run(run())
    assert max(seen) == 3 and budget.max_in_flight == 3 and budget.in_flight == 0


def test_budget_tokens_overdrawn_waits():
    async def run():
        budget = Budget(BudgetSettings(max_concurrent=10, tokens_per_second=1000))
        await budget.acquire()
        budget.release(tokens=1100)  # overdrawn by ~100 tokens -> next waits ~0.1 s
        loop = asyncio.get_running_loop()
        start = loop.time()
        await budget.acquire()
        budget.release()
        return loop.time() - start, budget.tokens

    waited, tokens = asyncio.run(run())
    assert waited > 0 and tokens >= -1  # it waited until the budget was back to >= 0
