"""The Slurm shapes of tests/nel_shapes/ submitted for real on the test cluster (one node, 2 cores, no GPU,
no registry), all at once, each as a NEL user would run it: `launcher run --config FILE -o ... --wait`,
with nothing of ours on the cluster (no `execution.launcher_python`: the endpoint proxy runs from the
tools image through the tasks' docker). The files are unchanged; the `-o` overrides are the same for every
shape unless listed below:

- placeholders a user fills: `execution.hostname=null` (the login node is this machine),
  `execution.output_dir`, `execution.partition=debug` (the cluster's one partition), the checkpoint
  folder (`deployment.checkpoint_path`, where a shape names one), a free `deployment.port`;
- images that cannot be pulled here: every server (vLLM, SGLang, NIM, generic, vLLM+Ray) runs
  `launcher-testtask:1` with `deployment.command` starting nel_fakes/model_server.py (mounted by
  `execution.mounts.deployment`), a stand-in OpenAI server; every task's NVIDIA harness image is replaced
  through `evaluation.harness_images` by `launcher-testtask:1`, where nel_fakes/nemo-evaluator (mounted
  at /usr/local/bin by `execution.mounts.evaluation`) takes NEL's `nemo-evaluator run_eval` command, reads
  the config_ef.yaml the launcher rendered and sends `limit_samples` requests to the endpoint it names;
- `evaluation.nemo_evaluator_config.config.params.limit_samples=2` (a few samples each) and
  `target.api_endpoint.api_key_name=SHAPE_API_KEY` (a key, to show no task container gets it);
- what the cluster cannot satisfy: `execution.gres=null` (no GPUs: no `--gpus-per-node`, and so no
  `--gpus all` for the server); `execution.max_parallel=1`, one task's array element at a time: each
  element starts its own server on the deployment's port, which on a real cluster are different nodes
  (`--exclusive`) but here one node (the partition's OverSubscribe=FORCE shares it); the two-node
  shapes on one node, `execution.num_nodes=1` (slurm_multinode_dp, slurm_ray_tp_pp; with the stand-in's
  command, slurm_ray_tp_pp starts no Ray cluster); the judge on the model's node,
  `auxiliary_deployments.judge.num_nodes=0` (slurm_judge, with its own port and the same stand-in);
  slurm_sglang_auto_export's MLflow `tracking_uri` on 127.0.0.1 (no traffic leaves this machine).

Its auto-export job is checked to run after the array from the tools image, not to reach MLflow: the
tools image has no mlflow package, so it logs `--dest mlflow needs the mlflow package` (a known gap).

Not submitted: slurm_instances_haproxy. Its two instances need one node each (num_nodes must be a
multiple of num_instances), and its load balancer is the `haproxy:latest` image, which this machine does
not have. Its sbatch.sh is checked by test_nel_shapes (dry run) and tests/unit/test_server_instances.py.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import TEST_IMAGE, free_port, invocation_of, jobs, wait_for
from test_slurm import slurm_cluster  # noqa: F401  (the fixture)

from launcher.catalog import TOOLS_IMAGE

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]
FAKES = Path(__file__).resolve().parent / "nel_fakes"
LIMIT = 2
SUBMITTED = (
    "slurm_generic",
    "slurm_hf_cache",
    "slurm_judge",
    "slurm_multinode_dp",
    "slurm_nim",
    "slurm_ray_tp_pp",
    "slurm_sglang_auto_export",
    "slurm_vllm",
)
NOT_SUBMITTED = {"slurm_instances_haproxy"}  # two nodes and haproxy:latest: see the docstring


def overrides(shape: str, tmp_path: Path) -> list[str]:
    """The `-o` values of one shape (the module docstring says why each is there)."""
    fill = [
        "execution.hostname=null",
        f"execution.output_dir={tmp_path / 'out' / shape}",
        "execution.partition=debug",
        "execution.gres=null",
        "execution.max_parallel=1",
        f"deployment.port={free_port()}",
        f"deployment.image={TEST_IMAGE}",
        "++deployment.command=python3 /fake/model_server.py"
        " ${deployment.port} ${deployment.served_model_name}",
        f"++execution.mounts.deployment={{{FAKES}:/fake}}",
        f"++execution.mounts.evaluation={{{FAKES}/nemo-evaluator:/usr/local/bin/nemo-evaluator}}",
        f"++evaluation.harness_images={{lm-evaluation-harness:'{TEST_IMAGE}',simple_evals:'{TEST_IMAGE}'}}",
        f"++evaluation.nemo_evaluator_config.config.params.limit_samples={LIMIT}",
        "++target.api_endpoint.api_key_name=SHAPE_API_KEY",
    ]
    if shape in ("slurm_vllm", "slurm_generic"):
        fill.append(f"deployment.checkpoint_path={tmp_path / 'checkpoint'}")
    if shape in ("slurm_multinode_dp", "slurm_ray_tp_pp"):
        fill.append("execution.num_nodes=1")
    if shape == "slurm_judge":
        fill += [
            "auxiliary_deployments.judge.num_nodes=0",
            f"auxiliary_deployments.judge.port={free_port()}",
            f"++auxiliary_deployments.judge.image={TEST_IMAGE}",
            "++auxiliary_deployments.judge.command=python3 /fake/model_server.py"
            " ${auxiliary_deployments.judge.port} judge",
            f"++execution.mounts.auxiliary.judge={{{FAKES}:/fake}}",
        ]
    if shape == "slurm_sglang_auto_export":
        fill.append(f"export.mlflow.tracking_uri=http://127.0.0.1:{free_port()}")
    return fill


def test_the_slurm_shapes_submit_for_real_with_the_proxy_from_its_image(cli, tmp_path, slurm_cluster):  # noqa: F811
    shapes = sorted(p.stem for p in (ROOT / "tests/nel_shapes").glob("slurm_*.yaml"))
    assert set(shapes) == set(SUBMITTED) | NOT_SUBMITTED  # a new Slurm shape is submitted here too
    home = tmp_path / "home"  # the user's home: NEL's base for the relative ./hf_cache (slurm_hf_cache)
    (home / "hf_cache").mkdir(parents=True)
    (tmp_path / "checkpoint").mkdir()
    secret = f"sk-shape-{os.urandom(6).hex()}"
    auth = hashlib.sha256(f"Bearer {secret}".encode()).hexdigest()  # the proxy adds the key upstream
    env = {
        "HOME": str(home),
        "USER": os.environ.get("USER") or "root",
        "SHAPE_API_KEY": secret,
        "SHAPE_HF_TOKEN": "hf-shape",
        "SHAPE_NGC_KEY": "ngc-shape",
    }

    def submit(shape: str):
        argv = ["run", "--config", str(ROOT / f"tests/nel_shapes/{shape}.yaml")]
        argv += [x for o in overrides(shape, tmp_path) for x in ("-o", o)]
        return cli(*argv, "--wait", env=env, timeout=600)

    with ThreadPoolExecutor(len(SUBMITTED)) as pool:
        procs = dict(zip(SUBMITTED, pool.map(submit, SUBMITTED), strict=True))
    problems = []
    for shape, proc in procs.items():
        if proc.returncode != 0:
            problems.append(f"{shape}: exit {proc.returncode}\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
            continue
        state = jobs(cli, invocation_of(proc))
        folder = Path(next(iter(state.values()))["folder"]).parent
        sbatch = (folder / "sbatch.sh").read_text()
        if f"{TOOLS_IMAGE} python3 -m launcher.proxy" not in sbatch or "launcher_python" in sbatch:
            problems.append(f"{shape}: the proxy does not run from {TOOLS_IMAGE}")
        # the node's proxies (one per start): every task's requests, added up
        counters = [json.loads(p.read_text()) for p in folder.glob("proxy/nodes/*/*/proxy_stats.json")]
        sent = [sum(c[k] for c in counters) for k in ("requests", "upstream_requests")]
        if sent != [LIMIT * len(state)] * 2:
            problems.append(f"{shape}: (proxy requests, upstream) {sent} for {len(state)} task(s)")
        for name, job in state.items():
            task = Path(job["folder"])
            served = (task / "logs/server.log").read_text().count(f" auth {auth}\n")  # with the key
            digests = json.loads((task / "results/env.json").read_text())
            got = (job["state"], served, job["score"])
            if got != ("SUCCEEDED", LIMIT, "score=1.0000"):
                problems.append(f"{shape} {name}: (state, served, score) {got}")
            if "SHAPE_API_KEY" in digests or hashlib.sha256(secret.encode()).hexdigest() in digests.values():
                problems.append(f"{shape} {name}: the task container saw the key")
        for path in folder.rglob("*"):
            if path.is_file() and secret.encode() in path.read_bytes():
                problems.append(f"{shape}: the key is written in {path}")
        if shape == "slurm_judge":
            (task,) = state.values()
            if '"GET /health' not in (Path(task["folder"]) / "logs/judge.log").read_text():
                problems.append(f"{shape}: the judge was not health-checked")
        if shape == "slurm_sglang_auto_export":  # the export job, after the array, from the tools image
            export = (folder / "export.sbatch.sh").read_text()
            if f"{TOOLS_IMAGE} python3 -m launcher.export auto" not in export:
                problems.append(f"{shape}: auto-export does not run from {TOOLS_IMAGE}")
            log = folder / "logs/export.log"
            wait_for(
                lambda log=log: log.is_file() and "auto-export to mlflow" in log.read_text(), 60, "export"
            )
    assert not problems, "\n".join(problems)
