"""The local executor with real containers (tests/images/testtask) and the real CLI."""

import hashlib
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import invocation_of, jobs, labelled_containers, task, wait_for, write_config

from launcher.testing.contract import ExecutorContract

pytestmark = pytest.mark.docker


def config(tmp_path, tasks, env_vars=None, api_key=None, **execution):
    return write_config(tmp_path, "local", tasks, env_vars, api_key, **execution)


@pytest.fixture(autouse=True)
def _image(test_image):
    return test_image


def test_success_and_failure_with_exit_code_and_reason(cli, tmp_path, docker_engine):
    args = config(tmp_path, [task("good", "ok"), task("bad", "fail")])
    proc = cli(*args, "--wait")
    assert proc.returncode == 1, proc.stderr  # --wait: non-zero because a task failed
    inv = invocation_of(proc)
    state = jobs(cli, inv)
    assert state["good"]["state"] == "SUCCEEDED" and state["good"]["done"] == 3
    assert state["bad"]["state"] == "FAILED" and state["bad"]["exit_code"] == 3
    assert state["bad"]["reason"] == "boom: failing on purpose"
    assert labelled_containers(docker_engine, inv) == []
    table = cli("status", inv, check_rc=0).stdout
    assert "SUCCEEDED" in table and "FAILED" in table and "boom: failing on purpose" in table
    folder = Path(state["good"]["folder"]).parent
    assert folder.parent == tmp_path / "out" and folder.name.endswith(inv)
    for rel in (
        "run_all.sh",
        "invocation.json",
        ".hydra/config.yaml",
        ".hydra/overrides.yaml",
        "good/run.sh",
    ):
        assert (folder / rel).is_file(), rel
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    # The saved config names its executor: NEL's way to rerun it, raw mode, plans the same tasks the same way.
    again = cli(
        "run", "-n", "--config-mode", "raw", "--config", str(folder / ".hydra/config.yaml"), check_rc=0
    )
    planned = [line[7:] for line in again.stdout.splitlines() if line.startswith("# ---- ")]
    assert {"run_all.sh", "good/run.sh", "bad/run.sh"} <= set(planned)
    assert all((folder / rel).is_file() for rel in planned), planned  # the files this run wrote
    # results are owned by the invoking user, whatever the container image's user
    assert (folder / "good/results/progress.json").stat().st_uid == os.getuid()
    assert "good" in cli("logs", f"{inv}.0", check_rc=0).stdout


def test_kill_reaches_the_harness_with_sigterm(cli, tmp_path, docker_engine):
    proc = cli(*config(tmp_path, [task("slow", "sleep"), task("later", "ok")], max_parallel=1), check_rc=0)
    inv = invocation_of(proc)
    wait_for(lambda: jobs(cli, inv)["slow"]["state"] == "RUNNING", what="RUNNING")
    cli("kill", inv, check_rc=0)
    state = jobs(cli, inv)
    assert state["slow"]["state"] == "KILLED" and state["later"]["state"] == "KILLED"
    assert state["later"]["reason"] == "killed before it started"
    assert (Path(state["slow"]["folder"]) / "results/sigterm").read_text() == "got SIGTERM\n"
    wait_for(lambda: labelled_containers(docker_engine, inv) == [], timeout=20, what="containers removed")
    time.sleep(1)  # nothing may start after a kill
    assert jobs(cli, inv)["later"]["state"] == "KILLED"


def test_resume_skips_succeeded_tasks_and_appends_logs(cli, tmp_path):
    proc = cli(*config(tmp_path, [task("good", "ok"), task("bad", "fail")]), "--wait")
    inv = invocation_of(proc)
    proc = cli("resume", inv, "--wait")
    assert proc.returncode == 1
    state = jobs(cli, inv)
    good, bad = Path(state["good"]["folder"]), Path(state["bad"]["folder"])
    assert (good / "results/attempts.log").read_text().count("ok") == 1  # not re-run
    assert (bad / "results/attempts.log").read_text().count("fail") == 2
    assert (bad / "logs/output.log").read_text().count("=== ") == 2  # appended, not overwritten
    # `bash run_all.sh` by hand is the same resume
    subprocess.run(["bash", str(good.parent / "run_all.sh")], check=False, capture_output=True)
    assert (good / "results/attempts.log").read_text().count("ok") == 1
    assert (bad / "results/attempts.log").read_text().count("fail") == 3


def test_endpoint_on_localhost_is_reachable_from_the_container(cli, tmp_path):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"hello from the host")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/"
        proc = cli(*config(tmp_path, [task("net", "http", url)]), "--wait", check_rc=0)
    finally:
        server.shutdown()
    folder = Path(jobs(cli, invocation_of(proc))["net"]["folder"])
    assert (folder / "results/http.txt").read_text() == "hello from the host"


def test_secret_value_is_never_written(cli, tmp_path, docker_engine, isolated_state):
    secret = f"sk-unique-{os.urandom(8).hex()}"
    env = {"MY_SECRET_KEY": secret, "OTHER_SECRET": secret + "-2"}
    args = config(tmp_path, [task("s", "sleep")], env_vars={"EXTRA": "OTHER_SECRET"}, api_key="MY_SECRET_KEY")
    outputs = [cli(*args, "-n", env=env, check_rc=0), cli(*args, env=env, check_rc=0)]
    inv = invocation_of(outputs[-1])
    wait_for(lambda: jobs(cli, inv)["s"]["state"] == "RUNNING", what="RUNNING")
    (container,) = labelled_containers(docker_engine, inv)
    assert secret not in json.dumps(container.labels)
    assert secret not in " ".join(container.attrs["Config"]["Cmd"] or [])
    outputs += [cli(v, *rest, env=env) for v, *rest in (("status", inv), ("info", inv), ("ls", "runs"))]
    cli("kill", inv, env=env, check_rc=0)
    outputs.append(cli("logs", f"{inv}.0", env=env))
    folder = Path(jobs(cli, inv)["s"]["folder"])
    digests = json.loads((folder / "results/env.json").read_text())
    # the endpoint proxy holds the key; the task container's API_KEY is only the proxy's credential
    assert digests["API_KEY"] != hashlib.sha256(secret.encode()).hexdigest()
    assert digests["EXTRA"] == hashlib.sha256((secret + "-2").encode()).hexdigest()
    for proc in outputs:
        assert secret not in proc.stdout + proc.stderr
    scanned = 0
    for root in (tmp_path / "out", isolated_state):
        for path in root.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path
                scanned += 1
    assert scanned > 8


def test_docker_unreachable_is_one_line_and_writes_nothing(cli, tmp_path):
    args = config(tmp_path, [task("t", "ok")])
    proc = cli(*args, env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "Docker engine is not reachable" in proc.stderr and "dockerd" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_missing_image_is_one_line_and_writes_nothing(cli, tmp_path):
    missing = {"name": "t", "container": "launcher-no-such-image:0", "command": ["true"]}
    proc = cli(*config(tmp_path, [missing], pull="never"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "image launcher-no-such-image:0 is not on this machine" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_harness_image_missing_names_the_build_command(tmp_path):
    from launcher.errors import LauncherError
    from launcher.executors.container.docker_client import Docker

    with pytest.raises(LauncherError, match="build it with `make image`"):
        Docker().ensure_image("launcher-harness:0.0.0-missing", "build it with `make image`")


def test_unset_host_variable_is_named_and_nothing_is_written(cli, tmp_path):
    proc = cli(*config(tmp_path, [task("t", "ok")], env_vars={"TOKEN": "SURELY_UNSET_VAR_1234"}))
    assert proc.returncode == 2
    assert "host environment variable SURELY_UNSET_VAR_1234 is not set" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_twenty_concurrent_launches_get_distinct_folders(cli, tmp_path, isolated_state):
    args = config(tmp_path, [task("t", "ok")])
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "launcher", *args], stdout=subprocess.PIPE, text=True, env=env
        )
        for _ in range(20)
    ]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 20, outs
    ids = {
        ln.split()[1].rstrip(":") for out in outs for ln in out.splitlines() if ln.startswith("invocation ")
    }
    assert len(ids) == 20
    assert len([p for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")]) == 20
    index = (isolated_state / "index.jsonl").read_text().splitlines()
    assert len(index) == 20 and {json.loads(line)["id"] for line in index} == ids
    listed = json.loads(cli("ls", "runs", "--json", check_rc=0).stdout)
    assert {r["invocation"] for r in listed} == ids


def test_dead_scripts_show_lost_not_running(cli, tmp_path, docker_engine):
    inv = invocation_of(cli(*config(tmp_path, [task("s", "sleep")]), check_rc=0))
    wait_for(lambda: jobs(cli, inv)["s"]["state"] == "RUNNING", what="RUNNING")
    folder = Path(jobs(cli, inv)["s"]["folder"]).parent
    run_all_pid = int((folder / "events.log").read_text().split()[2])
    os.killpg(run_all_pid, signal.SIGKILL)  # the scripts die without an exit record...
    for container in labelled_containers(docker_engine, inv):
        container.kill()  # ...and so does the container
    wait_for(lambda: jobs(cli, inv)["s"]["state"] == "LOST", timeout=20, what="LOST")
    assert "ended without an exit record" in jobs(cli, inv)["s"]["reason"]
    # resume continues it
    cli("resume", inv, check_rc=0)
    wait_for(lambda: jobs(cli, inv)["s"]["state"] == "RUNNING", what="RUNNING again")
    cli("kill", inv, check_rc=0)


def test_multirun_sweep_is_one_status(cli, tmp_path):
    args = config(tmp_path, [task("a", "ok"), task("b", "ok")])
    proc = cli(*args, "-m", "evaluation.only=a,b", check_rc=0)
    invs = [ln.split()[1].rstrip(":") for ln in proc.stdout.splitlines() if ln.startswith("invocation ")]
    sweep = next(ln.split()[-1] for ln in proc.stdout.splitlines() if "sweep:" in ln)
    assert len(invs) == 2
    folders = {Path(p).parent for p in (tmp_path / "out").glob("sweep-*/*")}
    assert len(folders) == 1
    wait_for(lambda: {j["state"] for j in jobs(cli, sweep).values()} == {"SUCCEEDED"}, what="sweep done")
    assert set(jobs(cli, sweep)) == {"a", "b"}


class TestLocalExecutorContract(ExecutorContract):
    @property
    def executor_class(self):
        from launcher.executors.local import LocalExecutor

        return LocalExecutor

    def tasks(self):
        return [task("first", "sleep"), task("second", "ok")]

    @pytest.fixture(autouse=True)
    def _needs_docker(self, test_image):
        return test_image


def test_kill_after_the_folder_was_deleted_still_stops_the_containers(cli, tmp_path, docker_engine):
    """L9: the labelled containers of a running invocation are stopped even when its folder is gone. The
    folder is moved away (not deleted): a deleted bind-mount source makes the task itself fail within
    half a second, which would race the kill; a moved one keeps it running, as a user's `mv` would."""
    import shutil

    inv = invocation_of(cli(*config(tmp_path, [task("s", "sleep")]), check_rc=0))
    wait_for(
        lambda: any(c.status == "running" for c in labelled_containers(docker_engine, inv)),
        60,
        "container runs",
    )
    folder = json.loads(cli("status", inv, "--json", check_rc=0).stdout)[0]["folder"]
    shutil.move(folder, tmp_path / "moved-away")
    proc = cli("kill", inv, check_rc=0)
    assert "folder is gone; stopped 1 container" in proc.stdout
    wait_for(lambda: not labelled_containers(docker_engine, inv), 60, "containers gone")


def test_two_resumes_at_once_start_the_task_once(cli, tmp_path, docker_engine):
    """M3: the second of two concurrent resumes says the invocation is already running; one container."""
    inv = invocation_of(cli(*config(tmp_path, [task("s", "sleep")]), check_rc=0))
    wait_for(lambda: jobs(cli, inv)["s"]["state"] == "RUNNING", what="RUNNING")
    cli("kill", inv, check_rc=0)
    wait_for(lambda: labelled_containers(docker_engine, inv) == [], timeout=30, what="containers removed")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    resumes = [
        subprocess.Popen(
            [sys.executable, "-m", "launcher", "resume", inv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for _ in range(2)
    ]
    results = [(p.wait(timeout=60), p.stderr.read().decode()) for p in resumes]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    assert any("already being started" in err or "still running" in err for _, err in results), results
    wait_for(lambda: jobs(cli, inv)["s"]["state"] == "RUNNING", what="RUNNING again")
    assert len([c for c in labelled_containers(docker_engine, inv) if c.status == "running"]) == 1
    cli("kill", inv, check_rc=0)
