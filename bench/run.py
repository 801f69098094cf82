"""`make bench`: measure the launcher and print Markdown tables for BENCHMARKS.md.

Sections: cli (latency, side by side with NeMo Evaluator Launcher 0.2.6 in its own venv), launch
(overhead vs plain docker run), kill (time to stop a running task), throughput (harness vs a bare
aiohttp loop), resume (kill -9 waste), memory (harness peak RSS). Run one with
`python bench/run.py cli`. Medians of several runs; ratios come
from runs made side by side in the same invocation.
"""

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

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
LAUNCHER = str(VENV_BIN / "launcher")
NEL_VENV = ROOT / "build" / "bench" / "nel-venv"
NEL = str(NEL_VENV / "bin" / "nemo-evaluator-launcher")
TEST_IMAGE = "launcher-testtask:1"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def timed(argv: list[str], env: dict | None = None, cwd: str | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, env=env or ENV, cwd=cwd)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:4]} failed ({proc.returncode}): {proc.stderr.decode()[-400:]}")
    return elapsed


def medians(commands: dict[str, tuple[list[str], dict | None]], runs: int) -> dict[str, float]:
    """Run every command once per round, round after round (side by side), then take medians."""
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, (argv, env) in commands.items():
            samples[name].append(timed(argv, env))
    return {name: statistics.median(values) for name, values in samples.items()}


def table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# ---- 1. CLI latency -----------------------------------------------------------------------------------

TEN_TASKS = ["gsm8k", "humaneval", "gpqa_diamond", "aime2025", "hellaswag", "truthfulqa_mc1"]
NEL_TASKS = [
    f"lm-evaluation-harness.{name}"
    for name in (
        "arc_challenge_chat",
        "bbh_instruct",
        "bbq_chat",
        "gpqa_diamond_cot",
        "gsm8k_cot_instruct",
        "gsm8k_cot_llama",
        "gsm8k_cot_zeroshot",
        "humaneval_instruct",
        "ifeval",
        "mbpp_plus_chat",
    )
]


def write_configs(folder: Path) -> None:
    ours = {
        "defaults": [{"execution": "local"}, {"deployment": "none"}, "_self_"],
        "execution": {"output_dir": str(folder / "out")},
        "target": {
            "api_endpoint": {
                "url": "https://example.invalid/v1/chat/completions",
                "model_id": "m",
                "api_key": "BENCH_API_KEY",
            }
        },
        "evaluation": {
            "tasks": TEN_TASKS
            + [
                {"name": f"custom{i}", "container": TEST_IMAGE, "command": ["python3", "/opt/task.py", "ok"]}
                for i in range(4)
            ]
        },
    }
    (folder / "ours.yaml").write_text(json.dumps(ours))
    nel = {
        "defaults": [{"execution": "local"}, {"deployment": "none"}, "_self_"],
        "execution": {"output_dir": str(folder / "nel-out")},
        "target": {
            "api_endpoint": {
                "url": "https://example.invalid/v1/chat/completions",
                "model_id": "m",
                "api_key_name": "BENCH_API_KEY",
            }
        },
        "evaluation": {"tasks": [{"name": name} for name in NEL_TASKS]},
    }
    (folder / "nel.yaml").write_text(json.dumps(nel))


def fill_index(state: Path, out: Path, count: int) -> None:
    """`count` finished invocations in an index, written through the launcher's own store."""
    sys.path.insert(0, str(ROOT))
    os.environ["LAUNCHER_STATE_DIR"] = str(state)
    from launcher.model import InvocationRecord, Plan, PlannedJob
    from launcher.store import index, layout

    now = time.time()
    for n in range(count):
        inv = f"{n:08x}"
        folder = out / f"{layout.stamp(now)}-{inv}"
        job = PlannedJob(f"{inv}.0", "gsm8k", "gsm8k", "img", ("true",))
        events = f"started {int(now)} 1\nexited {int(now)} 0\n"
        plan = Plan(inv, str(folder), (job,), {"gsm8k/events.log": events, "events.log": events})
        record = InvocationRecord(
            inv,
            str(folder),
            "local",
            {"output_dir": str(out)},
            (job,),
            now,
        )
        layout.create_invocation(plan, record, {})
        index.append(record)
    del os.environ["LAUNCHER_STATE_DIR"]


def bench_cli(runs: int = 7) -> str:
    work = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    try:
        write_configs(work)
        fill_index(work / "state", work / "runs", 1000)
        env = {**ENV, "LAUNCHER_STATE_DIR": str(work / "state"), "BENCH_API_KEY": "x"}
        commands = {
            "ours --help": ([LAUNCHER, "--help"], env),
            "ours run --dry-run (10 tasks)": (
                [LAUNCHER, "run", "--config-dir", str(work), "--config-name", "ours", "--dry-run"],
                env,
            ),
            "ours status (1,000 in index)": ([LAUNCHER, "status"], env),
            "ours ls runs (1,000 in index)": ([LAUNCHER, "ls", "runs"], env),
            "ours ls runs -n 1000": ([LAUNCHER, "ls", "runs", "-n", "1000"], env),
        }
        nel = Path(NEL).exists()
        if nel:
            nel_env = {**os.environ, "BENCH_API_KEY": "x", "HOME": str(work / "nel-home")}
            commands |= {
                "NEL --help": ([NEL, "--help"], nel_env),
                "NEL run --dry-run (10 tasks)": (
                    [NEL, "run", "--config", str(work / "nel.yaml"), "--dry-run"],
                    nel_env,
                ),
                "NEL status": ([NEL, "status", "0000dead"], nel_env),
            }
        result = medians(commands, runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = [[name, f"{seconds:.3f} s"] for name, seconds in result.items()]
    text = table(["command", f"median of {runs}"], rows)
    if nel:
        text += "\n\n" + table(
            ["ratio (NEL / ours)", "x"],
            [
                ["--help", f"{result['NEL --help'] / result['ours --help']:.1f}"],
                [
                    "run --dry-run, 10 tasks",
                    f"{result['NEL run --dry-run (10 tasks)'] / result['ours run --dry-run (10 tasks)']:.1f}",
                ],
                ["status", f"{result['NEL status'] / result['ours status (1,000 in index)']:.1f}"],
            ],
        )
    else:
        text += f"\n\n(NeMo Evaluator Launcher not installed at {NEL}: `make bench` installs it)"
    return text


# ---- 2. launch overhead ----------------------------------------------------------------------------------


def _docker():
    import docker

    return docker.from_env()


def wait_running(client, label: str, start: float) -> float:
    while True:
        found = client.api.containers(filters={"label": label, "status": "running"})
        if found:
            return time.perf_counter() - start
        if time.perf_counter() - start > 60:
            raise RuntimeError("no container started within 60 s")
        time.sleep(0.005)


def bench_launch(runs: int = 5) -> str:
    client = _docker()
    work = Path(tempfile.mkdtemp(prefix="bench-launch-"))
    env = {**ENV, "LAUNCHER_STATE_DIR": str(work / "state")}
    first_ours, first_plain, many_ours, many_plain = [], [], [], []
    try:
        for n in range(runs):
            # time to the first container running
            cfg = {
                "defaults": [{"execution": "local"}, "_self_"],
                "execution": {"output_dir": str(work / "o")},
                "target": {"api_endpoint": {"url": "http://127.0.0.1:9/v1", "model_id": "m"}},
                "evaluation": {
                    "tasks": [
                        {
                            "name": "s",
                            "container": TEST_IMAGE,
                            "command": ["python3", "/opt/task.py", "sleep"],
                        }
                    ]
                },
            }
            (work / "one.yaml").write_text(json.dumps(cfg))
            start = time.perf_counter()
            proc = subprocess.Popen(
                [LAUNCHER, "--config-dir", str(work), "--config-name", "one"],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            first_ours.append(wait_running(client, "launcher.task=s", start))
            out, _ = proc.communicate()
            subprocess.run([LAUNCHER, "kill", out.split()[1].rstrip(":")], env=env, capture_output=True)
            name = f"bench-plain-{n}"
            start = time.perf_counter()
            subprocess.Popen(
                [
                    "docker",
                    "run",
                    "--rm",
                    "-d",
                    "--name",
                    name,
                    "--label",
                    f"bench={name}",
                    TEST_IMAGE,
                    "python3",
                    "/opt/task.py",
                    "sleep",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            first_plain.append(wait_running(client, f"bench={name}", start))
            subprocess.run(["docker", "rm", "-f", name], capture_output=True)
            # 20 tasks that exit at once: launcher (max_parallel 20) vs 20 plain docker runs in parallel
            cfg["execution"]["max_parallel"] = 20
            cfg["evaluation"]["tasks"] = [
                {"name": f"t{i}", "container": TEST_IMAGE, "command": ["python3", "-c", "pass"]}
                for i in range(20)
            ]
            (work / "many.yaml").write_text(json.dumps(cfg))
            start = time.perf_counter()
            out = subprocess.run(
                [LAUNCHER, "--config-dir", str(work), "--config-name", "many"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            folder = next(ln.split()[-1] for ln in out.splitlines() if ln.strip().startswith("folder:"))
            while "exited" not in Path(folder, "events.log").read_text():
                time.sleep(0.01)
            many_ours.append(time.perf_counter() - start)
            script = " ".join(f"docker run --rm {TEST_IMAGE} python3 -c pass &" for _ in range(20)) + " wait"
            start = time.perf_counter()
            subprocess.run(["bash", "-c", script], check=True, capture_output=True)
            many_plain.append(time.perf_counter() - start)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = statistics.median
    rows = [
        [
            "command to first container running",
            f"{med(first_ours):.3f} s",
            f"{med(first_plain):.3f} s",
            f"{med(first_ours) - med(first_plain):+.3f} s",
        ],
        [
            "20 tasks that exit at once, to all done",
            f"{med(many_ours):.3f} s",
            f"{med(many_plain):.3f} s",
            f"{(med(many_ours) / med(many_plain) - 1) * 100:+.1f} %",
        ],
    ]
    return table([f"measure (median of {runs})", "launcher", "plain docker run", "overhead"], rows)


def bench_kill(runs: int = 5) -> str:
    """`launcher kill` of a running harness task: command time, and time until no container is left."""
    client = _docker()
    endpoint = Endpoint("--mode", "echo", "--latency", "0.2")
    work = Path(tempfile.mkdtemp(prefix="bench-kill-"))
    env = {**ENV, "LAUNCHER_STATE_DIR": str(work / "state")}
    command, gone = [], []
    try:
        for _ in range(runs):
            out = subprocess.run(
                [
                    LAUNCHER,
                    "execution=local",
                    f"target.api_endpoint.url={endpoint.url}",
                    "evaluation.tasks=[gsm8k]",
                    f"execution.output_dir={work}/o",
                ],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            inv = out.split()[1].rstrip(":")
            wait_running(client, f"launcher.invocation={inv}", time.perf_counter())
            time.sleep(1)
            start = time.perf_counter()
            subprocess.run([LAUNCHER, "kill", inv], env=env, check=True, capture_output=True)
            command.append(time.perf_counter() - start)
            while client.api.containers(all=True, filters={"label": f"launcher.invocation={inv}"}):
                time.sleep(0.01)
            gone.append(time.perf_counter() - start)
    finally:
        endpoint.stop()
        shutil.rmtree(work, ignore_errors=True)
    med = statistics.median
    return table(
        [f"measure (median of {runs})", "value"],
        [
            ["`launcher kill` command", f"{med(command):.3f} s"],
            ["until no container of the invocation is left", f"{med(gone):.3f} s"],
        ],
    )


# ---- 3. harness throughput -----------------------------------------------------------------------------


class Endpoint:
    def __init__(self, *args: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "launcher.testing.endpoint", "--port", "0", *args],
            stdout=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        self.port = int(self.proc.stdout.readline().split()[-1])
        self.url = f"http://127.0.0.1:{self.port}/v1/chat/completions"

    def stats(self) -> dict:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats") as resp:
            return json.load(resp)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def harness_config(folder: Path, url: str, n: int, parallelism: int) -> Path:
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
                "task": "synthetic",
                "model_id": "m",
                "url": url,
                "endpoint_type": "chat",
                "api_key_env": None,
                "params": params,
            }
        )
    )
    return path


def run_harness(config: Path) -> tuple[float, float]:
    """(seconds spent requesting, CPU seconds of the whole harness process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [sys.executable, "-m", "launcher.harness", "run", "--config", str(config)],
        env=ENV,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next(ln for ln in out.splitlines() if "requests in" in ln)
    seconds = float(line.split("requests in ")[1].split(" s")[0])
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
    from launcher.harness.tasks import load_synthetic

    prompts = [s.prompt for s in load_synthetic()]
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
        requests = endpoint.stats()["requests"]
    finally:
        endpoint.stop()
        shutil.rmtree(work, ignore_errors=True)
    resent = sum(requests[i] - 1 for i in finished)
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


# ---- 5. memory ------------------------------------------------------------------------------------------


def bench_memory(n: int = 10_000) -> str:
    endpoint = Endpoint("--mode", "echo")
    work = Path(tempfile.mkdtemp(prefix="bench-mem-"))
    try:
        config = harness_config(work, endpoint.url, n, 64)
        probe = (
            "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
            "stdout=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
        )
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                probe,
                sys.executable,
                "-m",
                "launcher.harness",
                "run",
                "--config",
                str(config),
            ],
            env=ENV,
            capture_output=True,
            text=True,
            check=True,
        )
        peak_mib = int(out.stdout.strip()) / 1024
    finally:
        endpoint.stop()
        shutil.rmtree(work, ignore_errors=True)
    return table(
        ["measure", "value"], [[f"harness peak RSS, {n:,} samples, parallelism 64", f"{peak_mib:.0f} MiB"]]
    )


SECTIONS = {
    "cli": bench_cli,
    "launch": bench_launch,
    "kill": bench_kill,
    "throughput": bench_throughput,
    "resume": bench_resume,
    "memory": bench_memory,
}


def main(argv: list[str]) -> None:
    chosen = argv or list(SECTIONS)
    machine = f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d')}"
    print(f"<!-- make bench: {' '.join(chosen)}; {machine} -->")
    for name in chosen:
        print(f"\n### {name}\n", flush=True)
        print(SECTIONS[name](), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
