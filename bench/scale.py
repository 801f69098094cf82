"""Scale (issue 17): how each command's cost grows with tasks per invocation and invocations in the index."""

from __future__ import annotations

import contextlib
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
RUN_SIZES = tuple(int(n) for n in os.environ.get("BENCH_RUN_SIZES", "1,10,100,421,1000").split(","))
NO_PROXY_SIZES = tuple(int(n) for n in os.environ.get("BENCH_NO_PROXY_SIZES", "1,100").split(",") if n)
MAX_PARALLEL = 8


def config(folder: Path, tasks: int, proxy: bool = True) -> Path:
    data = {
        "defaults": [{"execution": "local"}, {"deployment": "none"}, "_self_"],
        "execution": {"output_dir": str(folder / "out"), "max_parallel": MAX_PARALLEL},
        "target": {
            "api_endpoint": {"url": "http://127.0.0.1:9/v1/chat/completions", "model_id": "m", "proxy": proxy}
        },
        "evaluation": {
            "tasks": [
                {"name": f"t{n}", "container": TEST_IMAGE, "command": ["python3", "/opt/task.py", "ok"]}
                for n in range(tasks)
            ]
        },
    }
    name = f"scale{tasks}" + ("" if proxy else "-noproxy")
    (folder / f"{name}.yaml").write_text(json.dumps(data))
    return folder / f"{name}.yaml"


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
        for n in SIZES:
            state = work / f"state-inv-{n}"
            rows.append(
                [f"status --watch frame, one {n:,}-task invocation", f"{watch_frame(state, n):.3f} s"]
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return table(["command", "median of 3"], rows)


def watch_frame(state: Path, tasks: int, frames: int = 5) -> float:
    """Median seconds of one `status --watch` frame (a status look and its summary line), in process as
    --watch refreshes (the first look, which pays the imports, is left out)."""
    os.environ["LAUNCHER_STATE_DIR"] = str(state)
    try:
        from launcher import api
        from launcher.cli.render import summary

        inv = f"{tasks:08x}"
        api.status([inv])
        took = []
        for _ in range(frames):
            start = time.perf_counter()
            summary([s for one in api.status([inv]) for s in one.jobs])
            took.append(time.perf_counter() - start)
    finally:
        del os.environ["LAUNCHER_STATE_DIR"]
    return statistics.median(took)


# ---- run_all.sh at scale: submit, first container, processes and descriptors ----------------------------


def _session(leader: int) -> list[int]:
    """PIDs of every process in the session `leader` leads (run_all.sh starts in its own session)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 3 and fields[3] == str(leader):  # field 6: the session id
            found.append(int(pid))
    return found


def _fds(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):  # ended meanwhile
            total += len(os.listdir(f"/proc/{pid}/fd"))
    return total


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _boot_time() -> float:
    """The wall-clock time of boot, to place a process's start (clock ticks since boot). Not /proc/stat's
    `btime`: whole seconds, which put every "from run_all.sh's start" figure up to 1 s too late (0.78 s on
    this machine's boot of 2026-11-26, the figures of earlier rounds)."""
    return time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)


def live_frame(inv: str, env: dict) -> float:
    """Seconds of one `status --watch` frame of a running invocation, in process as --watch refreshes:
    a status look (one `docker ps`, the live proxy's counters, every task's files) and the summary line."""
    os.environ["LAUNCHER_STATE_DIR"] = env["LAUNCHER_STATE_DIR"]
    try:
        from launcher import api
        from launcher.cli.render import summary

        start = time.perf_counter()
        summary([s for one in api.status([inv]) for s in one.jobs])
        return time.perf_counter() - start
    finally:
        del os.environ["LAUNCHER_STATE_DIR"]


def run_all_once(work: Path, tasks: int, env: dict, proxy: bool = True) -> dict:
    """Submit `tasks` exiting tasks, then follow run_all.sh to its end, sampling its session every 0.2 s."""
    cfg = config(work, tasks, proxy)
    fmt = '{{.TimeNano}} {{index .Actor.Attributes "launcher.invocation"}}'
    events = subprocess.Popen(
        ["docker", "events", "--filter", "type=container", "--filter", "event=start", "--filter",
         "label=launcher.invocation", "--format", fmt],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        start = time.perf_counter()
        proc = subprocess.run(
            [LAUNCHER, "run", "--config-dir", str(work), "--config-name", cfg.stem],
            capture_output=True, text=True, env=env,
        )  # fmt: skip
        submit = time.perf_counter() - start
        first = proc.stdout.splitlines()[0] if proc.stdout else proc.stderr[-300:]
        if not first.startswith("invocation "):
            raise RuntimeError(f"submit of {tasks} failed: {first}")
        inv = first.split()[1].rstrip(":")
        folder = next((work / "out").glob(f"*-{inv}"))
        started = next(
            ln.split() for ln in (folder / "events.log").read_text().splitlines() if ln.startswith("started ")
        )
        leader, ticks = int(started[2]), int(started[3])
        run_all_at = _boot_time() + ticks / os.sysconf("SC_CLK_TCK")
        peak = {"processes": 0, "fds": 0, "docker clients": 0, "containers": 0}
        frames, watch_frames = [], []
        while Path(f"/proc/{leader}").exists() and "zombie" not in Path(f"/proc/{leader}/status").read_text():
            pids = _session(leader)
            running = subprocess.run(
                ["docker", "ps", "-q", "--filter", f"label=launcher.invocation={inv}"],
                capture_output=True,
                text=True,
            ).stdout.split()
            sample = {
                "processes": len(pids),
                "fds": _fds(pids),
                "docker clients": sum(_comm(p) == "docker" for p in pids),
                "containers": len(running),
            }
            peak = {k: max(v, sample[k]) for k, v in peak.items()}
            if tasks >= 100 and len(frames) < 5:
                frames.append(timed([LAUNCHER, "status", inv, "--json"], env))
                watch_frames.append(live_frame(inv, env))
            time.sleep(0.2)
        wall = time.time() - run_all_at
    finally:
        events.terminate()
        out, _ = events.communicate(timeout=10)
    starts = sorted(int(ln.split()[0]) / 1e9 for ln in out.splitlines() if ln.endswith(f" {inv}"))
    port_file = folder / "proxy" / "proxy.port"
    proxy_ready = port_file.stat().st_mtime - run_all_at if port_file.exists() else None
    states = subprocess.run(
        [LAUNCHER, "status", inv, "--json"], capture_output=True, text=True, env=env
    ).stdout
    succeeded = sum(j["state"] == "SUCCEEDED" for j in json.loads(states)[0]["jobs"])
    return {
        "submit": submit,
        "first": first,
        "proxy_ready": proxy_ready,
        "first_container": (starts[0] - run_all_at) if starts else None,
        "containers_started": len(starts),
        "wall": wall,
        "succeeded": succeeded,
        "status": statistics.median(frames) if frames else None,
        "frame": statistics.median(watch_frames) if watch_frames else None,
        **peak,
    }


def settle(below: float = 2.0, at_most: float = 90.0) -> None:
    """Wait (at most `at_most` s) until the 1-minute load average is under `below`: a row must not pay for
    the previous row's 1,000 containers still being torn down."""
    deadline = time.monotonic() + at_most
    while float(Path("/proc/loadavg").read_text().split()[0]) >= below and time.monotonic() < deadline:
        time.sleep(2)


def bench_run_all() -> str:
    if not shutil.which("docker") or subprocess.run(["docker", "info"], capture_output=True).returncode:
        return "(no Docker engine: skipped)"
    work = Path(tempfile.mkdtemp(prefix="bench-scale-run-"))
    rows = []
    try:
        env = {**ENV, "LAUNCHER_STATE_DIR": str(work / "state")}
        for n, proxy in [(n, True) for n in RUN_SIZES] + [(n, False) for n in NO_PROXY_SIZES]:
            settle()
            r = run_all_once(work, n, env, proxy)
            sec = lambda v: "" if v is None else f"{v:.2f} s"  # noqa: E731
            rows.append([
                f"{n:,}" + ("" if proxy else " (proxy off)"),
                f"{r['submit']:.2f} s ({r['first'].split(': ', 1)[1]})", sec(r["proxy_ready"]),
                sec(r["first_container"]), f"{r['wall']:.0f} s", f"{r['succeeded']:,}/{n:,}",
                r["containers"], r["docker clients"], r["processes"], r["fds"],
                sec(r["frame"]), sec(r["status"]),
            ])  # fmt: skip
            print(f"  {n} tasks: {r}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    headers = ["tasks", "submit (what it reported)", "run_all.sh start -> proxy ready", "-> first container",
               "run_all.sh wall", "succeeded", f"peak containers (max_parallel {MAX_PARALLEL})",
               "peak docker clients", "peak processes", "peak fds", "--watch frame while running",
               "status --json command while running"]  # fmt: skip
    return table(headers, rows)


def bench_submit_phases() -> str:
    """bench/scale_phases.py for 1 / 100 / 421 / 1,000 tasks: each step of a submit, in seconds."""
    if not shutil.which("docker") or subprocess.run(["docker", "info"], capture_output=True).returncode:
        return "(no Docker engine: skipped)"
    work = Path(tempfile.mkdtemp(prefix="bench-scale-phases-"))
    rows, headers = [], []
    try:
        env = {**ENV, "LAUNCHER_STATE_DIR": str(work / "state")}
        for n in (1, 100, 421, 1000):
            cfg = config(work, n)
            argv = [sys.executable, str(ROOT / "bench" / "scale_phases.py"), str(work), cfg.stem]
            out = subprocess.run(argv, capture_output=True, text=True, env=env, check=True).stdout
            pairs = [part.rsplit("=", 1) for part in out.strip().splitlines()[-1].split("; ")]
            headers = ["tasks"] + [name for name, _ in pairs]
            rows.append([f"{n:,}"] + [f"{float(value):.2f}" for _, value in pairs])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return table(headers, rows)


def bench_catalogue_dry_run(runs: int = 3) -> str:
    """`run --dry-run` of every catalogue task (421) from one NEL-shaped config, ours and NEL 0.2.6's
    (its own venv), side by side, medians of `runs`."""
    from common import NEL, medians

    sys.path.insert(0, str(ROOT))
    from launcher.catalog import nel

    work = Path(tempfile.mkdtemp(prefix="bench-catalogue-"))
    try:
        names = sorted(f"{harness}.{task}" for harness, task in nel.catalogue().tasks)
        config = {
            "defaults": [{"execution": "local"}, {"deployment": "none"}, "_self_"],
            "execution": {"output_dir": str(work / "out")},
            "target": {
                "api_endpoint": {
                    "url": "https://example.invalid/v1/chat/completions",
                    "model_id": "m",
                    "api_key_name": "BENCH_API_KEY",
                }
            },
            "evaluation": {"tasks": [{"name": name} for name in names]},
        }
        (work / "catalogue.yaml").write_text(json.dumps(config))
        argv = ["run", "--config", str(work / "catalogue.yaml"), "--dry-run"]
        env = {**ENV, "BENCH_API_KEY": "x", "LAUNCHER_STATE_DIR": str(work / "state")}
        commands = {"ours": ([LAUNCHER, *argv], env)}
        if Path(NEL).exists():
            commands["NEL 0.2.6"] = ([NEL, *argv], {**os.environ, "BENCH_API_KEY": "x", "HOME": str(work)})
        result = medians(commands, runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = [
        [f"run --dry-run, the whole catalogue ({len(names)} tasks), {name}", f"{t:.2f} s"]
        for name, t in result.items()
    ]
    if "NEL 0.2.6" in result:
        rows.append(["ratio (NEL / ours)", f"{result['NEL 0.2.6'] / result['ours']:.1f}x"])
    return table(["command", f"median of {runs}"], rows)
