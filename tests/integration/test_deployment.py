"""deployment: a model server container started before the tasks, waited for, and always stopped."""

import json
import time
from pathlib import Path

import pytest
import yaml
from helpers import TEST_IMAGE, free_port, invocation_of, labelled_containers

from launcher.catalog import LLAMA_CPP_IMAGE

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]


def config(tmp_path, deployment, tasks):
    cfg = {
        "defaults": [{"execution": "local"}, "_self_"],
        "execution": {"output_dir": str(tmp_path / "out")},
        "deployment": deployment,
        "target": {
            "api_endpoint": {
                "url": f"http://127.0.0.1:{deployment['port']}/v1/chat/completions",
                "model_id": "m",
            }
        },
        "evaluation": {"tasks": tasks},
    }
    (tmp_path / "cfg.yaml").write_text(json.dumps(cfg))
    return ["--config-dir", str(tmp_path), "--config-name", "cfg"]


def status(cli, inv):
    return json.loads(cli("status", inv, "--json", check_rc=0).stdout)[0]


def labelled(docker_engine, inv):
    return labelled_containers(docker_engine, inv)


def test_packaged_llama_cpp_option_names_the_image_we_build():
    data = yaml.safe_load((ROOT / "launcher/conf/deployment/llama_cpp.yaml").read_text())
    assert data["deployment"]["image"] == LLAMA_CPP_IMAGE


def test_server_is_ready_before_tasks_and_stopped_after(cli, tmp_path, docker_engine, test_image):
    port = free_port()
    server = {
        "type": "server",
        "name": "web",
        "image": TEST_IMAGE,
        "port": port,
        "health_path": "/",
        "command": ["python3", "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        "startup_timeout": 60,
    }
    url = f"http://127.0.0.1:{port}/"
    task = {"name": "probe", "container": TEST_IMAGE, "command": ["python3", "/opt/task.py", "http", url]}
    proc = cli(*config(tmp_path, server, [task]), "--wait")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    inv = invocation_of(proc)
    job = status(cli, inv)["jobs"][0]
    assert job["state"] == "SUCCEEDED"
    folder = Path(job["folder"]).parent
    assert "Directory listing" in (Path(job["folder"]) / "results/http.txt").read_text()
    assert "GET / HTTP" in (folder / "logs/server.log").read_text()  # the server's own log
    deadline = time.monotonic() + 20
    while labelled(docker_engine, inv):
        assert time.monotonic() < deadline, "the server container outlived its invocation"
        time.sleep(0.2)


def test_server_that_dies_fails_the_tasks_with_the_reason(cli, tmp_path, docker_engine, test_image):
    server = {
        "type": "server",
        "image": TEST_IMAGE,
        "port": free_port(),
        "command": ["python3", "-c", "print('cannot load model'); raise SystemExit(3)"],
    }
    task = {"name": "t", "container": TEST_IMAGE, "command": ["python3", "/opt/task.py", "ok"]}
    proc = cli(*config(tmp_path, server, [task]), "--wait")
    assert proc.returncode == 1
    job = status(cli, invocation_of(proc))["jobs"][0]
    assert job["state"] == "FAILED"
    assert job["reason"] == "the model server exited before it was ready; see logs/server.log"
    assert "cannot load model" in (Path(job["folder"]).parent / "logs/server.log").read_text()


def test_kill_stops_the_server_too(cli, tmp_path, docker_engine, test_image):
    port = free_port()
    server = {
        "type": "server",
        "image": TEST_IMAGE,
        "port": port,
        "health_path": "/",
        "command": ["python3", "-m", "http.server", str(port), "--bind", "127.0.0.1"],
    }
    task = {"name": "slow", "container": TEST_IMAGE, "command": ["python3", "/opt/task.py", "sleep"]}
    inv = invocation_of(cli(*config(tmp_path, server, [task]), check_rc=0))
    deadline = time.monotonic() + 60
    while status(cli, inv)["jobs"][0]["state"] != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    cli("kill", inv, check_rc=0)
    assert status(cli, inv)["jobs"][0]["state"] == "KILLED"
    deadline = time.monotonic() + 20
    while labelled(docker_engine, inv):
        assert time.monotonic() < deadline
        time.sleep(0.2)


@pytest.fixture(scope="session")
def llama_image(docker_engine):
    try:
        docker_engine.images.get(LLAMA_CPP_IMAGE)
    except Exception:
        pytest.fail(f"{LLAMA_CPP_IMAGE} is missing: `make llama-image` builds it (make test does)")
    return LLAMA_CPP_IMAGE


def test_real_small_model_end_to_end(cli, tmp_path, docker_engine, harness_image, llama_image):
    """SmolLM2-135M served by llama.cpp: a tiny run whose results exist, with the server stopped after."""
    port = free_port()
    proc = cli(
        "execution=local",
        "deployment=llama_cpp",
        f"deployment.port={port}",
        f"execution.output_dir={tmp_path}/out",
        "evaluation.tasks=[launcher.gsm8k_cot_zeroshot,launcher.hellaswag]",
        "evaluation.params.limit_samples=2",
        "evaluation.params.max_tokens=48",
        "--wait",
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert "results:" in proc.stdout and "artifacts:" in proc.stdout
    inv = invocation_of(proc)
    for job in status(cli, inv)["jobs"]:
        results = json.loads((Path(job["folder"]) / "results/results.json").read_text())
        assert results["model_id"] == "smollm2-135m-instruct"
        assert job["done"] == 2
    assert labelled(docker_engine, inv) == []
