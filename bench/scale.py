"""Scale (issue 17): how each command's cost grows with tasks per invocation and invocations in the index."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cli import fill_index
from common import ENV, LAUNCHER, ROOT, TEST_IMAGE, table, timed

SIZES = (1, 10, 100, 1000)


def config(folder: Path, tasks: int) -> Path:
    data = {
        "defaults": [{"execution": "local"}, {"deployment": "none"}, "_self_"],
        "execution": {"output_dir": str(folder / "out"), "max_parallel": 8},
        "target": {"api_endpoint": {"url": "http://127.0.0.1:9/v1/chat/completions", "model_id": "m"}},
        "evaluation": {
            "tasks": [
                {"name": f"t{n}", "container": TEST_IMAGE, "command": ["python3", "/opt/task.py", "ok"]}
                for n in range(tasks)
            ]
        },
    }
    (folder / f"scale{tasks}.yaml").write_text(json.dumps(data))
    return folder / f"scale{tasks}.yaml"


def finished_invocation(state: Path, out: Path, tasks: int) -> str:
    """A 1-invocation index whose invocation has `tasks` finished tasks, written through the store."""
    sys.path.insert(0, str(ROOT))
    os.environ["LAUNCHER_STATE_DIR"] = str(state)
    from launcher.model import InvocationRecord, Plan, PlannedJob
    from launcher.store import index, layout

    now, inv = time.time(), f"{tasks:08x}"
    folder = out / f"{layout.stamp(now)}-{inv}"
    jobs = tuple(PlannedJob(f"{inv}.{n}", f"t{n}", f"t{n}", "img") for n in range(tasks))
    events = f"queued {int(now)}\nstarted {int(now)} 1\nexited {int(now)} 0\n"
    files = {f"t{n}/events.log": events for n in range(tasks)} | {"events.log": ""}
    record = InvocationRecord(inv, str(folder), "local", {"output_dir": str(out)}, jobs, now)
    layout.create_invocation(Plan(inv, str(folder), jobs, files), record, {})
    index.append(record)
    del os.environ["LAUNCHER_STATE_DIR"]
    return inv


def median(argv: list[str], env: dict, runs: int = 3) -> float:
    return statistics.median(timed(argv, env) for _ in range(runs))


def bench_scale() -> str:
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    rows = []
    try:
        env = {**ENV, "LAUNCHER_STATE_DIR": str(work / "state")}
        for n in SIZES:
            cfg = config(work, n)
            dry = median([LAUNCHER, "run", "--config-dir", str(work), "--config-name", cfg.stem, "-n"], env)
            rows.append([f"run --dry-run, {n:,} task(s)", f"{dry:.3f} s"])
        for n in SIZES:
            state = work / f"state-inv-{n}"
            inv = finished_invocation(state, work / f"runs-inv-{n}", n)
            s_env = {**ENV, "LAUNCHER_STATE_DIR": str(state)}
            rows.append(
                [f"status of one {n:,}-task invocation", f"{median([LAUNCHER, 'status', inv], s_env):.3f} s"]
            )
        for n in (1, 100, 1000, 10_000):
            state = work / f"state-idx-{n}"
            fill_index(state, work / f"runs-idx-{n}", n)
            s_env = {**ENV, "LAUNCHER_STATE_DIR": str(state)}
            rows.append([f"ls runs, {n:,} in the index", f"{median([LAUNCHER, 'ls', 'runs'], s_env):.3f} s"])
            rows.append([f"status, {n:,} in the index", f"{median([LAUNCHER, 'status'], s_env):.3f} s"])
            rows.append(
                [
                    f"status <id>, {n:,} in the index",
                    f"{median([LAUNCHER, 'status', '00000000'], s_env):.3f} s",
                ]
            )
        if shutil.which("docker") and not subprocess.run(["docker", "info"], capture_output=True).returncode:
            for n in (1, 10, 100):
                cfg = config(work, n)
                argv = [LAUNCHER, "run", "--config-dir", str(work), "--config-name", cfg.stem]
                start = time.perf_counter()
                proc = subprocess.run(argv, capture_output=True, text=True, env=env)
                took = time.perf_counter() - start
                first = proc.stdout.splitlines()[0] if proc.stdout else proc.stderr[-200:]
                rows.append([f"submit {n:,} exiting task(s) (max_parallel 8)", f"{took:.3f} s ({first})"])
                inv = first.split()[1].rstrip(":") if first.startswith("invocation ") else None
                if inv:
                    subprocess.run(
                        [LAUNCHER, "status", inv, "--watch"], capture_output=True, env=env, timeout=900
                    )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return table(["command", "median of 3 (submit: one run)"], rows)
