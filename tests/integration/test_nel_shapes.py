"""NEL 0.2.6 configs run unchanged: our own configs in every shape NEL's examples use (tests/nel_shapes/),
each dry-run with ours as a NEL user would (`launcher run --config FILE -n`, nothing filled in, relative
paths and `${oc.env:USER}` as written) and with NEL 0.2.6 itself (its venv: test_nel_parity.nel_venv), and
compared: the same container images and, task by task, the same config_ef.yaml (NEL's `metadata` aside,
a record of its own resolved config and versions). The Slurm shapes' hosts do not exist: a dry run
contacts nothing.

Compared with our endpoint proxy off: NEL has none, so its containers get the endpoint directly (behind
ours, config_ef.yaml names the proxy's URL and turns on progress tracking: test_nel_parity checks those
two additions). Images: the same, but the auto-export step's, which differs on purpose: NEL 0.2.6 runs
it in `python:3.12.7-slim` and pip-installs itself there at run time (from a package index); ours runs
from our tools image (launcher_image), built offline.
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
from test_nel_parity import NEL_ENV, nel  # noqa: F401  (the fixture)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "checks"))
from test_nel_examples import compose  # noqa: E402

from launcher.catalog import TOOLS_IMAGE  # noqa: E402
from launcher.config import legacy  # noqa: E402
from launcher.config.boundary import to_run_spec, user_missing_keys  # noqa: E402
from launcher.executors import registry  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[2]
SHAPES = sorted((ROOT / "tests/nel_shapes").glob("*.yaml"))
NEL_EXPORT_IMAGE = "python:3.12.7-slim"  # NEL 0.2.6 executors/slurm/executor.py: its export step's image
# The host variables the shapes name (values: nobody reads them in a dry run; NEL's wants them set).
HOST = {"USER": "someone", "SHAPE_API_KEY": "x", "SHAPE_HF_TOKEN": "x", "SHAPE_NGC_KEY": "x"}
CONFIG_RE = re.compile(r'echo "([A-Za-z0-9+/=]+)" \| base64 -d > config_ef\.yaml')
SLURM_JOB = re.compile(r"^#SBATCH --job-name \S*?nemo-evaluator-launcher\.(\S+)\.(\d+)$", re.M)
LOCAL_IMAGE_LINE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._/-]*:[A-Za-z0-9._-]+)\s*\\$", re.M)


def config_ef(encoded: str) -> dict:
    config = yaml.safe_load(base64.b64decode(encoded))
    config.pop("metadata", None)
    return config


def theirs(nel, shape: Path, work: Path) -> dict:  # noqa: F811
    """NEL 0.2.6's dry run of the file: {"images": set, "configs": {task index: config_ef}}."""
    proc = subprocess.run(
        [str(nel / "nemo-evaluator-launcher"), "run", "--config", str(shape), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **NEL_ENV, **HOST},
        cwd=work,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    configs, images = {}, set()
    if "#SBATCH" in proc.stdout:  # Slurm: the scripts are printed, one per task
        scripts = re.split(r"^#!/bin/bash$", proc.stdout, flags=re.M)[1:]
        for script in scripts:
            job = SLURM_JOB.search(script)
            if job is None:  # the export job's script, written by the task's
                continue
            configs[int(job[2])] = config_ef(CONFIG_RE.search(script)[1])
        images = set(re.findall(r"--container-image (\S+)", proc.stdout))
    else:  # local: run.sh files under output_dir, one folder per task: <name>.<index>
        for run_sh in work.glob("*/*/*/run.sh"):
            text = run_sh.read_text()
            configs[int(run_sh.parent.name.rsplit(".", 1)[1])] = config_ef(CONFIG_RE.search(text)[1])
            for block in re.split(r"^\s*docker run ", text, flags=re.M)[1:]:
                images.add(LOCAL_IMAGE_LINE.search(block)[1])
    return {"images": images - {NEL_EXPORT_IMAGE}, "configs": configs}


def ours(shape: Path, monkeypatch) -> dict:
    """Our plan of the same file, as `launcher run --config` composes it, with the endpoint proxy off."""
    for k, v in HOST.items():
        monkeypatch.setenv(k, v)
    choice, data = compose(shape)
    data["target"]["api_endpoint"]["proxy"] = False
    # NEL always names NVIDIA's images; ours runs a local build instead when NVIDIA's is absent and ours
    # is built (test_offline_choice.py), which on this machine it is: compare NVIDIA's choice with NEL's.
    data["execution"]["catalog_images"] = "nvidia"
    missing = user_missing_keys(yaml.safe_load(shape.read_text()))
    executor = legacy.executor_name(choice)
    cls = registry.get(executor)
    spec = to_run_spec(data, executor, cls.config_class, missing_keys=missing)
    folder = f"{os.path.abspath(os.path.expanduser(spec.execution.output_dir))}/inv"
    plan = cls(spec.execution).plan(spec, "0000abcd", folder, 1767225600.0)
    configs = {
        n: yaml.safe_load(plan.files[f"{job.folder}/results/config_ef.yaml"])
        for n, job in enumerate(plan.jobs)
    }
    for config in configs.values():
        config.pop("metadata", None)
    images = {job.image for job in plan.jobs} | set(plan.images)
    return {"images": images - {TOOLS_IMAGE}, "configs": configs, "plan": plan, "spec": spec}


@pytest.mark.parametrize("shape", SHAPES, ids=[s.stem for s in SHAPES])
def test_a_nel_shaped_config_dry_runs_unchanged_with_nel_s_images_and_config_ef(
    shape,
    nel,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    env = {**os.environ, **HOST, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "launcher", "run", "--config", str(shape), "-n"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("# dry run: nothing was written or started")
    assert not any(tmp_path.iterdir())  # nothing written
    (tmp_path / "nel").mkdir()
    want = theirs(nel, shape, tmp_path / "nel")
    got = ours(shape, monkeypatch)
    assert got["images"] == want["images"]
    assert len(got["configs"]) == len(want["configs"]) > 0
    assert got["configs"] == want["configs"]
    if got["spec"].executor == "slurm":  # nothing of ours on the cluster: the tools image, by default
        assert "# checked at submit: sbatch, squeue and scancel on " in proc.stdout
        assert f"{TOOLS_IMAGE} python3 -m launcher.proxy" in proc.stdout
        assert "launcher_python" not in proc.stdout.split("# invocation folder:")[1]


def test_the_shapes_cover_what_nel_s_examples_use():
    """Each deployment type, Slurm with and without auxiliary deployments, multi-node and multi-instance,
    HF cache mounts given relative, auto-export, task-level nemo_evaluator_config, bare and qualified."""
    texts = {s.stem: s.read_text() for s in SHAPES}
    data = {k: yaml.safe_load(v) for k, v in texts.items()}
    deployments = {
        next(d["deployment"] for d in c["defaults"] if isinstance(d, dict) and "deployment" in d)
        for c in data.values()
    }
    assert deployments >= {"none", "vllm", "sglang", "nim", "trtllm", "generic", "vllm_ray"}
    slurm = [c for c in data.values() if {"execution": "slurm/default"} in c["defaults"]]
    assert any("auxiliary_deployments" in c for c in slurm) and any(
        "auxiliary_deployments" not in c for c in slurm
    )
    assert any(c["execution"].get("num_instances", 1) > 1 for c in slurm)
    assert any(
        c["execution"].get("num_nodes", 1) > 1 and "num_instances" not in c["execution"] for c in slurm
    )
    assert any("./hf_cache" in (c["execution"].get("mounts") or {}).get("evaluation", {}) for c in slurm)
    assert sum("auto_export" in c["execution"] for c in data.values()) >= 2
    tasks = [t for c in data.values() for t in c["evaluation"]["tasks"]]
    assert any("nemo_evaluator_config" in t for t in tasks)
    assert any("." not in t["name"] for t in tasks) and any("." in t["name"] for t in tasks)
