"""A catalogue task named alone runs in the local image of ours built on this machine when NVIDIA's is not
here (launcher.catalog.image_choice), and the dry run, `status --detail` and `ls tasks` say so.

The run uses the shipped simple_evals recipe (`launcher images build simple_evals`); the dry-run and
listing tests use a recipe of their own, in a folder LAUNCHER_IMAGE_RECIPES points at, for a throwaway
image tag, its data cache under LAUNCHER_IMAGE_DATA in tmp_path."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml
from helpers import invocation_of, jobs, unavailable
from test_catalogue_run import RIGHT, gpqa_endpoint, nel_image, slurm_answers  # noqa: F401

from launcher.catalog import builds
from launcher.catalog.nel import resolve_nel

pytestmark = pytest.mark.docker
TASK = "simple_evals.gpqa_diamond"
NVIDIA = resolve_nel(TASK).image
MOUNT = "/data/hf-datasets/Idavidrein___gpqa"
LIMIT = 4  # questions: the endpoint answers RIGHT (3) of them right


def here(image: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode == 0


def recipe_env(tmp_path: Path, image: str) -> dict[str, str]:
    """A simple_evals recipe running gpqa_diamond offline in `image`, its one data cache made current (an
    empty folder with the `.complete` the builder writes last)."""
    folder = tmp_path / "recipes/simple_evals"
    folder.mkdir(parents=True)
    recipe = {
        "harness": "simple_evals",
        "image": image,
        "data": [{"name": "gpqa", "run": "true", "mount": MOUNT}],
        "offline": ["gpqa_diamond"],
        "unavailable": {"browsecomp": "browses the live web"},
    }
    (folder / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    cache = tmp_path / "data/simple_evals" / image.split(":")[1] / "gpqa"  # recipes.Recipe.host_dir
    cache.mkdir(parents=True)
    (cache / builds.COMPLETE).write_text(builds.digest(folder, builds.SHARED))
    return {"LAUNCHER_IMAGE_RECIPES": str(folder.parent), "LAUNCHER_IMAGE_DATA": str(tmp_path / "data")}


def by_name(tmp_path: Path, url: str = "http://127.0.0.1:9/v1/chat/completions", **execution) -> Path:
    """The task by name and nothing else about its image or data."""
    config = {
        "defaults": [{"execution": execution.pop("executor", "local")}, "_self_"],
        "execution": {"output_dir": str(tmp_path / "out"), **execution},
        "target": {"api_endpoint": {"url": url, "model_id": "gpqa-key", "type": "chat"}},
        "evaluation": {
            "nemo_evaluator_config": {"config": {"params": {"limit_samples": LIMIT, "parallelism": 2}}},
            "tasks": [{"name": TASK}],
        },
    }
    path = tmp_path / "by_name.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def throwaway(docker_engine):
    """A small image of ours tagged as if a recipe had built it, removed afterwards."""
    tag = f"launcher-offline-choice-test:{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "tag", "launcher-testtask:1", tag], check=True)
    yield tag
    subprocess.run(["docker", "rmi", tag], capture_output=True)


def test_dry_run_and_ls_tasks_follow_what_docker_has(cli, tmp_path, throwaway):
    if here(NVIDIA):
        pytest.fail(f"{NVIDIA} is on this machine: no registry is reachable here, so something pulled it")
    env = recipe_env(tmp_path, throwaway)
    config = str(by_name(tmp_path))

    out = cli("run", "--config", config, "-n", env=env, check_rc=0).stdout
    (line,) = [ln for ln in out.splitlines() if ln.startswith("# image of ")]
    assert line.endswith(f" {TASK}: {throwaway} (local build: {NVIDIA} not present)"), line
    (run,) = [ln for ln in out.splitlines() if " docker run " in ln]
    cache = tmp_path / "data/simple_evals" / throwaway.split(":")[1] / "gpqa"
    assert f"-v {cache}:{MOUNT}:ro " in run and f" {throwaway} bash -c " in run

    listed = json.loads(cli("ls", "tasks", "simple_evals.", "--json", env=env, check_rc=0).stdout)
    offline = {r["name"]: r["offline"] for r in listed}
    assert (offline[TASK], offline["simple_evals.browsecomp"]) == ("built", "no: browses the live web")
    table = cli("ls", "tasks", "simple_evals.", "--offline", env=env, check_rc=0).stdout
    assert [ln.split()[0] for ln in table.splitlines()[1:]] == [TASK]

    nvidia = cli("run", "--config", config, "-n", "execution.catalog_images=nvidia", env=env, check_rc=0)
    assert f" {TASK}: {NVIDIA} (NVIDIA's catalogue image (execution.catalog_images: nvidia))" in nvidia.stdout

    subprocess.run(["docker", "rmi", throwaway], check=True, capture_output=True)
    out = cli("run", "--config", config, "-n", env=env, check_rc=0).stdout
    assert f"{TASK}: {NVIDIA} (NVIDIA's catalogue image, not present: pulled (no local build: " in out
    assert "not built: `launcher images build simple_evals`" in out
    listed = json.loads(cli("ls", "tasks", TASK, "--json", env=env, check_rc=0).stdout)
    assert listed[0]["offline"] == "buildable: launcher images build simple_evals"

    forced = cli("run", "--config", config, "-n", "execution.catalog_images=local", env=env, check_rc=2)
    assert forced.stderr.count("\n") == 1 and "Traceback" not in forced.stderr
    assert (
        "execution.catalog_images" in forced.stderr and "launcher images build simple_evals" in forced.stderr
    )
    bad = cli("run", "--config", config, "-n", "execution.catalog_images=mine", env=env, check_rc=2)
    assert "execution.catalog_images" in bad.stderr and "auto, nvidia, local" in bad.stderr


def test_ls_tasks_without_docker_says_unknown(cli, tmp_path):
    """No docker command on PATH: the listing still answers, from the recipes alone."""
    env = {**recipe_env(tmp_path, "launcher-offline-choice-test:none"), "PATH": "/nonexistent"}
    listed = json.loads(cli("ls", "tasks", "simple_evals.", "--json", env=env, check_rc=0).stdout)
    offline = {r["name"]: r["offline"] for r in listed}
    assert offline[TASK] == "unknown (no Docker)"
    assert offline["simple_evals.browsecomp"] == "no: browses the live web"
    assert offline["simple_evals.mmlu"] == "no: not prepared to run offline"


@pytest.mark.parametrize("executor", ["local", "slurm"])
def test_a_task_by_name_runs_in_the_local_build(cli, tmp_path, nel_image, gpqa_endpoint, executor):  # noqa: F811
    """simple_evals.gpqa_diamond with no image, mount or offline setting runs in our simple-evals image with
    the GPQA cache mounted from the recipe, scores as the endpoint answered, and status says why that
    image. On Slurm (whose nodes here share this machine's Docker) only catalog_images: local picks it."""
    if executor == "slurm" and not slurm_answers():
        unavailable("no Slurm cluster answers", "make test starts one with scripts/ensure-slurm.sh")
    ep = gpqa_endpoint()
    extra = {"executor": "slurm", "catalog_images": "local"} if executor == "slurm" else {}
    proc = cli("run", "--config", str(by_name(tmp_path, ep.url, **extra)), "--wait", timeout=900)
    inv = invocation_of(proc)
    job = jobs(cli, inv)[TASK]
    assert f"  image:   {job['image']} ({job['image_why']}): 1 task(s)" in proc.stdout  # the start report
    log = (Path(job["folder"]) / "logs/output.log").read_text()
    assert job["state"] == "SUCCEEDED", proc.stdout[-2000:] + log[-3000:]
    assert job["score"] == f"micro={RIGHT / LIMIT:.4f}" and ep.requests == LIMIT
    assert "offline mode is enabled" in log  # datasets read the mounted cache, not the Hub
    why = f"local build: {NVIDIA} not present"
    if executor == "slurm":
        why = "local build (execution.catalog_images: local)"
    assert (job["image"], job["image_why"]) == (nel_image, why)
    detail = cli("status", inv, "--detail", check_rc=0).stdout
    assert f"image of {inv}.0 {TASK}: {nel_image} ({why})" in detail
    assert f"image {nel_image} ({why})" in cli("info", inv, check_rc=0).stdout
    assert (
        json.loads((Path(job["folder"]).parent / "invocation.json").read_text())["jobs"][0]["image_why"]
        == why
    )
    (row,) = json.loads(cli("results", inv, "--format", "json", check_rc=0).stdout)
    assert (row["column"], row["value"]) == (TASK, pytest.approx(RIGHT / LIMIT))
