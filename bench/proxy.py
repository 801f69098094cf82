"""Endpoint proxy overhead: `python bench/proxy.py [--requests N] [--rounds R]` prints Markdown tables.

An aiohttp client at parallelism 64 against the 50 ms test endpoint (launcher.testing.endpoint --mode echo
--latency 0.05), direct and through the proxy (cache off, and the default: cache on, every request a
miss), run side by side round after round; medians of req/s and p50 latency, and the proxy's CPU time
(utime + stime from /proc) per 1,000 requests. Then a cached re-run of 1,000 requests: upstream requests
(from the endpoint's /stats) and wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
PARALLEL = 64
TICKS = os.sysconf("SC_CLK_TCK")


def start(argv: list[str], stderr=subprocess.DEVNULL) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, text=True, env=ENV)
    line = proc.stdout.readline()
    if not line.startswith("listening on "):
        proc.kill()
        raise RuntimeError(f"{argv[:4]} did not start: {line!r}")
    return proc, int(line.split()[-1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def upstream_total(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=10) as resp:
        return json.load(resp)["total"]


async def load(url: str, prompts: list[str]) -> tuple[float, float]:
    """(req/s, p50 latency in s) for all prompts at PARALLEL concurrent requests."""
    latencies: list[float] = []
    queue = iter(prompts)
    connector = aiohttp.TCPConnector(limit=PARALLEL)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def worker() -> None:
            for prompt in queue:
                body = {"model": "m", "messages": [{"role": "user", "content": prompt}], "temperature": 0}
                t0 = time.perf_counter()
                async with session.post(url, json=body) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"status {resp.status} from {url}")
                latencies.append(time.perf_counter() - t0)

        start_t = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(PARALLEL)))
        wall = time.perf_counter() - start_t
    return len(prompts) / wall, statistics.median(latencies)


def table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000, help="requests per measured run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-proxy-"))
    py = sys.executable
    endpoint, ep_port = start([py, "-m", "launcher.testing.endpoint", "--port", "0", "--mode", "echo",
                               "--latency", "0.05"])  # fmt: skip
    direct_url = f"http://127.0.0.1:{ep_port}/v1/chat/completions"
    proxies: dict[str, tuple[subprocess.Popen, int]] = {}
    for name, adapter in (("proxy, cache off", {"use_caching": False}), ("proxy, cache on (misses)", {})):
        state = tmp / name.replace(" ", "").replace(",", "_").replace("(", "").replace(")", "")
        state.mkdir()
        (state / "proxy.json").write_text(json.dumps({"upstream": direct_url, "adapter_config": adapter}))
        proxies[name] = start(
            [py, "-m", "launcher.proxy", "--config", str(state / "proxy.json"), "--state-dir", str(state)]
        )
    try:
        urls = {"direct": direct_url} | {
            n: f"http://127.0.0.1:{p}/v1/chat/completions" for n, (_, p) in proxies.items()
        }
        asyncio.run(load(direct_url, [f"warm {i}" for i in range(200)]))
        for name, url in urls.items():
            asyncio.run(load(url, [f"warm {name} {i}" for i in range(200)]))
        rates: dict[str, list[float]] = {n: [] for n in urls}
        p50s: dict[str, list[float]] = {n: [] for n in urls}
        cpu: dict[str, float] = dict.fromkeys(proxies, 0.0)
        for r in range(args.rounds):
            for name, url in urls.items():
                pid = proxies[name][0].pid if name in proxies else None
                before = cpu_seconds(pid) if pid else 0.0
                rate, p50 = asyncio.run(load(url, [f"r{r} {name} {i}" for i in range(args.requests)]))
                if pid:
                    cpu[name] += cpu_seconds(pid) - before
                rates[name].append(rate)
                p50s[name].append(p50)
        direct_rate, direct_p50 = statistics.median(rates["direct"]), statistics.median(p50s["direct"])
        rows = []
        for name in urls:
            rate, p50 = statistics.median(rates[name]), statistics.median(p50s[name])
            per_k = f"{cpu[name] / (args.rounds * args.requests) * 1000:.2f} s" if name in cpu else "-"
            rows.append(
                [
                    name,
                    f"{rate:.0f}",
                    f"{rate / direct_rate:.3f}",
                    f"{p50 * 1000:.2f}",
                    f"{(p50 - direct_p50) * 1000:+.2f}",
                    per_k,
                ]  # fmt: skip
            )
        print(f"### Proxy overhead (parallelism {PARALLEL}, 50 ms endpoint, {args.requests} requests x "
              f"{args.rounds} rounds, medians)\n")  # fmt: skip
        print(table(["path", "req/s", "vs direct", "p50 ms", "added p50 ms", "proxy CPU / 1,000 req"], rows))

        # Cached re-run: the cache-on proxy has already answered these prompts once.
        url = urls["proxy, cache on (misses)"]
        prompts = [f"r0 proxy, cache on (misses) {i}" for i in range(1000)]
        before = upstream_total(ep_port)
        t0 = time.perf_counter()
        asyncio.run(load(url, prompts))
        wall = time.perf_counter() - t0
        upstream = upstream_total(ep_port) - before
        direct_wall = 1000 / direct_rate
        print(f"\n### Cached re-run (1,000 requests already answered once, parallelism {PARALLEL})\n")
        print(table(["upstream requests", "wall s", "uncached direct wall s (same load)"],
                    [[upstream, f"{wall:.2f}", f"{direct_wall:.2f}"]]))  # fmt: skip
    finally:
        for proc, _ in [*proxies.values(), (endpoint, 0)]:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
