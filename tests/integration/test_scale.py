"""Issue 17 with real containers: a 200-task invocation submits at once, ends all SUCCEEDED, and a killed
200-task invocation leaves no container and no script behind, max_parallel is honoured, and `status --detail`
shows the endpoint proxy's counters. Times are printed, never asserted."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from helpers import invocation_of, task, wait_for, write_config

TASKS = 200


def our_scripts(folder: str) -> list[int]:
    """PIDs of bash processes running a script of this invocation folder."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if cwd.startswith(folder) and b".sh" in cmdline:
            found.append(int(pid))
    return found


def test_a_200_task_invocation_submits_at_once_and_ends_succeeded(cli, tmp_path, test_image):
    args = write_config(tmp_path, "local", [task(f"t{n}", "ok") for n in range(TASKS)], max_parallel=8)
    start = time.monotonic()
    proc = cli(*args, check_rc=0)
    print(f"submit of {TASKS} tasks: {time.monotonic() - start:.2f} s: {proc.stdout.splitlines()[0]}")
    inv = invocation_of(proc)
    watch = subprocess.Popen(
        [sys.executable, "-m", "launcher", "status", inv, "--watch"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, **cli.env},
    )  # fmt: skip
    running = []  # containers of the invocation running at once, sampled until the watch ends
    while watch.poll() is None:
        ps = [
            "docker",
            "ps",
            "-q",
            "--filter",
            f"label=launcher.invocation={inv}",
            "--filter",
            "status=running",
        ]
        running.append(len(subprocess.run(ps, capture_output=True, text=True, check=True).stdout.split()))
        time.sleep(0.2)
    out = watch.communicate(timeout=60)[0]
    print(f"running containers sampled {len(running)} times: at most {max(running)} (max_parallel 8)")
    assert 0 < max(running) <= 8  # max_parallel honoured (a sample can miss a peak, never invent one)
    assert watch.returncode == 0, out[-2000:]
    assert f"{TASKS} succeeded" in out  # the summary line of a big invocation
    states = json.loads(cli("status", inv, "--json", check_rc=0).stdout)[0]["jobs"]
    assert [s["state"] for s in states] == ["SUCCEEDED"] * TASKS


def test_kill_of_a_200_task_invocation_leaves_nothing(cli, tmp_path, test_image, docker_engine):
    args = write_config(tmp_path, "local", [task(f"t{n}", "sleep") for n in range(TASKS)], max_parallel=8)
    inv = invocation_of(cli(*args, check_rc=0))
    folder = json.loads(cli("status", inv, "--json", check_rc=0).stdout)[0]["folder"]
    wait_for(
        lambda: any(
            s["state"] == "RUNNING" for s in json.loads(cli("status", inv, "--json").stdout)[0]["jobs"]
        )
    )
    start = time.monotonic()
    cli("kill", inv, check_rc=0)
    print(f"kill of {TASKS} tasks: {time.monotonic() - start:.2f} s")
    label = {"label": f"launcher.invocation={inv}"}
    gone = lambda: not docker_engine.containers.list(all=True, sparse=True, filters=label)  # noqa: E731
    wait_for(gone, 60, "containers gone")  # sparse: no inspect racing --rm
    wait_for(lambda: not our_scripts(folder), 30, "scripts gone")
    states = {s["state"] for s in json.loads(cli("status", inv, "--json", check_rc=0).stdout)[0]["jobs"]}
    assert states == {"KILLED"}, states


def test_status_detail_shows_the_proxy_counters_live_then_final(cli, endpoint, harness_image, tmp_path):
    """Issue 15: a local run through the invocation's proxy; `status --detail` reads its counters from the
    running proxy, then from the file it writes when the invocation ends; they match what the endpoint
    received."""
    ep = endpoint("oracle", latency=0.3)
    args = ("execution=local", "target=local", f"target.api_endpoint.url={ep.url()}",
            f"execution.output_dir={tmp_path}/out", "+evaluation.tasks=[launcher.gsm8k_cot_zeroshot]",
            "evaluation.params.limit_samples=30", "evaluation.params.parallelism=2")  # fmt: skip
    inv = invocation_of(cli("run", *args, check_rc=0))

    def live_requests() -> int:
        proxy = json.loads(cli("status", inv, "--json", check_rc=0).stdout)[0].get("proxy") or {}
        return proxy.get("requests", 0) if proxy.get("live") else 0

    wait_for(lambda: live_requests() > 0, 120, "live counters from the running proxy")
    detail = cli("status", inv, "--detail", check_rc=0).stdout
    assert f"proxy of {inv} (live): " in detail, detail
    proc = cli("status", inv, "--watch", "--detail", timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert f"proxy of {inv}" in proc.stdout
    final = json.loads(cli("status", inv, "--json", check_rc=0).stdout)[0]["proxy"]
    assert final["live"] is False
    assert final["upstream_requests"] == ep.stats()["total"] and final["requests"] >= 30
    assert final["tokens_out"] > 0 and final["latency_ms"]["p95"] >= final["latency_ms"]["p50"] >= 300
    detail = cli("status", inv, "--detail", check_rc=0).stdout
    assert f"proxy of {inv} (last written): {final['requests']} req" in detail, detail
    c = final["concurrency"]  # the adaptive budget: a parallelism of 2 never asks for more than 2 at once
    assert c["upstream_429"] == c["upstream_5xx"] == c["queued"] == 0 and final["max_in_flight"] <= 2
    assert f"concurrency settled {c['settled']} (now {c['limit']}, cap 64), 0 x 429, 0 x 5xx" in detail
