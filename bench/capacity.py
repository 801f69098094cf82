"""8. Adaptive concurrency: 4 tasks x 150 GSM8K samples (parallelism 64 each, 4 harness processes at once)
through one endpoint proxy against the test endpoint at 100 ms in three shapes: serving 16 at once with 429
+ Retry-After above (capacity), queueing above 16 with latency growing (queueing, knee at 16), and
uncapped. Each shape with the proxy of this tree and, side by side, of another checkout (BENCH_BEFORE, a
folder with the launcher package, e.g. a worktree of main: the fixed budget of 64)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, Endpoint, table
from harness import harness_config

TASKS, SAMPLES, PARALLELISM, LATENCY, CAPACITY, RETRY_AFTER = 4, 150, 64, 0.1, 16, 1.0
TOKEN = secrets.token_hex(32)  # the proxy's credential (LAUNCHER_PROXY_TOKEN), presented by the harness
SHAPES = {
    "capacity 16, 429 + Retry-After 1 s": ("--capacity", str(CAPACITY), "--retry-after", str(RETRY_AFTER)),
    "queueing above 16 (knee 16)": ("--capacity", str(CAPACITY), "--overflow", "queue"),
    "uncapped": (),
}


def start_proxy(root: Path, state: Path, upstream: str) -> subprocess.Popen:
    state.mkdir(parents=True)
    config = state / "proxy.json"
    adapter = {"use_caching": False}
    config.write_text(json.dumps({"upstream": upstream, "api_key_env": None, "adapter_config": adapter}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "launcher.proxy", "--config", str(config), "--state-dir", str(state)],
        stdout=subprocess.PIPE,
        stderr=open(os.environ.get("BENCH_PROXY_LOG", os.devnull), "a"),  # noqa: SIM115  # the child's
        text=True,
        env={**os.environ, "PYTHONPATH": str(root), "LAUNCHER_PROXY_TOKEN": TOKEN},
        cwd=root,  # `python -m` puts the working folder first on sys.path: it must be this checkout
    )
    line = proc.stdout.readline()
    if not line.startswith("listening on "):
        proc.kill()
        raise RuntimeError(f"the proxy of {root} did not start: {line!r}")
    proc.port = int(line.split()[-1])
    return proc


def one_run(root: Path, shape: tuple[str, ...]) -> dict:
    """Time serving the 4 tasks, lost samples, the endpoint's 429s and the proxy's counters."""
    endpoint = Endpoint("--mode", "oracle", "--latency", str(LATENCY), *shape)
    work = Path(tempfile.mkdtemp(prefix="bench-capacity-"))
    proxy = start_proxy(root, work / "proxy", endpoint.url)
    try:
        url = f"http://127.0.0.1:{proxy.port}/v1/chat/completions"
        env = {**os.environ, "PYTHONPATH": str(root), "API_KEY": TOKEN}
        configs = []
        for t in range(TASKS):
            config = harness_config(work / f"task{t}", url, SAMPLES, PARALLELISM, "gsm8k_cot_zeroshot")
            data = json.loads(config.read_text())
            data["params"].update(max_retries=3, request_timeout=120.0)
            data["api_key_env"] = "API_KEY"
            config.write_text(json.dumps(data))
            configs.append(config)
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "launcher.harness", "run", "--config", str(c)],
                env=env,
                cwd=root,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for c in configs
        ]
        for p in procs:
            p.wait()
        lost = 0
        for t in range(TASKS):
            lines = (work / f"task{t}" / "samples.jsonl").read_text().splitlines()
            lost += SAMPLES - sum(1 for ln in lines if json.loads(ln).get("error") is None)
        seen = endpoint.stats()
    finally:
        proxy.terminate()
        proxy.wait()
        endpoint.stop()
    stats = json.loads((work / "proxy" / "proxy_stats.json").read_text())
    shutil.rmtree(work)
    turned = seen.get("turned_away", 0)
    return {
        "wall": seen["span_s"],  # the endpoint's first request to its last answer (no process starts)
        "lost": lost,
        "share429": turned / max(1, turned + seen["total"]),
        "settled": (stats.get("concurrency") or {}).get("settled", "-"),
        "peak": stats.get("max_in_flight"),
    }


def bench_capacity() -> str:
    """BENCH_ROUNDS (default 3) rounds; BENCH_BEFORE: other checkouts' folders, each `label=folder` or
    a folder (labelled "before (fixed budget 64)"), separated by os.pathsep; BENCH_SHAPES: some of
    capacity,queueing,uncapped."""
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    roots = {}
    for entry in filter(None, os.environ.get("BENCH_BEFORE", "").split(os.pathsep)):
        label, _, folder = entry.rpartition("=")
        roots[label or "before (fixed budget 64)"] = Path(folder)
    roots["this tree"] = ROOT
    ideal = TASKS * SAMPLES / (CAPACITY / LATENCY)
    rows = []
    chosen = os.environ.get("BENCH_SHAPES", "capacity,queueing,uncapped").split(",")
    for shape_name, shape in SHAPES.items():
        if shape_name.split()[0] not in chosen:
            continue
        runs: dict[str, list[dict]] = {name: [] for name in roots}
        for _ in range(rounds):  # side by side, round after round
            for name, root in roots.items():
                runs[name].append(one_run(root, shape))
        for name, got in runs.items():
            wall = statistics.median(r["wall"] for r in got)
            rows.append(
                [
                    shape_name,
                    name,
                    f"{wall:.2f}",
                    f"{wall / ideal:.2f}" if shape else "-",
                    max(r["lost"] for r in got),
                    f"{max(r['share429'] for r in got):.1%}",
                    "/".join(str(r["settled"]) for r in got),
                    "/".join(str(r["peak"]) for r in got),
                ]
            )
    note = (
        f"\n\n{TASKS} tasks x {SAMPLES} GSM8K samples, parallelism {PARALLELISM} each, endpoint latency "
        f"{LATENCY * 1000:.0f} ms; ideal at 16 at once: {ideal:.2f} s. Medians of {rounds} rounds; lost and "
        "429 share: the worst round; settled (median limit) and most in flight: every round."
    )
    headers = ["endpoint", "proxy", "serving s", "/ ideal", "lost samples", "429 share", "settled"]
    headers.append("max in flight")
    return table(headers, rows) + note


if __name__ == "__main__":
    print(bench_capacity())
