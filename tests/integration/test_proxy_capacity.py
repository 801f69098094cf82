"""The adaptive budget end to end: real harness processes (1 and 4 tasks at once) through the real proxy
against the test endpoint's capacity mode (429 + Retry-After above K) and queueing mode (vLLM-like)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from test_proxy import AUTH, ROOT, TOKEN, ProxyProcess, chat, post_all, started  # noqa: F401  # `started`: the fixture

TASK, METRIC = "gsm8k_cot_zeroshot", "exact_match,strict-match"
CAPACITY = 4


def start_harness(results: Path, url: str, samples: int, task: str = TASK, parallelism: int = 32):
    """A harness process (2 retries, no error allowed) writing into `results`."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "API_KEY": TOKEN,
    }  # the proxy's credential, as run.sh passes it
    results.mkdir()
    params = {"parallelism": parallelism, "request_timeout": 60.0, "max_retries": 2,
              "max_error_fraction": 0.0, "limit_samples": samples, "temperature": 0.0, "top_p": None,
              "max_tokens": 64, "seed": None, "stop": None}  # fmt: skip
    config = {"task": task, "model_id": "fake", "url": url, "endpoint_type": "chat", "api_key_env": "API_KEY",
              "params": params}  # fmt: skip
    (results / "run_config.json").write_text(json.dumps(config))
    argv = [sys.executable, "-m", "launcher.harness", "run", "--config", str(results / "run_config.json")]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def finished(proc: subprocess.Popen, results: Path) -> dict:
    log = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, log
    return json.loads((results / "results.json").read_text())


def run_tasks(tmp: Path, url: str, tasks: int, samples: int) -> list[dict]:
    """`tasks` harness processes at once (parallelism 32 each)."""
    procs = [start_harness(tmp / f"task{t}", url, samples) for t in range(tasks)]
    return [finished(proc, tmp / f"task{t}") for t, proc in enumerate(procs)]


@pytest.mark.parametrize("tasks, samples", [(1, 100), (4, 50)])
def test_capacity_endpoint_429s_are_waited_out_in_the_proxy(tmp_path, started, endpoint, tasks, samples):  # noqa: F811
    ep = endpoint("oracle", 0.05, 0.0, 2.0, "--capacity", str(CAPACITY), "--retry-after", "0.2")
    proxy = ProxyProcess(tmp_path, ep.url(), {"use_caching": False})
    started.append(proxy)
    for result in run_tasks(tmp_path, f"{proxy.base}/v1/chat/completions", tasks, samples):
        assert result["results"]["tasks"][TASK]["metrics"][METRIC]["scores"][METRIC]["value"] == 1.0
    assert proxy.stop() == 0
    stats, seen = proxy.stats(), ep.stats()
    total = tasks * samples
    assert seen["total"] == total  # every sample answered once: no 429 reached a task, none retried there
    assert "429" not in stats["responses"] and stats["responses"]["200"] == total
    c = stats["concurrency"]
    assert c["upstream_429"] == seen["turned_away"] <= 0.1 * total  # found K without a 429 storm
    assert c["settled"] <= CAPACITY + 1 and seen["peak"] <= CAPACITY
    assert c["waited_s"] > 0 and c["queued"] == 0


@pytest.mark.parametrize("tasks, samples", [(1, 100), (4, 50)])
def test_queueing_endpoint_settles_near_its_knee(tmp_path, started, endpoint, tasks, samples):  # noqa: F811
    ep = endpoint("oracle", 0.05, 0.0, 2.0, "--capacity", str(CAPACITY), "--overflow", "queue")
    proxy = ProxyProcess(tmp_path, ep.url(), {"use_caching": False})
    started.append(proxy)
    for result in run_tasks(tmp_path, f"{proxy.base}/v1/chat/completions", tasks, samples):
        assert result["results"]["tasks"][TASK]["metrics"][METRIC]["scores"][METRIC]["value"] == 1.0
    assert proxy.stop() == 0
    stats = proxy.stats()
    assert ep.stats()["total"] == tasks * samples and stats["retries"] == 0
    # the demand is 32 per task; latency grows with the queue, so the limit stays well below it
    assert stats["concurrency"]["settled"] < 32


def test_a_429_spends_no_retry(tmp_path, started, endpoint):  # noqa: F811
    """Every first request is a 429 (Retry-After 0.2 s) and the proxy may not retry at all: all answered."""
    ep = endpoint("echo", 0.0, 0.0, 2.0, "--fault-rate", "1", "--faults", "429")
    proxy = ProxyProcess(tmp_path, ep.url(), {"use_caching": False, "max_retries": 0})
    started.append(proxy)
    results = asyncio.run(post_all(proxy.base, [chat(f"q{i}") for i in range(20)]))
    assert [status for status, _ in results] == [200] * 20
    assert proxy.stop() == 0
    stats = proxy.stats()
    assert stats["retries"] == 0 and stats["concurrency"]["upstream_429"] == 20
    assert ep.stats()["total"] == 40  # each asked twice upstream; none of it seen by the client


def test_a_client_that_gave_up_while_queued_is_not_sent_upstream(tmp_path, started, endpoint):  # noqa: F811
    ep = endpoint("echo", 0.5)
    proxy = ProxyProcess(tmp_path, ep.url(), {"use_caching": False, "max_concurrent": 1})
    started.append(proxy)

    async def impatient():
        async with aiohttp.ClientSession(headers=AUTH) as session:
            first = asyncio.create_task(session.post(f"{proxy.base}/v1/chat/completions", json=chat("a")))
            await asyncio.sleep(0.1)  # "a" holds the only slot
            with pytest.raises(asyncio.TimeoutError):
                await session.post(f"{proxy.base}/v1/chat/completions", json=chat("b"), timeout=0.1)
            (await first).release()

    asyncio.run(impatient())
    assert proxy.stop() == 0
    assert ep.stats()["total"] == 1 and proxy.stats()["errors"]["client_gone"] == 1


def test_a_small_task_is_not_starved_by_a_large_one(tmp_path, started, endpoint):  # noqa: F811
    """2 slots; a GSM8K task at parallelism 32 first, then AIME at parallelism 2: served round-robin, the
    small task's requests all finish while the large one still has many to go (FIFO would put each of
    them behind ~30 of the large task's)."""
    from launcher.harness.api import registry

    aime = [s.input for s in registry("launcher.harness.benchmarks")["aime2025"].load()]
    ep = endpoint("oracle", 0.02)
    adapter = {"use_caching": False, "max_concurrent": 2, "use_request_logging": True}
    proxy = ProxyProcess(tmp_path, ep.url(), adapter)
    started.append(proxy)
    url = f"{proxy.base}/v1/chat/completions"
    big = start_harness(tmp_path / "big", url, 1000)
    while ep.stats()["total"] < 10:  # the large task's requests are queueing at the proxy
        time.sleep(0.05)
    small = start_harness(tmp_path / "small", url, 20, "aime2025", parallelism=2)
    for proc, folder in ((small, "small"), (big, "big")):
        assert finished(proc, tmp_path / folder)["results"]["tasks"]  # no sample lost (no error allowed)
    assert proxy.stop() == 0
    lines = (proxy.state / "proxy_requests.jsonl").read_text().splitlines()
    asked = [json.dumps(json.loads(line)["request"]) for line in lines]
    small_at = [i for i, body in enumerate(asked) if any(json.dumps(q)[1:-1] in body for q in aime)]
    assert len(small_at) == len(asked) - 1000 >= 20  # AIME's repeats: several requests per sample
    assert small_at[-1] < len(asked) - 100, small_at
