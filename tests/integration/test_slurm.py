"""The slurm executor on a real single-node cluster (scripts/ensure-slurm.sh; `make test` starts it)."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import invocation_of, jobs, wait_for

from launcher.testing.contract import ExecutorContract

pytestmark = pytest.mark.docker
TEST_IMAGE = "launcher-testtask:1"


@pytest.fixture(scope="session")
def slurm_cluster():
    proc = (
        subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
        if shutil.which("sinfo")
        else None
    )
    if not (proc and proc.returncode == 0 and any(s in proc.stdout for s in ("idle", "mix", "alloc"))):
        if os.environ.get("LAUNCHER_REQUIRE_DOCKER") == "1" or os.environ.get("CI"):
            pytest.fail("no Slurm cluster answers (make test starts one with scripts/ensure-slurm.sh)")
        pytest.skip("no Slurm cluster on this machine")


def task(name, mode, *args):
    return {"name": name, "container": TEST_IMAGE, "command": ["python3", "/opt/task.py", mode, *args]}


def config(tmp_path, tasks, **execution):
    cfg = {
        "defaults": [{"execution": "slurm"}, "_self_"],
        "execution": {"output_dir": str(tmp_path / "out"), **execution},
        "target": {
            "api_endpoint": {
                "url": "http://127.0.0.1:9/v1/chat/completions",
                "model_id": "m",
                "api_key": "SLURM_TEST_KEY",
            }
        },
        "evaluation": {"tasks": tasks},
    }
    (tmp_path / "cfg.yaml").write_text(json.dumps(cfg))
    return ["--config-dir", str(tmp_path), "--config-name", "cfg"]


def test_two_tasks_succeed_and_no_secret_is_written(cli, tmp_path, slurm_cluster, test_image):
    secret = f"sk-slurm-{os.urandom(6).hex()}"
    proc = cli(
        *config(tmp_path, [task("a", "ok"), task("b", "fail")]), "--wait", env={"SLURM_TEST_KEY": secret}
    )
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr
    state = jobs(cli, invocation_of(proc))
    assert state["a"]["state"] == "SUCCEEDED" and state["a"]["done"] == 3
    assert state["b"]["state"] == "FAILED" and state["b"]["reason"] == "boom: failing on purpose"
    folder = Path(state["a"]["folder"]).parent
    assert "#SBATCH --array" not in (folder / "sbatch.sh").read_text()  # indices are given at submission
    for path in folder.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    digests = json.loads((Path(state["a"]["folder"]) / "results/env.json").read_text())
    assert "API_KEY" in digests  # the value travelled through Slurm's environment export


def test_kill_then_resume_requests_no_finished_sample(cli, endpoint, harness_image, tmp_path, slurm_cluster):
    ep = endpoint("oracle", latency=0.1)
    proc = cli(
        "execution=slurm",
        f"target.api_endpoint.url={ep.url()}",
        f"execution.output_dir={tmp_path}/out",
        "evaluation.tasks=[gsm8k,aime2025]",
        "evaluation.params.limit_samples=200",
        "evaluation.params.parallelism=2",
        check_rc=0,
    )
    inv = invocation_of(proc)
    wait_for(lambda: (jobs(cli, inv)["gsm8k"]["done"] or 0) >= 10, what="progress")
    cli("kill", inv, check_rc=0)
    wait_for(
        lambda: (
            subprocess.run(
                ["squeue", "-h", "-n", f"launcher-{inv}"], capture_output=True, text=True
            ).stdout.strip()
            == ""
        ),
        timeout=30,
        what="the Slurm job to end",
    )
    job = jobs(cli, inv)["gsm8k"]
    assert job["state"] == "KILLED"
    finished = {
        json.loads(line)["id"]
        for line in (Path(job["folder"]) / "results/samples.jsonl").read_text().splitlines()
    }
    assert cli("resume", inv, "--wait").returncode == 0
    state = jobs(cli, inv)
    assert state["gsm8k"]["state"] == "SUCCEEDED" and state["gsm8k"]["done"] == 200
    assert state["aime2025"]["state"] == "SUCCEEDED"
    requests = ep.stats()["requests"]
    assert all(requests[i] == 1 for i in finished)


def test_a_job_slurm_refuses_is_one_clear_line(cli, tmp_path, slurm_cluster, test_image):
    proc = cli(*config(tmp_path, [task("a", "ok")], partition="nope"), env={"SLURM_TEST_KEY": "k"})
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(
        "error: sbatch refused the job: Batch job submission failed: Invalid partition"
    )


def test_a_job_that_cannot_run_shows_the_slurm_reason(cli, tmp_path, slurm_cluster, test_image):
    inv = invocation_of(
        cli(
            *config(tmp_path, [task("a", "ok")], extra_sbatch=["--nodes=99"]),
            env={"SLURM_TEST_KEY": "k"},
            check_rc=0,
        )
    )
    job = jobs(cli, inv)["a"]
    assert job["state"] == "PENDING" and job["reason"].startswith("queued in Slurm (")
    cli("kill", inv, check_rc=0)
    assert jobs(cli, inv)["a"]["state"] == "KILLED"


def test_ssh_submission_is_refused_until_built(cli, tmp_path):
    proc = cli(*config(tmp_path, [task("a", "ok")], hostname="login.example"), "-n")
    assert proc.returncode == 2 and "submitting over SSH is not supported yet" in proc.stderr


class TestSlurmExecutorContract(ExecutorContract):
    @property
    def executor_class(self):
        from launcher.executors.slurm import SlurmExecutor

        return SlurmExecutor

    def tasks(self):
        return [task("first", "sleep"), task("second", "ok")]

    @pytest.fixture(autouse=True)
    def _needs_cluster(self, slurm_cluster, test_image):
        return test_image
