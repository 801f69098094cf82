"""Faults, hostile input and crashes: the launcher keeps working and loses nothing."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import GSM8K_PERFECT, TEST_IMAGE, invocation_of, jobs, wait_for

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]


def run_args(tmp_path, url, *extra):
    return [
        "execution=local",
        f"target.api_endpoint.url={url}",
        f"execution.output_dir={tmp_path}/out",
        *extra,
    ]


def read_samples(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "results/samples.jsonl").read_text().splitlines()]


def test_twenty_percent_faults_same_score_as_clean(cli, endpoint, harness_image, tmp_path):
    ep = endpoint("oracle", fault_rate=0.2, slow=2.0)
    args = run_args(
        tmp_path,
        ep.url(),
        "evaluation=smoke",
        "evaluation.params.limit_samples=40",
        "evaluation.params.request_timeout=1",
        "--wait",
    )
    proc = cli(*args)
    assert proc.returncode == 0, proc.stdout[-2000:]
    state = jobs(cli, invocation_of(proc))
    assert (
        state["launcher.gsm8k_cot_zeroshot"]["score"] == GSM8K_PERFECT
        and state["launcher.humaneval_chat"]["score"] == "pass@1=1.0000"
    )
    for job in state.values():
        records = read_samples(Path(job["folder"]))
        errored = [(r["key"], r["error"]) for r in records if r["error"] is not None]
        assert len(records) == 40 and not errored, errored
    assert len(ep.stats()["faulted"]) >= 8  # faults really happened


def test_endpoint_down_fails_with_a_clear_reason_and_keeps_partial_samples(cli, harness_image, tmp_path):
    args = run_args(
        tmp_path,
        "http://127.0.0.1:9/v1/chat/completions",
        "evaluation.tasks=[launcher.gsm8k_cot_zeroshot]",
        "evaluation.params.limit_samples=4",
        "evaluation.params.max_retries=1",
        "--wait",
    )
    proc = cli(*args)
    assert proc.returncode == 1
    job = jobs(cli, invocation_of(proc))["launcher.gsm8k_cot_zeroshot"]
    assert job["state"] == "FAILED" and job["exit_code"] == 1
    # the endpoint proxy answers for the unreachable endpoint: 502 naming it, after its own retries
    assert "task failed: 4 of 4 samples errored" in job["reason"] and "HTTP 502" in job["reason"]
    assert len(read_samples(Path(job["folder"]))) == 4


def start_interruptible_run(cli, ep, tmp_path) -> str:
    """A 150-sample run slow enough to interrupt; returns its id once 10 samples are done."""
    args = run_args(
        tmp_path,
        ep.url(),
        "evaluation.tasks=[launcher.gsm8k_cot_zeroshot]",
        "evaluation.params.limit_samples=150",
        "evaluation.params.parallelism=2",
    )
    inv = invocation_of(cli(*args, check_rc=0))
    wait_for(lambda: (jobs(cli, inv)["launcher.gsm8k_cot_zeroshot"]["done"] or 0) >= 10, what="progress")
    return inv


def resume_requests_no_finished_sample(cli, ep, inv, task_folder: Path) -> None:
    """After an interruption: every checkpoint line parses, and resume completes without re-requests."""
    finished = {r["id"] for r in read_samples(task_folder)}
    assert cli("resume", inv, "--wait").returncode == 0
    job = jobs(cli, inv)["launcher.gsm8k_cot_zeroshot"]
    assert job["state"] == "SUCCEEDED" and job["done"] == 150 and job["score"] == GSM8K_PERFECT
    requests = ep.stats()["samples"]
    assert all(requests[i] == 1 for i in finished)


def test_sigkill_of_the_container_then_resume_loses_nothing(
    cli, endpoint, harness_image, tmp_path, docker_engine
):
    ep = endpoint("oracle", latency=0.05)
    inv = start_interruptible_run(cli, ep, tmp_path)
    for container in docker_engine.containers.list(filters={"label": f"launcher.invocation={inv}"}):
        container.kill()  # SIGKILL: no chance to flush anything
    wait_for(lambda: jobs(cli, inv)["launcher.gsm8k_cot_zeroshot"]["state"] == "FAILED", what="FAILED")
    job = jobs(cli, inv)["launcher.gsm8k_cot_zeroshot"]
    assert job["exit_code"] == 137 and "SIGKILL" in job["reason"]
    resume_requests_no_finished_sample(cli, ep, inv, Path(job["folder"]))


@pytest.mark.parametrize("delay", [0.05, 0.3, 0.6, 1.0])
def test_sigkill_of_the_launcher_never_leaves_a_half_invocation(
    cli, test_image, tmp_path, isolated_state, delay
):
    cfg = {
        "defaults": [{"execution": "local"}, "_self_"],
        "execution": {"output_dir": str(tmp_path / "out")},
        "target": {"api_endpoint": {"url": "http://127.0.0.1:9/v1", "model_id": "m"}},
        "evaluation": {
            "tasks": [{"name": "t", "container": TEST_IMAGE, "command": ["python3", "/opt/task.py", "ok"]}]
        },
    }
    (tmp_path / "cfg.yaml").write_text(json.dumps(cfg))
    proc = subprocess.Popen(
        [sys.executable, "-m", "launcher", "--config-dir", str(tmp_path), "--config-name", "cfg"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
    )
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    listed = json.loads(cli("ls", "runs", "--json", check_rc=0).stdout)
    for run in listed:  # whatever is listed is whole and can be followed and resumed
        assert (Path(run["folder"]) / "invocation.json").is_file() and run["state"] != "MISSING"
        wait_for(lambda run=run: jobs(cli, run["invocation"])["t"]["state"] in ("SUCCEEDED", "LOST"))
        if jobs(cli, run["invocation"])["t"]["state"] == "LOST":
            cli("resume", run["invocation"], "--wait", check_rc=0)
    out = tmp_path / "out"
    visible = [p for p in out.iterdir() if not p.name.startswith(".")] if out.exists() else []
    assert len(visible) == len(listed)


def test_disk_full_is_a_clear_error_and_resume_works_after_space_is_freed(endpoint, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    try:
        ep = endpoint("oracle")
        results = mount / "results"
        results.mkdir()
        params = {
            "parallelism": 8,
            "request_timeout": 5.0,
            "max_retries": 2,
            "max_error_fraction": 0.05,
            "limit_samples": 2000,
            "temperature": None,
            "top_p": None,
            "max_tokens": 16,
            "seed": None,
            "stop": None,
        }
        (results / "run_config.json").write_text(
            json.dumps(
                {
                    "task": "synthetic",
                    "model_id": "m",
                    "url": ep.url(),
                    "endpoint_type": "chat",
                    "api_key_env": None,
                    "params": params,
                }
            )
        )
        filler = mount / "filler"
        filler.write_bytes(b"\0" * 1_500_000)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        run = [sys.executable, "-m", "launcher.harness", "run", "--config", str(results / "run_config.json")]
        first = subprocess.run(run, capture_output=True, text=True, env=env)
        assert first.returncode == 74, first.stdout + first.stderr
        assert "No space left on device" in first.stdout and "Traceback" not in first.stderr
        lines = (results / "samples.jsonl").read_bytes().split(b"\n")
        finished = {json.loads(line)["id"] for line in lines[:-1]}  # all but a torn tail parse
        assert 0 < len(finished) < 2000
        filler.unlink()
        second = subprocess.run(run, capture_output=True, text=True, env=env)
        assert second.returncode == 0, second.stdout
        requests = ep.stats()["samples"]
        assert all(requests[i] == 1 for i in finished)
    finally:
        subprocess.run(["umount", str(mount)], check=False)


HOSTILE = ["$(touch PWNED)", "`touch PWNED`", "a'b\"c", "../../escape", "ünïcødé ✓", "x" * 200]


def test_hostile_names_and_values_run_as_data(cli, test_image, tmp_path):
    tasks = [
        {"name": name, "container": TEST_IMAGE, "command": ["python3", "/opt/task.py", "ok"]}
        for name in HOSTILE
    ]
    cfg = {
        "defaults": [{"execution": "local"}, "_self_"],
        "execution": {"output_dir": str(tmp_path / "out dir $HOME"), "max_parallel": 6},
        "target": {"api_endpoint": {"url": "http://127.0.0.1:9/v1", "model_id": "m$(id)`id`" + "y" * 5000}},
        "evaluation": {"tasks": tasks},
    }
    (tmp_path / "cfg.yaml").write_text(json.dumps(cfg))
    proc = cli("--config-dir", str(tmp_path), "--config-name", "cfg", "--wait")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    state = jobs(cli, invocation_of(proc))
    assert set(state) == set(HOSTILE) and {j["state"] for j in state.values()} == {"SUCCEEDED"}
    root = tmp_path / "out dir $HOME"
    for job in state.values():
        assert Path(job["folder"]).parent.parent == root  # every task folder inside the invocation
    assert not list(tmp_path.rglob("PWNED")) and not list(Path.cwd().rglob("PWNED"))
    assert not (tmp_path.parent / "escape").exists()


STARTED_BY_US = Path("/run/launcher-started-dockerd")


def test_docker_daemon_restart_during_a_run(cli, endpoint, harness_image, tmp_path):
    if not STARTED_BY_US.exists():
        pytest.skip(
            "this engine was not started by scripts/ensure-docker.sh (make test): not ours to restart"
        )
    ep = endpoint("oracle", latency=0.05)
    inv = start_interruptible_run(cli, ep, tmp_path)
    pid = int(STARTED_BY_US.read_text())
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), timeout=60, what="dockerd to stop")
    subprocess.run(["bash", str(ROOT / "scripts/ensure-docker.sh")], check=True, capture_output=True)
    wait_for(
        lambda: jobs(cli, inv)["launcher.gsm8k_cot_zeroshot"]["state"] in ("FAILED", "KILLED", "LOST"),
        what="a terminal state",
    )
    job = jobs(cli, inv)["launcher.gsm8k_cot_zeroshot"]
    resume_requests_no_finished_sample(cli, ep, inv, Path(job["folder"]))
