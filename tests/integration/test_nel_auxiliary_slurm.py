"""A NEL 0.2.6 `auxiliary_deployments` judge for real on the test Slurm cluster (one node, so the judge
shares it: `num_nodes: 0`): the element starts the model server, then the judge in an srun step, waits for
both, runs GSM8K against the model and stops both servers."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from helpers import free_port, invocation_of, labelled_containers, unavailable
from test_nel_deployment import GSM8K, LLAMA_COMMAND, llama_image  # noqa: F401  (fixture)

pytestmark = pytest.mark.docker


def test_judge_server_in_the_allocation_on_slurm(cli, tmp_path, docker_engine, harness_image, llama_image):  # noqa: F811
    sinfo = (
        subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
        if shutil.which("sinfo")
        else None
    )
    if not (sinfo and sinfo.returncode == 0 and any(s in sinfo.stdout for s in ("idle", "mix", "alloc"))):
        unavailable("no Slurm cluster answers", "make test starts one with scripts/ensure-slurm.sh")
    port, judge_port = free_port(), free_port()
    server = {
        "image": llama_image,
        "served_model_name": "smollm2-135m-instruct",
        "port": port,
        "command": LLAMA_COMMAND,
        "endpoints": {"health": "/v1/models"},
    }
    judge_command = LLAMA_COMMAND.replace("${deployment.port}", str(judge_port)).replace(
        "${deployment.served_model_name}", "judge"
    )
    config = {
        "defaults": [
            {"execution": "slurm"},
            {"deployment": "generic"},
            "deployment/generic@auxiliary_deployments.judge",  # NEL's spelling
            "_self_",
        ],
        "execution": {"output_dir": str(tmp_path / "out"), "walltime": "00:10:00"},
        "deployment": server,
        "auxiliary_deployments": {
            "judge": {
                **server,
                "served_model_name": "judge",
                "port": judge_port,
                "command": judge_command,
                "num_nodes": 0,
                "endpoints": {"chat": "/v1/chat/completions", "health": "/v1/models"},
            }
        },
        "evaluation": {
            "nemo_evaluator_config": {"config": {"params": {"limit_samples": 2, "max_new_tokens": 32}}},
            "tasks": [{"name": GSM8K}],
        },
    }
    path = tmp_path / "nel_slurm_judge.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = cli("run", "--config", str(path), "--wait", timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    inv = invocation_of(proc)
    (job,) = json.loads(cli("status", inv, "--json", check_rc=0).stdout)[0]["jobs"]
    assert job["state"] == "SUCCEEDED" and job["done"] == 2
    task_dir = Path(job["folder"])
    assert "GET /v1/models" in (task_dir / "logs/judge.log").read_text()  # its health check, in its log
    assert "GET /v1/models" in (task_dir / "logs/server.log").read_text()
    assert labelled_containers(docker_engine, inv) == []
