"""Which image a catalogue task runs in, and why (launcher.catalog.image_choice): a table over what is on
the machine, the setting and the scheduler, with a recipe of the test's own (LAUNCHER_IMAGE_RECIPES)."""

from __future__ import annotations

import pytest

from launcher.catalog import image_choice, recipes
from launcher.catalog.nel import resolve_nel
from launcher.errors import ConfigError

NVIDIA = "nvcr.io/nvidia/eval-factory/simple-evals:26.03"
LOCAL = "launcher-nel-simple-evals:26.3-9"
RECIPE = f"""\
harness: simple_evals
image: {LOCAL}
env: {{HF_HUB_OFFLINE: "1", GPQA_FROM: recipe}}
data:
  - {{name: gpqa, run: "true", mount: /data/hf-datasets/Idavidrein___gpqa}}
offline: [gpqa_diamond]
unavailable: {{browsecomp: browses the live web}}
"""
GPQA, BROWSE, MMLU = "simple_evals.gpqa_diamond", "simple_evals.browsecomp", "simple_evals.mmlu"
BUILD = "`launcher images build simple_evals`"


@pytest.fixture(autouse=True)
def recipe(tmp_path, monkeypatch):
    (tmp_path / "recipes/simple_evals").mkdir(parents=True)
    (tmp_path / "recipes/simple_evals/recipe.yaml").write_text(RECIPE)
    monkeypatch.setenv("LAUNCHER_IMAGE_RECIPES", str(tmp_path / "recipes"))
    monkeypatch.setenv("LAUNCHER_IMAGE_DATA", "/cache/data")
    recipes.recipes.cache_clear()
    yield
    recipes.recipes.cache_clear()


BOTH, NV_ONLY, LOCAL_ONLY, NONE = (
    frozenset({NVIDIA, LOCAL}),
    frozenset({NVIDIA}),
    frozenset({LOCAL}),
    frozenset(),
)


@pytest.mark.parametrize(
    ("task", "mode", "present", "here", "image", "why"),
    [
        (GPQA, "auto", BOTH, True, NVIDIA, "NVIDIA's catalogue image, present"),
        (GPQA, "auto", NV_ONLY, True, NVIDIA, "NVIDIA's catalogue image, present"),
        (GPQA, "auto", LOCAL_ONLY, True, LOCAL, f"local build: {NVIDIA} not present"),
        (
            GPQA,
            "auto",
            NONE,
            True,
            NVIDIA,
            f"NVIDIA's catalogue image, not present: pulled (no local build: {LOCAL} not built: {BUILD})",
        ),
        (
            BROWSE,
            "auto",
            LOCAL_ONLY,
            True,
            NVIDIA,
            "NVIDIA's catalogue image, not present: pulled (no local build: browses the live web)",
        ),
        (
            MMLU,
            "auto",
            LOCAL_ONLY,
            True,
            "nvcr.io/nvidia/eval-factory/simple-evals:26.03",
            "NVIDIA's catalogue image, not present: pulled (no local build: not prepared to run offline)",
        ),
        (GPQA, "auto", None, True, NVIDIA, "NVIDIA's catalogue image (Docker did not say what is here)"),
        (
            GPQA,
            "auto",
            LOCAL_ONLY,
            False,
            NVIDIA,
            "NVIDIA's catalogue image (on Slurm execution.catalog_images: local runs the local build)",
        ),
        (
            GPQA,
            "nvidia",
            LOCAL_ONLY,
            True,
            NVIDIA,
            "NVIDIA's catalogue image (execution.catalog_images: nvidia)",
        ),
        (GPQA, "local", BOTH, True, LOCAL, "local build (execution.catalog_images: local)"),
        (GPQA, "local", LOCAL_ONLY, False, LOCAL, "local build (execution.catalog_images: local)"),
        (
            GPQA,
            "local",
            None,
            False,
            LOCAL,
            "local build (execution.catalog_images: local)",
        ),  # SSH: not asked
    ],
)
def test_the_choice(task, mode, present, here, image, why):
    choice = image_choice.choose(resolve_nel(task), mode=mode, present=present, here=here)
    assert (choice.image, choice.why) == (image, why)
    local = image == LOCAL
    assert choice.mounts == (
        {"/cache/data/simple_evals/26.3-9/gpqa": "/data/hf-datasets/Idavidrein___gpqa"} if local else {}
    )
    assert choice.env == ({"HF_HUB_OFFLINE": "1", "GPQA_FROM": "recipe"} if local else {})


@pytest.mark.parametrize("mode", image_choice.MODES)
def test_what_the_config_names_wins_whatever_the_mode(mode):
    task = resolve_nel(GPQA)
    mine = image_choice.choose(task, "mine:1", {"simple_evals": "mirror:1"}, mode, LOCAL_ONLY)
    assert (mine.image, mine.why, mine.mounts) == ("mine:1", "the task's container", {})
    mapped = image_choice.choose(task, None, {"simple_evals": "mirror:1"}, mode, LOCAL_ONLY)
    assert (mapped.image, mapped.why) == ("mirror:1", "evaluation.harness_images.simple_evals")


@pytest.mark.parametrize(
    ("task", "present", "message"),
    [
        (BROWSE, LOCAL_ONLY, "simple_evals.browsecomp has no local image: browses the live web"),
        (MMLU, LOCAL_ONLY, "no local image: not prepared to run offline"),
        ("mmath.mmath_en", LOCAL_ONLY, "no local image: no offline recipe for mmath"),
        (GPQA, NV_ONLY, f"{LOCAL} for simple_evals.gpqa_diamond is not built on this machine.*{BUILD}"),
    ],
)
def test_local_refuses_in_one_line_what_it_cannot_run(task, present, message):
    with pytest.raises(ConfigError, match=message) as err:
        image_choice.choose(resolve_nel(task), mode="local", present=present)
    assert "execution.catalog_images" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("task", "present", "cell"),
    [
        (GPQA, LOCAL_ONLY, "built"),
        (GPQA, NV_ONLY, "buildable: launcher images build simple_evals"),
        (GPQA, None, "unknown (no Docker)"),
        (BROWSE, LOCAL_ONLY, "no: browses the live web"),
        ("mmath.mmath_en", None, "no: no offline recipe for mmath"),
    ],
)
def test_the_offline_column(task, present, cell):
    assert image_choice.offline(resolve_nel(task), present) == cell


def test_candidates_are_nvidia_s_and_the_recipes_images():
    tasks = [resolve_nel(GPQA), resolve_nel(MMLU), resolve_nel("mmath.mmath_en")]
    assert image_choice.candidates(tasks) == sorted(
        {NVIDIA, LOCAL, "nvcr.io/nvidia/eval-factory/mmath:26.03"}
    )


# ---- through the plan: the container a choice gives ------------------------------------------------------


def planned(tasks: list[dict], present: frozenset[str] | None, mode: str = "auto"):
    from launcher.config.boundary import to_run_spec
    from launcher.executors.container.plan import plan_tasks
    from launcher.executors.local import LocalConfig

    data = {
        "execution": {"output_dir": "/data/evals", "user": "1000:1000", "catalog_images": mode},
        "target": {"api_endpoint": {"url": "http://127.0.0.1:8000/v1/chat/completions", "model_id": "m"}},
        "evaluation": {"tasks": tasks, "env_vars": {"HF_HUB_OFFLINE": "lit:0"}},
    }
    spec = to_run_spec(data, "local", LocalConfig)
    return plan_tasks(spec, "0000abcd", "/data/evals/x", spec.execution, present=present)


def test_a_local_build_s_container_gets_its_mounts_and_env_the_config_s_own_winning():
    plan = planned([{"name": GPQA}, {"name": MMLU}], LOCAL_ONLY)
    (gpqa, mmlu) = plan.containers
    assert (gpqa.image, mmlu.image) == (LOCAL, NVIDIA)
    assert gpqa.mounts == ("/cache/data/simple_evals/26.3-9/gpqa:/data/hf-datasets/Idavidrein___gpqa:ro",)
    assert mmlu.mounts == () and "GPQA_FROM" not in mmlu.env
    assert (gpqa.env["GPQA_FROM"], gpqa.env["HF_HUB_OFFLINE"]) == ("recipe", "0")  # the config's `lit:` wins
    assert plan.jobs[0].image_why == f"local build: {NVIDIA} not present"
    assert plan.jobs[1].image_why.startswith("NVIDIA's catalogue image, not present")


def test_the_config_s_dataset_dir_replaces_a_local_build_s_mount_of_the_same_path():
    task = {
        "name": GPQA,
        "dataset_dir": "/mine/gpqa",
        "dataset_mount_path": "/data/hf-datasets/Idavidrein___gpqa",
    }
    (c,) = planned([task], LOCAL_ONLY).containers
    assert c.mounts == ("/mine/gpqa:/data/hf-datasets/Idavidrein___gpqa:ro",)


def test_a_custom_or_built_in_task_has_no_image_choice():
    plan = planned(
        [{"name": "launcher.gsm8k_cot_zeroshot"}, {"name": "x", "container": "i:1", "command": ["a"]}], None
    )
    assert [j.image_why for j in plan.jobs] == ["", ""]


def test_a_recipe_image_missing_at_submit_is_built_not_pulled():
    assert image_choice.recipe_hint(LOCAL) == f"build it with {BUILD}"
    assert image_choice.recipe_hint(NVIDIA) == ""  # docker may pull NVIDIA's


@pytest.mark.parametrize(
    ("execution", "message"),
    [
        ({"catalog_images": "mine"}, "'mine' is not allowed. Allowed values: auto, nvidia, local"),
        ({"catalog_images": "local", "container_runtime": "pyxis"}, "container_runtime pyxis does not read"),
    ],
)
def test_the_setting_is_checked_at_the_boundary(execution, message):
    from launcher.config.boundary import to_run_spec
    from launcher.executors.slurm import SlurmConfig

    data = {
        "target": {"api_endpoint": {"url": "http://127.0.0.1:8000/v1", "model_id": "m"}},
        "execution": execution,
    }
    data["evaluation"] = {"tasks": [{"name": GPQA}]}
    with pytest.raises(ConfigError, match="execution.catalog_images") as err:
        to_run_spec(data, "slurm", SlurmConfig)
    assert message in str(err.value)
