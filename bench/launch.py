"""2. Launch overhead (vs plain docker run) and kill latency."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import ENV, LAUNCHER, TEST_IMAGE, Endpoint, table


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
                    "evaluation.tasks=[launcher.gsm8k_cot_zeroshot]",  # bare gsm8k: the catalogue image
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
