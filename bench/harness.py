"""3-7. The harness: throughput vs a bare aiohttp loop, resume waste after kill -9, memory and resume time
at 1,000-100,000 samples, scoring off the loop vs inline."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ENV, ROOT, Endpoint, table


def harness_config(folder: Path, url: str, n: int, parallelism: int, task: str = "synthetic") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    params = {
        "parallelism": parallelism,
        "request_timeout": 60.0,
        "max_retries": 3,
        "max_error_fraction": 1.0,
        "limit_samples": n,
        "temperature": None,
        "top_p": None,
        "max_tokens": 16,
        "seed": None,
        "stop": None,
    }
    path = folder / "run_config.json"
    path.write_text(
        json.dumps(
            {
                "task": task,
                "model_id": "m",
                "url": url,
                "endpoint_type": "chat",
                "api_key_env": None,
                "params": params,
            }
        )
    )
    return path


def run_harness(config: Path, tasks: str = "launcher.harness.benchmarks") -> tuple[float, float]:
    """(seconds spent requesting, CPU seconds of the whole harness process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [sys.executable, "-m", "launcher.harness", "--tasks", tasks, "run", "--config", str(config)],
        env={**ENV, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'bench'}"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next(ln for ln in out.splitlines() if " samples in " in ln)
    seconds = float(line.split(" samples in ")[1].split(" s")[0])
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


async def bare_loop(url: str, prompts: list[str], parallelism: int) -> float:
    """The reference: a bare aiohttp loop, same payloads, same concurrency, no retries, no checkpoint."""
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=parallelism)) as session:
        queue = iter(prompts)

        async def worker():
            for prompt in queue:
                body = {"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": prompt}]}
                async with session.post(url, json=body) as resp:
                    await resp.json()

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(parallelism)))
        return time.perf_counter() - start


def bench_throughput(latency: float = 0.05) -> str:
    """BENCH_ROUNDS (default 3) rounds per level; BENCH_LEVELS (e.g. "256") limits the levels."""
    sys.path.insert(0, str(ROOT))
    from launcher.harness.benchmarks.synthetic import load as load_synthetic

    prompts = [s.input for s in load_synthetic()]
    sizes = {1: 100, 16: 2000, 64: 4000, 256: 8000}
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    if os.environ.get("BENCH_LEVELS"):
        sizes = {int(p): sizes[int(p)] for p in os.environ["BENCH_LEVELS"].split(",")}
    endpoint = Endpoint("--mode", "echo", "--latency", str(latency))
    rows = []
    try:
        for parallelism, n in sizes.items():
            ours, bare, cpu = [], [], []
            for _ in range(rounds):
                work = Path(tempfile.mkdtemp(prefix="bench-tp-"))
                seconds, cpu_s = run_harness(harness_config(work, endpoint.url, n, parallelism))
                shutil.rmtree(work)
                ours.append(n / seconds)
                cpu.append(cpu_s / n * 1000)
                bare.append(n / asyncio.run(bare_loop(endpoint.url, prompts[:n], parallelism)))
            ideal = parallelism / latency
            o, b = statistics.median(ours), statistics.median(bare)
            rows.append(
                [
                    parallelism,
                    n,
                    f"{o:,.0f}",
                    f"{b:,.0f}",
                    f"{o / ideal:.2f}",
                    f"{o / b:.2f}",
                    f"{statistics.median(cpu):.2f}",
                ]
            )
    finally:
        endpoint.stop()
    return table(
        [
            "parallelism",
            "requests",
            "harness req/s",
            "bare aiohttp req/s",
            "harness / ideal",
            "harness / bare",
            "harness CPU s per 1,000 req",
        ],
        rows,
    )


# ---- 4. resume waste -----------------------------------------------------------------------------------


def bench_resume(n: int = 1000) -> str:
    endpoint = Endpoint("--mode", "oracle", "--latency", "0.02")
    work = Path(tempfile.mkdtemp(prefix="bench-resume-"))
    try:
        config = harness_config(work, endpoint.url, n, 16)
        proc = subprocess.Popen(
            [sys.executable, "-m", "launcher.harness", "run", "--config", str(config)],
            env=ENV,
            stdout=subprocess.DEVNULL,
        )
        samples = work / "samples.jsonl"
        while not samples.exists() or samples.read_bytes().count(b"\n") < n // 2:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        finished = set()
        for line in samples.read_text().splitlines():
            with contextlib.suppress(ValueError):
                finished.add(json.loads(line)["id"])
        subprocess.run(
            [sys.executable, "-m", "launcher.harness", "run", "--config", str(config)],
            env=ENV,
            check=True,
            capture_output=True,
        )
        requests = endpoint.stats()["samples"]
    finally:
        endpoint.stop()
        shutil.rmtree(work, ignore_errors=True)
    resent = sum(requests.get(i, 1) - 1 for i in finished)
    total = sum(requests.values())
    return table(
        ["measure", "value"],
        [
            ["samples finished before kill -9", len(finished)],
            ["requests re-sent for finished samples", resent],
            [
                f"total requests (uninterrupted run: {n})",
                f"{total} ({total - n:+d}, in flight at the kill)",
            ],
        ],
    )


# ---- 6. scale: 1,000 to 100,000 samples -----------------------------------------------------------------


# Runs the harness and reports on it from a small process: a child forked from the benchmark itself would
# count the benchmark's own pages in its peak RSS until it execs.
PROBE = """
import json, resource, subprocess, sys, time
started = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, text=True)
ready, tail = None, []
for line in proc.stdout:
    tail = (tail + [line])[-5:]
    if ready is None and " to go;" in line:
        ready = time.perf_counter() - started
code = proc.wait()
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
wall = time.perf_counter() - started
print(json.dumps({"code": code, "wall": wall, "ready": ready, "rss_mib": peak, "tail": "".join(tail)}))
"""


def timed_run(config: Path) -> dict:
    """One harness run: wall seconds, seconds until it starts requesting (the 'to go' line, after the
    checkpoint is read), and peak RSS of the harness or any of its scoring workers (the largest single
    process, like /usr/bin/time -v)."""
    harness_argv = [sys.executable, "-m", "launcher.harness", "run", "--config", str(config)]
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *harness_argv], env=ENV, capture_output=True, text=True, check=True
    )
    report = json.loads(out.stdout)
    if report["code"] != 0:
        raise RuntimeError(f"harness failed ({report['code']}): {report['tail']}")
    return report


def keep_fraction(samples: Path, fraction: float) -> int:
    """Cut the checkpoint to its first `fraction` of lines (a run stopped there); returns the lines kept."""
    with open(samples, "rb") as fh:
        total = sum(1 for _ in fh)
    kept, offset = int(total * fraction), 0
    with open(samples, "rb+") as fh:
        for _ in range(kept):
            offset += len(fh.readline())
        fh.truncate(offset)
    return kept


def bench_harness_scale(sizes: tuple[int, ...] = (1_000, 10_000, 100_000), parallelism: int = 64) -> str:
    """Full run and resume of a 99%-done checkpoint at each size (synthetic: 10,000 items, repeats for
    more), against the echo endpoint with no latency (the harness is the bottleneck). BENCH_SCALE_SIZES
    (e.g. "1000,10000") limits the sizes."""
    if os.environ.get("BENCH_SCALE_SIZES"):
        sizes = tuple(int(n) for n in os.environ["BENCH_SCALE_SIZES"].split(","))
    endpoint = Endpoint("--mode", "echo")
    rows = []
    try:
        for n in sizes:
            work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
            try:
                config = harness_config(work, endpoint.url, min(n, 10_000), parallelism)
                data = json.loads(config.read_text())
                data["repeats"] = max(1, n // 10_000)
                config.write_text(json.dumps(data))
                full = timed_run(config)
                size_mib = (work / "samples.jsonl").stat().st_size / 2**20
                keep_fraction(work / "samples.jsonl", 0.99)
                resume = timed_run(config)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            rows.append(
                [
                    f"{n:,}",
                    f"{size_mib:.1f} MiB",
                    f"{full['wall']:.1f} s ({n / full['wall']:,.0f}/s)",
                    f"{full['rss_mib']:.0f} MiB",
                    f"{resume['ready']:.2f} s",
                    f"{resume['wall']:.2f} s",
                    f"{resume['rss_mib']:.0f} MiB",
                ]
            )
    finally:
        endpoint.stop()
    return table(
        [
            "samples",
            "checkpoint",
            "full run",
            "full run peak RSS",
            "resume at 99%: requesting after",
            "resume at 99%: whole",
            "resume peak RSS",
        ],
        rows,
    )


# ---- 7. scoring off the loop vs inline ------------------------------------------------------------------


def bench_scoring(parallelism: int = 64, n: int = 4000, latency: float = 0.05) -> str:
    """Samples/s with scoring in the worker processes vs inline on the event loop vs none, side by side
    (BENCH_ROUNDS rounds, medians). Issue 12 H1 moved scoring off the loop; the goal is >= 0.9 of inline."""
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    variants = {
        "off the loop (workers)": "synthetic",
        "inline": "synthetic-inline",
        "none": "synthetic-unscored",
    }
    rates: dict[str, list[float]] = {name: [] for name in variants}
    endpoint = Endpoint("--mode", "echo", "--latency", str(latency))
    try:
        for _ in range(rounds):
            for name, task in variants.items():
                work = Path(tempfile.mkdtemp(prefix="bench-score-"))
                try:
                    seconds, _ = run_harness(
                        harness_config(work, endpoint.url, n, parallelism, task), "harness_tasks"
                    )
                finally:
                    shutil.rmtree(work)
                rates[name].append(n / seconds)
    finally:
        endpoint.stop()
    inline = statistics.median(rates["inline"])
    return table(
        [
            "scoring",
            f"samples/s at parallelism {parallelism} ({n:,} samples, {latency * 1000:g} ms latency)",
            "vs inline",
        ],
        [
            [name, f"{statistics.median(r):,.0f}", f"{statistics.median(r) / inline:.2f}"]
            for name, r in rates.items()
        ],
    )
