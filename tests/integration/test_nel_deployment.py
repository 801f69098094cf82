"""A NEL 0.2.6-shaped config run for real: the `generic` deployment type serving SmolLM2-135M with our
llama.cpp image (its shell command from a file), a built-in task against it, with NEL's `lit:` variables,
`execution.mounts.evaluation`, `pre_cmd`/`post_cmd` and `nemo_evaluator_config` params."""

import json
from pathlib import Path

import pytest
import yaml
from helpers import free_port, invocation_of, labelled_containers

from launcher.catalog import LLAMA_CPP_IMAGE

pytestmark = pytest.mark.docker
GSM8K = "launcher.gsm8k_cot_zeroshot"  # our built-in (a bare `gsm8k` is NEL's lm-evaluation-harness one)
# NEL's generic `command` is one shell string; Hydra fills the interpolations.
LLAMA_COMMAND = (
    "python3 -m llama_cpp.server --model /models/model.gguf --host 127.0.0.1 --port ${deployment.port}"
    " --model_alias ${deployment.served_model_name} --n_ctx 2048 --n_threads 2"
)


@pytest.fixture(scope="session")
def llama_image(docker_engine):
    try:
        docker_engine.images.get(LLAMA_CPP_IMAGE)
    except Exception:
        pytest.fail(f"{LLAMA_CPP_IMAGE} is missing: `make llama-image` builds it (make test does)")
    return LLAMA_CPP_IMAGE


def test_generic_deployment_with_llama_cpp_end_to_end(
    cli, tmp_path, docker_engine, harness_image, llama_image
):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "note.txt").write_text("from-the-mount\n")
    port = free_port()
    config = {
        "defaults": [{"execution": "local"}, {"deployment": "generic"}, "_self_"],
        "execution": {
            "output_dir": str(tmp_path / "out"),
            "mounts": {"evaluation": {str(shared): "/shared:ro"}},
        },
        "deployment": {
            "image": llama_image,
            "served_model_name": "smollm2-135m-instruct",
            "port": port,
            # NEL's generic `command` is one shell string; Hydra fills the interpolations.
            "command": "python3 -m llama_cpp.server --model /models/model.gguf --host 127.0.0.1"
            " --port ${deployment.port} --model_alias ${deployment.served_model_name}"
            " --n_ctx 2048 --n_threads 2 && echo never-here",
            "endpoints": {"health": "/v1/models"},
            "env_vars": {"OMP_NUM_THREADS": "lit:2"},
        },
        "evaluation": {
            "env_vars": {"MARK": "lit:hello"},
            "pre_cmd": 'cat /shared/note.txt > /results/pre.txt; echo "$MARK" >> /results/pre.txt',
            "post_cmd": "echo post-ran > /results/post.txt",
            "nemo_evaluator_config": {"config": {"params": {"limit_samples": 2, "max_new_tokens": 32}}},
            "tasks": [{"name": GSM8K}],
        },
    }
    path = tmp_path / "nel_generic.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = cli("run", "--config", str(path), "--wait", timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    inv = invocation_of(proc)
    (job,) = json.loads(cli("status", inv, "--json", check_rc=0).stdout)[0]["jobs"]
    assert job["state"] == "SUCCEEDED" and job["done"] == 2
    task_dir = Path(job["folder"])
    results = json.loads((task_dir / "results/results.json").read_text())
    assert results["model_id"] == "smollm2-135m-instruct"  # the target pointed at the server we started
    assert (task_dir / "results/pre.txt").read_text() == "from-the-mount\nhello\n"
    assert (task_dir / "results/post.txt").read_text() == "post-ran\n"
    folder = task_dir.parent
    assert "--model_alias smollm2-135m-instruct" in (folder / "server_cmd.sh").read_text()
    assert "GET /v1/models" in (folder / "logs/server.log").read_text()
    assert labelled_containers(docker_engine, inv) == []


def test_generic_deployment_on_slurm_server_and_task_in_one_allocation(
    cli, tmp_path, docker_engine, harness_image, llama_image
):
    """NEL's Slurm shape on the test cluster: the element starts the llama.cpp server, runs GSM8K against
    it and stops the server."""
    import shutil
    import subprocess

    from helpers import unavailable

    sinfo = (
        subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
        if shutil.which("sinfo")
        else None
    )
    if not (sinfo and sinfo.returncode == 0 and any(s in sinfo.stdout for s in ("idle", "mix", "alloc"))):
        unavailable("no Slurm cluster answers", "make test starts one with scripts/ensure-slurm.sh")
    port = free_port()
    config = {
        "defaults": [{"execution": "slurm"}, {"deployment": "generic"}, "_self_"],
        "execution": {"output_dir": str(tmp_path / "out"), "walltime": "00:10:00"},
        "deployment": {
            "image": llama_image,
            "served_model_name": "smollm2-135m-instruct",
            "port": port,
            "command": LLAMA_COMMAND,
            "endpoints": {"health": "/v1/models"},
        },
        "evaluation": {
            "nemo_evaluator_config": {"config": {"params": {"limit_samples": 2, "max_new_tokens": 32}}},
            "tasks": [{"name": GSM8K}],
        },
    }
    path = tmp_path / "nel_slurm_generic.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = cli("run", "--config", str(path), "--wait", timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    inv = invocation_of(proc)
    (job,) = json.loads(cli("status", inv, "--json", check_rc=0).stdout)[0]["jobs"]
    assert job["state"] == "SUCCEEDED" and job["done"] == 2
    task_dir = Path(job["folder"])
    assert json.loads((task_dir / "results/results.json").read_text())["model_id"] == "smollm2-135m-instruct"
    assert "GET /v1/models" in (task_dir / "logs/server.log").read_text()  # the element's own server log
    assert labelled_containers(docker_engine, inv) == []


def test_kill_signals_the_task_first_then_post_cmd_runs(cli, tmp_path, docker_engine, test_image):
    """pre_cmd/post_cmd around a real container task: `kill` gives the task its SIGTERM and post_cmd runs
    after the task ended (tini signals the group), with the task's own files in place."""
    from helpers import wait_for

    config = {
        "defaults": [{"execution": "local"}, "_self_"],
        "execution": {"output_dir": str(tmp_path / "out")},
        "target": {"api_endpoint": {"url": "http://127.0.0.1:9/v1/chat/completions", "model_id": "m"}},
        "evaluation": {
            "pre_cmd": "echo pre >> /results/order.txt",
            "post_cmd": "test -e /results/sigterm && echo post-after-term >> /results/order.txt",
            "tasks": [
                {
                    "name": "slow",
                    "container": "launcher-testtask:1",
                    "command": ["python3", "/opt/task.py", "sleep"],
                }
            ],
        },
    }
    path = tmp_path / "hooks.yaml"
    path.write_text(yaml.safe_dump(config))
    inv = invocation_of(cli("run", "--config", str(path), check_rc=0))

    def state():
        return json.loads(cli("status", inv, "--json", check_rc=0).stdout)[0]["jobs"][0]

    wait_for(lambda: state()["state"] == "RUNNING" and state()["done"] >= 1, 60, "the task to run")
    cli("kill", inv, check_rc=0)
    job = state()
    assert job["state"] == "KILLED"
    results = Path(job["folder"]) / "results"
    wait_for(
        lambda: (results / "order.txt").exists() and "post" in (results / "order.txt").read_text(), 30, "post"
    )
    assert (results / "order.txt").read_text() == "pre\npost-after-term\n"
