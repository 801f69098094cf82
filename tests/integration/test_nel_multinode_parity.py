"""Render parity with NEL 0.2.6's own dry run for Slurm deployments beyond one server on one node:
auxiliary_deployments (a judge), num_instances behind HAProxy, vllm_ray across nodes (one instance and two).
The configs are ours, in the shapes of NEL 0.2.6's examples of those features (written here, so CI has
them; `make nel-examples-check` puts NEL's own examples through our boundary where a checkout exists).

Compared: the allocation's node count, each server's image, port and health check, the URL variables the
tasks get and the decoded config_ef.yaml of every task (metadata aside). Not compared, on purpose: the
judge's server command, which NEL 0.2.6 renders from the PRIMARY's values (`deployment/vllm@...` keeps
`${deployment.*}` interpolations: it serves the primary model on the primary's port, then waits for the
judge's port); ours is rendered from the judge's own values, checked here too. Our endpoint proxy is off
here: NEL has none, so its containers get the endpoint directly and so do ours.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import unavailable
from test_nel_parity import NEL_ENV, nel  # noqa: F401  (the fixture)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "checks"))
from test_nel_examples import compose  # noqa: E402

from launcher.config import legacy  # noqa: E402
from launcher.config.boundary import to_run_spec, user_missing_keys  # noqa: E402
from launcher.executors.slurm import SlurmConfig, SlurmExecutor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore")
CONFIG_RE = re.compile(r'echo "([A-Za-z0-9+/=]+)" \| base64 -d > config_ef\.yaml')


SITE = {
    "hostname": "login-node",
    "account": "my-account",
    "output_dir": "/shared/evals",
    "partition": "batch",
}
PARAMS = {
    "parallelism": 32,
    "temperature": 0.6,
    "top_p": 0.95,
    "max_new_tokens": 4096,
    "request_timeout": 900,
}
LOGGING = {"use_request_logging": True, "max_logged_requests": 5}
SHAPES = {
    "judge": {
        "defaults": [
            {"execution": "slurm/default"},
            {"deployment": "vllm"},
            "deployment/vllm@auxiliary_deployments.judge",
            "_self_",
        ],
        "execution": {**SITE, "walltime": "02:00:00", "num_nodes": 1, "mounts": {"mount_home": False}},
        "deployment": {
            "checkpoint_path": None,
            "hf_model_handle": "Qwen/Qwen2.5-7B-Instruct",
            "served_model_name": "qwen-7b",
            "tensor_parallel_size": 4,
            "port": 8000,
        },
        "auxiliary_deployments": {
            "judge": {
                "checkpoint_path": None,
                "hf_model_handle": "meta-llama/Llama-3.3-70B-Instruct",
                "served_model_name": "llama-70b-judge",
                "port": 8123,
                "num_nodes": 1,
            }
        },
        "evaluation": {
            "nemo_evaluator_config": {
                "config": {
                    "params": {
                        **PARAMS,
                        "extra": {
                            "judge": {
                                "url": "auxiliary_deployments.judge.chat_url",
                                "model_id": "auxiliary_deployments.judge.model_id",
                                "temperature": 0.0,
                            }
                        },
                    }
                }
            },
            "tasks": [{"name": "AIME_2025"}],
        },
    },
    "haproxy": {
        "defaults": [{"execution": "slurm/default"}, {"deployment": "vllm"}, "_self_"],
        "execution": {**SITE, "num_nodes": 3, "num_instances": 3, "mounts": {"mount_home": False}},
        "deployment": {
            "checkpoint_path": None,
            "hf_model_handle": "Qwen/Qwen2.5-1.5B-Instruct",
            "served_model_name": "qwen-small",
            "tensor_parallel_size": 2,
            "port": 8000,
            "extra_args": "--max-model-len 8192",
        },
        "evaluation": {
            "nemo_evaluator_config": {
                "config": {"params": PARAMS},
                "target": {"api_endpoint": {"adapter_config": LOGGING}},
            },
            "tasks": [{"name": "gsm8k_cot_instruct"}, {"name": "lm-evaluation-harness.ifeval"}],
        },
    },
}
for name, nodes, instances in (("ray", 2, 1), ("ray_instances", 4, 2)):
    SHAPES[name] = {
        "defaults": [{"execution": "slurm/default"}, {"deployment": "vllm_ray"}, "_self_"],
        "execution": {
            **SITE,
            "num_nodes": nodes,
            "num_instances": instances,
            "mounts": {"mount_home": False},
        },
        "deployment": {
            "image": "vllm/vllm-openai:v0.15.1",
            "checkpoint_path": None,
            "hf_model_handle": "Qwen/Qwen3-235B-A22B",
            "served_model_name": "qwen3-big",
            "tensor_parallel_size": 8,
            "pipeline_parallel_size": 2,
            "port": 8000,
            "extra_args": "--enforce-eager",
        },
        "evaluation": {
            "nemo_evaluator_config": {
                "config": {"params": PARAMS},
                "target": {"api_endpoint": {"adapter_config": LOGGING}},
            },
            "tasks": [{"name": "gsm8k_cot_instruct"}],
        },
    }


def example(name: str, tmp_path: Path) -> Path:
    """One of our NEL-shaped configs as a file, as a NEL user would have it."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(SHAPES[name], sort_keys=False))
    return path


def nel_sbatches(nel, config: Path, tmp_path: Path) -> dict[str, str]:  # noqa: F811
    """NEL's dry run of `config` (Slurm: printed, not written): task name -> its sbatch script."""
    proc = subprocess.run(
        [str(nel / "nemo-evaluator-launcher"), "run", "--config", str(config), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **NEL_ENV, "USER": "someone"},
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    scripts = ["#!/bin/bash" + s for s in re.split(r"^#!/bin/bash$", proc.stdout, flags=re.M)[1:]]
    return {re.search(r"--job-name \S+?\.(\S+)\.\d+$", s, re.M).group(1): s for s in scripts}


def ours(config: Path, monkeypatch):
    monkeypatch.setenv("USER", "someone")
    choice, data = compose(config)
    missing = user_missing_keys(yaml.safe_load(config.read_text()))
    data["target"]["api_endpoint"]["proxy"] = False  # NEL has no endpoint proxy: compare direct endpoints
    spec = to_run_spec(data, legacy.executor_name(choice), SlurmConfig, missing_keys=missing)
    folder = f"{spec.execution.output_dir}/inv"
    return spec, SlurmExecutor(spec.execution).plan(spec, "0000abcd", folder, 1767225600.0)


def nel_config_ef(sbatch: str) -> dict:
    config = yaml.safe_load(base64.b64decode(CONFIG_RE.search(sbatch).group(1)))
    config.pop("metadata", None)
    return config


def test_auxiliary_judge_renders_as_nel_renders_it(nel, tmp_path, monkeypatch):  # noqa: F811
    config = example("judge", tmp_path)
    theirs = nel_sbatches(nel, config, tmp_path)
    spec, plan = ours(config, monkeypatch)
    batch = plan.files["sbatch.sh"]
    judge = spec.auxiliary["judge"]
    assert set(theirs) == {t.name for t in spec.evaluation.tasks}
    for task, sbatch in theirs.items():
        # The allocation: the primary's node(s), then the judge's.
        nodes = re.search(r"#SBATCH --nodes (\d+)", sbatch).group(1)
        assert f"#SBATCH --nodes={nodes}" in batch
        # The judge's image and health check (its own port and path).
        assert re.search(r"--container-image (\S+) .*judge-server", sbatch).group(1) == judge.image
        assert f"http://$ip:{judge.port}{judge.health_path}" in sbatch
        assert f'aux_http_ok "$JUDGE_PRIMARY_NODE" {judge.port} {judge.health_path}' in batch
        assert f" {judge.image} bash -s < " in batch
        # The same URL variables with the same values (and the model id).
        exports = set(re.findall(r'^export (JUDGE_\w+_URL="[^"]+")$', sbatch, re.M))
        assert exports and exports == set(re.findall(r'^export (JUDGE_\w+_URL="[^"]+")$', batch, re.M))
        assert f'JUDGE_MODEL_ID="{judge.served_model_name}"' in sbatch
        assert f"export JUDGE_MODEL_ID={judge.served_model_name}" in batch
        # The task's config_ef.yaml, references resolved the same way (URL filled when the node is known).
        mine = yaml.safe_load(plan.files[f"{task}/results/config_ef.yaml"])
        mine.pop("metadata", None)
        assert mine == nel_config_ef(sbatch)
        assert mine["config"]["params"]["extra"]["judge"]["url"] == "${JUDGE_CHAT_URL}"
    # Ours serves the judge's model on the judge's port (NEL 0.2.6 renders the primary's command there).
    command = plan.files["server_cmd-judge.sh"]
    assert f"--port {judge.port}" in command and f"--served-model-name {judge.served_model_name}" in command


def test_instances_behind_haproxy_render_as_nel_renders_them(nel, tmp_path, monkeypatch):  # noqa: F811
    """Three instances, one per node, HAProxy on the first node (NEL: slurm_vllm_multinode_dp_haproxy)."""
    config = example("haproxy", tmp_path)
    theirs = nel_sbatches(nel, config, tmp_path)
    spec, plan = ours(config, monkeypatch)
    batch, d = plan.files["sbatch.sh"], spec.deployment
    lb = d.load_balancer
    for task, sbatch in theirs.items():
        nodes = re.search(r"#SBATCH --nodes (\d+)", sbatch).group(1)
        assert f"#SBATCH --nodes={nodes}" in batch
        # One server per instance with NEL's command and image, on its own node.
        count = int(re.search(r"for \(\(g=0; g<(\d+); g\+\+\)\)", sbatch).group(1))
        assert count == d.num_instances == batch.count(">> logs/server-") // 2  # its start line, its step
        command = base64.b64decode(
            re.search(r'echo "([A-Za-z0-9+/=]+)" \| base64 -d > deployment_cmd', sbatch)[1]
        )
        assert command.decode().split() == plan.files["server_cmd.sh"].split()
        image = re.search(r"--container-image (\S+) .*server-\$\{g\}", sbatch).group(1)
        assert f" {image} bash -s < " in batch
        assert f"http://$ip:{d.port}{d.health_path}" in sbatch
        # HAProxy: its image, port and health check; the same configuration but for the node addresses.
        assert re.search(r"--container-image (\S+) .*proxy-%A", sbatch).group(1) == lb.image
        assert f"http://$ip:{lb.port}/health" in sbatch
        assert f"aux_http_ok 127.0.0.1 {lb.port} /health" in batch
        # The task's config_ef.yaml: the URL is HAProxy's port, everything else as NEL writes it.
        mine = yaml.safe_load(plan.files[f"{task}/results/config_ef.yaml"])
        mine.pop("metadata", None)
        assert mine == nel_config_ef(sbatch)
        assert mine["target"]["api_endpoint"]["url"] == f"http://127.0.0.1:{lb.port}/v1/chat/completions"


def test_haproxy_configuration_equals_nels(tmp_path):
    """NEL 0.2.6's template rendered by jinja2 (in NEL's venv) with the same values: the same directives."""
    from test_nel_parity import nel_venv

    from launcher.executors.slurm.deployments import haproxy_config

    venv = nel_venv()
    template = next(
        iter(venv.glob("lib/python3*/site-packages/nemo_evaluator_launcher/executors/slurm")), None
    )
    if template is None:
        unavailable(f"NEL 0.2.6 is not installed in {venv}", "make nel-venv")
    script = (
        "import jinja2,sys; t=jinja2.Environment(loader=jinja2.FileSystemLoader(sys.argv[1]))"
        ".get_template('proxy.cfg.template'); print(t.render(haproxy_port=5009, health_check_path='/health',"
        " health_check_status=200, nodes=[{'ip': '{IP_0}', 'port': 8000}, {'ip': '{IP_1}', 'port': 8000}]))"
    )
    theirs = subprocess.run(
        [str(venv / "bin" / "python"), "-c", script, str(template)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    ours = haproxy_config(5009, "/health", 200, [("{IP_0}", 8000), ("{IP_1}", 8000)])

    def directives(text):
        return [" ".join(ln.split()) for ln in text.splitlines() if ln.strip()]

    assert directives(ours) == directives(theirs)


RAY_EXAMPLES = ["ray", "ray_instances"]  # one instance across 2 nodes; 2 instances of 2 nodes


def ray_roles(script: str) -> dict[str, str]:
    """The commands that matter in a vllm_ray server script, NEL's variable names expanded."""
    ports = re.search(r'RAY_FIXED_PORTS="([^"]+)"', script) or re.search(r'ray_ports="([^"]+)"', script)
    text = (
        script.replace("$RAY_FIXED_PORTS", ports[1])
        .replace("$ray_ports", ports[1])
        .replace("$RAY_PORT", "6379")
        .replace("$NODE_PORT", "8266")
        .replace("$OBJ_PORT", "8267")
        .replace('"', "")
    )
    lines = [" ".join(ln.split()) for ln in text.splitlines()]
    return {
        "head": next(ln for ln in lines if ln.startswith("ray start --head")),
        "worker": re.search(
            r"ray start --address=\S+ .*?--block", next(ln for ln in lines if "--address=" in ln)
        )[0],
        "serve": next(ln for ln in lines if ln.startswith("vllm serve")),
    }


@pytest.mark.parametrize("name", RAY_EXAMPLES)
def test_vllm_ray_renders_as_nel_renders_it(nel, tmp_path, monkeypatch, name):  # noqa: F811
    config = example(name, tmp_path)
    theirs = nel_sbatches(nel, config, tmp_path)
    spec, plan = ours(config, monkeypatch)
    batch, d = plan.files["sbatch.sh"], spec.deployment
    for task, sbatch in theirs.items():
        nodes = int(re.search(r"#SBATCH --nodes (\d+)", sbatch).group(1))
        assert f"#SBATCH --nodes={nodes}" in batch
        # Each instance: one srun task per node of the instance, NEL's rank variables passed in.
        per = re.search(
            r"srun --mpi pmix --overlap --nodelist \"\$INSTANCE_NODELIST\" --nodes (\d+) --ntasks", sbatch
        )
        assert batch.count(f"--nodes={per[1]} --ntasks={per[1]} --ntasks-per-node=1") == d.num_instances
        env = re.search(r"--container-env (\S+) bash -c 'export PROC_ID", sbatch)[1].split(",")
        assert {"ALL_NODE_IPS", "MASTER_IP"} <= set(env)
        assert all(f"-e {n}" in batch or f"-e {n}=" in batch for n in env)
        assert "PROC_ID" in batch and f"export NODES_PER_INSTANCE={per[1]}" in batch
        # The server script: the same Ray head, worker and vLLM commands.
        script = base64.b64decode(
            re.search(r'echo "([A-Za-z0-9+/=]+)" \| base64 -d > deployment_cmd', sbatch)[1]
        ).decode()
        assert ray_roles(script) == ray_roles(plan.files["server_cmd.sh"])
        image = re.search(r"--container-image (\S+) .*server-\$\{g\}", sbatch).group(1)
        assert f" {image} bash -s < " in batch
        mine = yaml.safe_load(plan.files[f"{task}/results/config_ef.yaml"])
        mine.pop("metadata", None)
        assert mine == nel_config_ef(sbatch)
