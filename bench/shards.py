"""9. Scale-out of one task by sharding: a 10,000-sample task on a latency-bound endpoint (the test
endpoint answering after a fixed delay, so the endpoint has capacity to spare) run whole and as 2 and 4
shards on the local executor, through the invocation's proxy, merged at the end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from common import ENV, LAUNCHER, Endpoint, table

from launcher.catalog import HARNESS_IMAGE
from launcher.store import events

HARNESS = ["python3", "-m", "launcher.harness", "run", "--config", "/results/run_config.json"]


def run_sharded(work: Path, url: str, image: str, n: int, shards: int, parallelism: int) -> dict:
    task = {"name": "synthetic", "container": image, "command": HARNESS, "shards": shards}
    config = {
        "defaults": [{"execution": "local"}, "_self_"],
        "execution": {"output_dir": str(work / "out"), "max_parallel": shards},
        "target": {"api_endpoint": {"url": url, "model_id": "m"}},
        "evaluation": {
            "tasks": [task],
            "params": {"limit_samples": n, "parallelism": parallelism, "max_error_fraction": 1.0},
        },
    }
    (work / "cfg.yaml").write_text(json.dumps(config))
    argv = [LAUNCHER, "run", "--config-dir", str(work), "--config-name", "cfg", "--wait"]
    env = {**ENV, "LAUNCHER_STATE_DIR": str(work / "state")}
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"sharded run failed: {proc.stdout[-800:]}{proc.stderr[-800:]}")
    folder = next((work / "out").glob("*/synthetic"))
    merged = json.loads((folder / "results/results.json").read_text())["results"]["tasks"]["synthetic"]
    parts = [folder] if shards == 1 else [folder / "shards" / str(k) for k in range(shards)]
    # the harness's own "N samples in S s" line: the slowest shard's time spent requesting
    requesting = max(
        float(line.split(" samples in ")[1].split(" s")[0])
        for part in parts
        for line in (part / "logs/output.log").read_text().splitlines()
        if " samples in " in line
    )
    merge = 0.0
    if shards > 1:
        at = [e.at for e in events.read(folder / "events.log") if e.kind in (events.STARTED, events.EXITED)]
        merge = at[-1] - at[-2]  # whole seconds
    return {"wall": wall, "attempts": merged["errors"]["attempts"], "requesting": requesting, "merge": merge}


def bench_shards(n: int = 10_000, latency: float = 0.2, parallelism: int = 32) -> str:
    """BENCH_SHARDS (default "1,2,4"); BENCH_SHARD_LOAD="samples,latency,parallelism" changes the load;
    the harness image from LAUNCHER_BENCH_HARNESS_IMAGE (a branch's own build) or the default."""
    if os.environ.get("BENCH_SHARD_LOAD"):
        samples, delay, per_shard = os.environ["BENCH_SHARD_LOAD"].split(",")
        n, latency, parallelism = int(samples), float(delay), int(per_shard)
    image = os.environ.get("LAUNCHER_BENCH_HARNESS_IMAGE", HARNESS_IMAGE)
    counts = [int(c) for c in os.environ.get("BENCH_SHARDS", "1,2,4").split(",")]
    endpoint = Endpoint("--mode", "echo", "--latency", str(latency))
    rows, first = [], None
    try:
        for shards in counts:
            work = Path(tempfile.mkdtemp(prefix="bench-shards-"))
            try:
                got = run_sharded(work, endpoint.url, image, n, shards, parallelism)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            assert got["attempts"] == n, got
            first = first or got["wall"]
            ideal = n * latency / (parallelism * shards)
            rows.append(
                [
                    shards,
                    f"{got['wall']:.1f}",
                    f"{got['requesting']:.1f}",
                    f"{ideal:.1f}",
                    f"{got['merge']:.0f}",
                    f"{got['wall'] - got['requesting'] - got['merge']:.1f}",
                    f"{first / got['wall']:.2f}",
                ]
            )
    finally:
        endpoint.stop()
    title = f"{n:,} samples, endpoint latency {latency} s, parallelism {parallelism} per shard"
    headers = [
        "shards",
        "wall s (launch to merged)",
        "requesting s (slowest shard)",
        "ideal requesting s",
        "merge s",
        "rest s (launch, containers, wait)",
        "speed-up vs 1",
    ]
    return f"{title}\n\n{table(headers, rows)}"
