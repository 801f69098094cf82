"""The slurm executor on a real single-node cluster (scripts/ensure-slurm.sh; `make test` starts it)."""

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from helpers import GSM8K_PERFECT, invocation_of, jobs, task, unavailable, wait_for, write_config

from launcher.executors.slurm import SlurmConfig, SlurmExecutor
from launcher.store.layout import read_record
from launcher.testing import caches
from launcher.testing.contract import ExecutorContract

pytestmark = pytest.mark.docker


@pytest.fixture(scope="session")
def slurm_cluster(tools_image):
    """A Slurm cluster with nothing of ours installed: the proxy and auto-export run from tools_image."""
    proc = (
        subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
        if shutil.which("sinfo")
        else None
    )
    if not (proc and proc.returncode == 0 and any(s in proc.stdout for s in ("idle", "mix", "alloc"))):
        unavailable("no Slurm cluster answers", "make test starts one with scripts/ensure-slurm.sh")


def config(tmp_path, tasks, **execution):
    return write_config(tmp_path, "slurm", tasks, api_key="SLURM_TEST_KEY", **execution)


def proxies_of(folder) -> list[int]:
    """Live `python -m launcher.proxy` processes of one invocation (their --config is in its folder)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0") if proc.name.isdigit() else []
        except OSError:
            continue
        if b"launcher.proxy" in argv and any(str(folder).encode() in a for a in argv):
            found.append(int(proc.name))
    return found


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
    # the element's endpoint proxy holds the key; the task's API_KEY is the proxy's credential
    assert "API_KEY" in digests and hashlib.sha256(secret.encode()).hexdigest() not in digests.values()


def test_kill_then_resume_requests_no_finished_sample(cli, endpoint, harness_image, tmp_path, slurm_cluster):
    ep = endpoint("oracle", latency=0.1)
    proc = cli(
        "execution=slurm",
        f"target.api_endpoint.url={ep.url()}",
        f"execution.output_dir={tmp_path}/out",
        "evaluation.tasks=[launcher.gsm8k_cot_zeroshot,launcher.aime2025]",
        "evaluation.params.limit_samples=200",
        "evaluation.params.parallelism=2",
        check_rc=0,
    )
    inv = invocation_of(proc)
    wait_for(lambda: (jobs(cli, inv)["launcher.gsm8k_cot_zeroshot"]["done"] or 0) >= 10, what="progress")
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
    job = jobs(cli, inv)["launcher.gsm8k_cot_zeroshot"]
    assert job["state"] == "KILLED"
    wait_for(lambda: not proxies_of(Path(job["folder"]).parent), timeout=30, what="no proxy left after kill")
    finished = {
        json.loads(line)["id"]
        for line in (Path(job["folder"]) / "results/samples.jsonl").read_text().splitlines()
    }
    assert cli("resume", inv, "--wait").returncode == 0
    state = jobs(cli, inv)
    assert (
        state["launcher.gsm8k_cot_zeroshot"]["state"] == "SUCCEEDED"
        and state["launcher.gsm8k_cot_zeroshot"]["done"] == 200
    )
    assert state["launcher.aime2025"]["state"] == "SUCCEEDED"
    requests = ep.stats()["samples"]
    assert all(requests[i] == 1 for i in finished)
    wait_for(lambda: not proxies_of(Path(job["folder"]).parent), timeout=30, what="no proxy left at the end")


def test_tasks_go_through_their_elements_proxy_and_auto_export_runs_after_the_array(
    cli, endpoint, harness_image, test_image, tmp_path, slurm_cluster
):
    """The array elements on the node share its proxy: the harness reaches the endpoint through it (its
    counters in proxy/nodes/<node>/<job id>/proxy_stats.json), no task container has the key, no proxy
    outlives the job; a job after the array (afterany) auto-exports to `local`."""
    ep = endpoint("oracle")
    secret = f"sk-slurm-{os.urandom(6).hex()}"
    table = tmp_path / "scores.csv"
    cfg = {
        "defaults": [{"execution": "slurm"}, "_self_"],
        "execution": {"output_dir": str(tmp_path / "out"), "auto_export": {"destinations": ["local"]}},
        "export": {"local": {"path": str(table)}},
        "target": {"api_endpoint": {"url": ep.url(), "model_id": "m", "api_key": "SLURM_TEST_KEY"}},
        "evaluation": {
            "tasks": ["launcher.gsm8k_cot_zeroshot", task("env", "ok")],
            "params": {"limit_samples": 5},
        },
    }
    (tmp_path / "cfg.yaml").write_text(json.dumps(cfg))
    proc = cli(
        "--config-dir", str(tmp_path), "--config-name", "cfg", "--wait", env={"SLURM_TEST_KEY": secret}
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    assert "auto-export job" in proc.stdout
    state = jobs(cli, invocation_of(proc))
    gsm8k, env = Path(state["launcher.gsm8k_cot_zeroshot"]["folder"]), Path(state["env"]["folder"])
    assert state["launcher.gsm8k_cot_zeroshot"]["score"] == GSM8K_PERFECT
    folder = gsm8k.parent
    wait_for(lambda: not proxies_of(folder), timeout=30, what="every element's proxy to stop")
    counters = [json.loads(p.read_text()) for p in folder.glob("proxy/nodes/vm/*/proxy_stats.json")]
    assert sum(c["requests"] for c in counters) == 5  # gsm8k's; the `env` task sends none
    assert sum(c["upstream_requests"] for c in counters) == ep.stats()["total"] == 5
    record = read_record(folder)
    combined, live = SlurmExecutor(SlurmConfig()).proxy_stats(record)  # what `status --detail` shows
    assert (combined["proxies"], combined["requests"], live) == (len(counters), 5, False)
    detail = cli("status", record.invocation_id, "--detail", check_rc=0).stdout
    assert f"{len(counters)} proxies, 5 req, 0 cached, 5 upstream" in detail  # each start's, added up
    run_config = json.loads((gsm8k / "results/run_config.json").read_text())
    ports = [
        urlsplit(json.loads((f / "results/run_config.json").read_text())["url"]).port for f in (gsm8k, env)
    ]
    assert run_config["api_key_env"] == "API_KEY" and ports[1] == ports[0]  # the node's proxy
    digests = json.loads((env / "results/env.json").read_text())  # API_KEY: the credential, not the key
    assert "API_KEY" in digests and hashlib.sha256(secret.encode()).hexdigest() not in digests.values()
    wait_for(lambda: table.is_file(), timeout=60, what="the auto-exported table")
    rows = table.read_text().splitlines()
    assert len(rows) == 3 and all(invocation_of(proc) in row for row in rows[1:])  # header + 2 gsm8k metrics
    wait_for(lambda: "auto-exported to local" in (folder / "logs/export.log").read_text(), what="export.log")
    for path in folder.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


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


SSH_DIR = caches.sshd()


@pytest.fixture(scope="session")
def ssh_login(slurm_cluster):
    """execution keys reaching this machine's Slurm over SSH (make test starts it: scripts/ensure-sshd.sh)."""
    key = SSH_DIR / "client_ed25519"
    options = [
        f"IdentityFile={key}",
        "StrictHostKeyChecking=no",
        "UserKnownHostsFile=/dev/null",
        "LogLevel=ERROR",
    ]
    argv = [
        "ssh",
        "-p",
        "2222",
        "-o",
        "BatchMode=yes",
        *[x for o in options for x in ("-o", o)],
        f"{os.environ.get('USER') or 'root'}@127.0.0.1",
        "true",
    ]
    if not key.exists() or subprocess.run(argv, capture_output=True).returncode != 0:
        unavailable("no SSH server on 127.0.0.1:2222", "make test starts one with scripts/ensure-sshd.sh")
    return {
        "hostname": "127.0.0.1",
        "port": 2222,
        "username": os.environ.get("USER") or "root",
        "ssh_options": options,
    }


def test_over_ssh_two_tasks_run_kill_and_resume(cli, endpoint, harness_image, tmp_path, ssh_login):
    ep = endpoint("oracle", latency=0.1)
    cluster = tmp_path / "cluster"  # the login node's file system: a different path than ours
    secret = f"sk-ssh-{os.urandom(6).hex()}"
    cfg = {
        "defaults": [{"execution": "slurm"}, "_self_"],
        "execution": {
            "output_dir": str(tmp_path / "out"),
            "remote_output_dir": str(cluster),
            # no launcher_python: nothing of ours is installed for the nodes; the proxy and the export
            # run from the tools image through the tasks' docker
            "auto_export": {"destinations": ["local"]},  # default path: launcher-results.csv in the folder
            **ssh_login,
        },
        "target": {"api_endpoint": {"url": ep.url(), "model_id": "m", "api_key": "SSH_TEST_KEY"}},
        "evaluation": {
            "tasks": ["launcher.gsm8k_cot_zeroshot", "launcher.aime2025"],
            "params": {"limit_samples": 200, "parallelism": 2},
        },
    }
    (tmp_path / "cfg.yaml").write_text(json.dumps(cfg))
    env = {"SSH_TEST_KEY": secret}
    inv = invocation_of(cli("--config-dir", str(tmp_path), "--config-name", "cfg", env=env, check_rc=0))
    wait_for(
        lambda: (jobs(cli, inv)["launcher.gsm8k_cot_zeroshot"]["done"] or 0) >= 10, what="progress over SSH"
    )
    cli("kill", inv, check_rc=0)
    assert jobs(cli, inv)["launcher.gsm8k_cot_zeroshot"]["state"] == "KILLED"
    (remote_gsm8k,) = cluster.glob("*/launcher.gsm8k_cot_zeroshot")
    finished = {
        json.loads(line)["id"] for line in (remote_gsm8k / "results/samples.jsonl").read_text().splitlines()
    }
    proc = cli("resume", inv, "--wait", env=env)
    assert proc.returncode == 0, proc.stdout[-2000:]
    state = jobs(cli, inv)
    assert (
        state["launcher.gsm8k_cot_zeroshot"]["state"] == "SUCCEEDED"
        and state["launcher.gsm8k_cot_zeroshot"]["score"] == GSM8K_PERFECT
    )
    aime = state["launcher.aime2025"]  # 30 items x the reference's 4 samples each
    assert aime["state"] == "SUCCEEDED" and aime["done"] == 120
    assert Path(
        state["launcher.gsm8k_cot_zeroshot"]["folder"], "results/results.json"
    ).is_file()  # brought back from the cluster
    requests = ep.stats()["samples"]
    assert all(requests[i] == 1 for i in finished)
    for root in (tmp_path / "out", cluster):
        for path in root.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path
    run_config = json.loads((remote_gsm8k / "results/run_config.json").read_text())
    assert run_config["api_key_env"] == "API_KEY"  # the proxy's credential; its proxy on the node has the key
    counters = [json.loads(p.read_text()) for p in cluster.glob("*/proxy/nodes/*/*/proxy_stats.json")]
    assert sum(c["requests"] for c in counters) > 0  # the tasks went through the node's; read back too:
    assert list(Path(state["launcher.aime2025"]["folder"]).parent.glob("proxy/nodes/*/*/proxy_stats.json"))
    # Auto-export ran on the cluster once, after the resumed array: the kill cancelled the first one.
    (remote_folder,) = cluster.glob("*")
    wait_for(lambda: (remote_folder / "launcher-results.csv").is_file(), timeout=60, what="the export job")
    wait_for(lambda: "auto-exported" in (remote_folder / "logs/export.log").read_text(), what="export.log")
    log = (remote_folder / "logs/export.log").read_text()
    assert log.count("auto-exported to local") == 1 and "warning" not in log, log
    jobs(cli, inv)  # reads the folder back
    assert (Path(state["launcher.aime2025"]["folder"]).parent / "launcher-results.csv").is_file()
    assert "task gsm8k_cot_zeroshot" in cli("logs", f"{inv}.0", check_rc=0).stdout  # the harness's name


def test_over_ssh_a_failing_task_shows_its_reason(cli, tmp_path, ssh_login, test_image):
    cfg = {
        "defaults": [{"execution": "slurm"}, "_self_"],
        "execution": {
            "output_dir": str(tmp_path / "out"),
            "remote_output_dir": str(tmp_path / "cluster"),
            **ssh_login,
        },
        "target": {"api_endpoint": {"url": "http://127.0.0.1:9/v1", "model_id": "m"}},
        "evaluation": {"tasks": [task("bad", "fail")]},
    }
    (tmp_path / "cfg.yaml").write_text(json.dumps(cfg))
    proc = cli("--config-dir", str(tmp_path), "--config-name", "cfg", "--wait")
    assert proc.returncode == 1
    job = jobs(cli, invocation_of(proc))["bad"]
    assert job["state"] == "FAILED" and job["exit_code"] == 3 and job["reason"] == "boom: failing on purpose"


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


def test_time_limit_shows_failed_with_slurms_reason(cli, tmp_path, slurm_cluster, test_image):
    """Slurm ends the element at its time limit (a minute, Slurm's smallest): FAILED, saying why."""
    inv = invocation_of(
        cli(
            *config(tmp_path, [task("slow", "sleep")], time_limit="00:01:00"),
            env={"SLURM_TEST_KEY": "k"},
            check_rc=0,
        )
    )
    wait_for(
        lambda: jobs(cli, inv)["slow"]["state"] not in ("PENDING", "RUNNING"),
        timeout=180,
        what="the time limit",
    )
    # run.sh records the 143 its stopped container gave at once; Slurm's TIMEOUT may reach squeue/sacct
    # a moment later (until then the reason is the signal's): FAILED throughout, then Slurm's reason.
    seen = []
    wait_for(
        lambda: (
            seen.append(jobs(cli, inv)["slow"]) or seen[-1]["reason"].startswith("hit the Slurm time limit")
        ),
        timeout=60,
        what="Slurm's TIMEOUT in status",
    )
    assert {job["state"] for job in seen} == {"FAILED"}, seen


def test_over_ssh_a_wrong_launcher_python_is_one_line_before_submitting(cli, tmp_path, ssh_login, test_image):
    cfg = {
        "defaults": [{"execution": "slurm"}, "_self_"],
        "execution": {
            "output_dir": str(tmp_path / "out"),
            "remote_output_dir": str(tmp_path / "cluster"),
            "launcher_python": "/nonexistent/bin/python",
            **ssh_login,
        },
        "target": {"api_endpoint": {"url": "http://127.0.0.1:9/v1", "model_id": "m"}},
        "evaluation": {"tasks": [task("a", "ok")]},
    }
    (tmp_path / "cfg.yaml").write_text(json.dumps(cfg))
    proc = cli("--config-dir", str(tmp_path), "--config-name", "cfg")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: execution.launcher_python: /nonexistent/bin/python on ")
    assert "cannot import launcher.proxy.server (" in proc.stderr
    assert not (tmp_path / "cluster").exists()  # nothing was copied or submitted


def test_a_pyxis_step_gets_only_the_task_variables_not_the_jobs(tmp_path, slurm_cluster):
    """pyxis sets every variable of its step in the container. No enroot/pyxis here, so the mechanism runs
    for real without them: run.sh as rendered for pyxis, its srun line less the --container-* options
    (pyxis's; this srun does not know them) and with `env` as the task's command, in a real step of a real
    job whose environment (sbatch exports the submitting one) holds a secret no task names."""
    from launcher.executors.container.render import ContainerSpec, render_run_sh
    from launcher.executors.slurm.pyxis import PYXIS, PYXIS_STEP_NAMES

    spec = ContainerSpec(
        job_id="inv.0",
        task="t",
        folder="t",
        name="c",
        image="launcher-harness:0.1.0",
        command=("env",),
        env_from_host={"TASK_KEY": "HOST_KEY"},
        env={"LITERAL": "a b"},
        network="host",
        user=None,
        extra_args=(),
    )
    script = render_run_sh(spec, "inv", str(tmp_path), launch=PYXIS)
    assert re.search(r" --container-image=\S+ ", script)
    (tmp_path / "t/logs").mkdir(parents=True)
    (tmp_path / "t/run.sh").write_text(re.sub(r" '?--(no-)?container-[^ ]*", "", script))
    secret = f"hf-{os.urandom(6).hex()}"
    env = {**os.environ, "HOST_KEY": "host-value", "HF_TOKEN": secret, "TERM": "dumb"}
    subprocess.run(
        ["sbatch", "--wait", "--time=00:05:00", f"--output={tmp_path}/job.out", "--wrap",
         f"cd {tmp_path} && bash t/run.sh; srun --ntasks=1 env > all.env"],
        env=env, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    output = (tmp_path / "t/logs/output.log").read_text()
    step = dict(re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", output, re.M))  # env's lines, not run.sh's
    assert step["TASK_KEY"] == "host-value" and step["LITERAL"] == "a b" and step["TERM"] == "dumb"
    own = {n for n in step if n.startswith("SLURM") or n == "TMPDIR"}  # Slurm's own (srun --export)
    wanted = {"TASK_KEY", "LITERAL"} | {n for n in PYXIS_STEP_NAMES if n in env}
    assert set(step) - own == wanted
    assert secret not in output
    # The same job's default step (srun --export=ALL) gets it: without --export the test above fails.
    assert f"HF_TOKEN={secret}" in (tmp_path / "all.env").read_text().splitlines()
