"""A task listed more than once (the same benchmark at two temperatures): each repeat is told apart by its
position, `<name>.<position>`, as NEL 0.2.6 names every task; folders, jobs, run.sh and the Slurm array
follow the id. The real local run is tests/integration/test_repeated_task.py."""

import json

import pytest
import yaml
from test_render import plan_for
from test_slurm_render import plan as slurm_plan

from launcher.config.boundary import to_run_spec
from launcher.config.schema import task_ids
from launcher.errors import ConfigError
from launcher.executors.local import LocalConfig


@pytest.mark.parametrize(
    ("names", "ids"),
    [
        (["a", "b"], ["a", "b"]),
        (["a", "a"], ["a.0", "a.1"]),
        (["a", "b", "a"], ["a.0", "b", "a.2"]),  # positions in evaluation.tasks, as NEL's `-t a.2`
        (["a", "b", "a", "b", "a"], ["a.0", "b.1", "a.2", "b.3", "a.4"]),
        (["x.y", "x.y"], ["x.y.0", "x.y.1"]),
        ([], []),
    ],
)
def test_task_ids(names, ids):
    assert task_ids(names) == ids


def spec(tasks, only=None):
    data = {
        "execution": {"output_dir": "out"},
        "target": {"api_endpoint": {"url": "http://127.0.0.1:8000/v1/chat/completions", "model_id": "m"}},
        "evaluation": {"tasks": tasks, **({"only": only} if only is not None else {})},
        "deployment": {"type": "none"},
    }
    return to_run_spec(data, "local", LocalConfig)


G, A = "launcher.gsm8k_cot_zeroshot", "launcher.aime2025"
AT = [{"name": A, "params": {"temperature": t}} for t in (0.0, 0.7)]


@pytest.mark.parametrize(
    ("tasks", "only", "selected"),
    [
        ([*AT, G], None, [f"{A}.0", f"{A}.1", G]),
        ([*AT, G], [A], [f"{A}.0", f"{A}.1"]),  # a plain name selects every repeat (NEL's filter_tasks)
        ([*AT, G], [f"{A}.1"], [f"{A}.1"]),  # an id one; its id stays the same (NEL would renumber it)
        ([*AT, G], [G, f"{A}.0"], [f"{A}.0", G]),
        ([G, A], [G], [G]),
    ],
)
def test_only_selects_by_name_or_id(tasks, only, selected):
    assert [i for i, _ in spec(tasks, only).selected()] == selected


@pytest.mark.parametrize(
    ("tasks", "only", "key", "words"),
    [
        ([A, A, f"{A}.1"], None, "evaluation.tasks[2].name", f"'{A}.1' is also the id of the repeated task"),
        (AT, [f"{A}.2"], "evaluation.only", f"Tasks: {A}, {A}.0, {A}.1"),
        (AT, [], "evaluation.only", "selects no task"),
    ],
)
def test_what_is_refused_names_the_key(tasks, only, key, words):
    with pytest.raises(ConfigError) as info:
        spec(tasks, only)
    assert key in str(info.value) and words in str(info.value) and "\n" not in str(info.value)


def test_repeats_get_their_own_folders_jobs_and_params():
    plan = plan_for([*AT, G])
    assert [(j.job_id, j.task, j.folder) for j in plan.jobs] == [
        ("0000abcd.0", f"{A}.0", f"{A}.0"),
        ("0000abcd.1", f"{A}.1", f"{A}.1"),
        ("0000abcd.2", G, G),
    ]
    configs = [json.loads(plan.files[f"{j.folder}/results/run_config.json"]) for j in plan.jobs[:2]]
    assert [c["task"] for c in configs] == ["aime2025"] * 2  # the harness runs the benchmark by its name
    assert [c["params"]["temperature"] for c in configs] == [0.0, 0.7]
    run_sh = plan.files[f"{A}.1/run.sh"]
    assert f"-e LAUNCHER_TASK={A} " in run_sh
    assert f"launcher.task={A}.1" in run_sh and f"task {A}.1 already succeeded" in run_sh
    assert f"for task in {A}.0 {A}.1 {G}; do" in plan.files["run_all.sh"]


def test_a_selected_repeat_keeps_its_folder():
    """The id is the position in evaluation.tasks, not in the selection: `only` never renames a folder."""
    plan = plan_for([*AT, G], max_parallel=1)
    assert [i for i, _ in spec([*AT, G], [f"{A}.1"]).selected()] == [plan.jobs[1].folder]


def test_custom_repeats_run_the_same_argv_with_their_own_params():
    task = {"name": "mine", "container": "img:1", "command": ["run"]}
    plan = plan_for([{**task, "params": {"limit_samples": n}} for n in (1, 2)])
    assert [j.folder for j in plan.jobs] == ["mine.0", "mine.1"]
    configs = [json.loads(plan.files[f"mine.{n}/results/run_config.json"]) for n in (0, 1)]
    assert [c["params"]["limit_samples"] for c in configs] == [1, 2]


def test_the_slurm_array_runs_each_repeat_from_its_folder():
    p = slurm_plan(tasks=[*AT, G], endpoint={"proxy": False})
    assert [j.folder for j in p.jobs] == [f"{A}.0", f"{A}.1", G]
    assert f"tasks=({A}.0 {A}.1 {G})" in p.files["sbatch.sh"]


def test_nel_catalogue_repeats_get_their_own_config_ef():
    """NEL's own example (its PR #874): one lm-evaluation-harness task as is and at temperature 0.7."""
    name = "lm-evaluation-harness.gsm8k"
    override = {"config": {"params": {"temperature": 0.7}}}
    plan = plan_for([{"name": name}, {"name": name, "nemo_evaluator_config": override}])
    assert [j.folder for j in plan.jobs] == [f"{name}.0", f"{name}.1"]
    configs = [yaml.safe_load(plan.files[f"{name}.{n}/results/config_ef.yaml"]) for n in (0, 1)]
    assert "temperature" not in configs[0]["config"].get("params", {})
    assert configs[1]["config"]["params"]["temperature"] == 0.7
