"""`launcher results`: any two axes of a sweep (table and golden tests on TaskRun data; the CLI on real
invocation folders written by tests/export_fixtures.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from export_fixtures import invocation
from test_export import cli

from launcher.errors import LauncherError
from launcher.export import compare, source
from launcher.export.source import RunScore, TaskRun

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
MODEL = "target.api_endpoint.model_id"
TEMP = "evaluation.tasks.0.params.temperature"


def run(
    model: str, temp: str, value: float, se: float | None = 0.04, task: str = "t", inv: str = ""
) -> TaskRun:
    inv = inv or f"{model}-{temp}"
    scores = (RunScore("acc", "acc", value, se),)
    return TaskRun(
        inv,
        f"{inv}.0",
        task,
        Path("/x"),
        Path("/"),
        model,
        scores=scores,
        overrides={"execution": "local", MODEL: model, TEMP: temp},
    )


# A 2 x 2 sweep given with temperature 0.7 first (a numeric axis is sorted): alpha 0.80/0.60, beta 0.75/0.40.
SWEEP = [
    run("alpha", "0.7", 0.60),
    run("alpha", "0.0", 0.80),
    run("beta", "0.7", 0.40),
    run("beta", "0.0", 0.75),
]


def values(g: compare.Grid) -> dict[tuple[str, str], float]:
    return {key: c.value for key, c in g.cells.items()}


def test_swept_keys_are_those_that_differ():
    assert compare.swept(SWEEP) == [MODEL, TEMP]


@pytest.mark.parametrize(
    ("rows", "cols", "row_labels", "col_labels", "cells"),
    [
        ("model", TEMP, ["alpha", "beta"], ["0.0", "0.7"], {("alpha", "0.0"): 0.80, ("beta", "0.7"): 0.40}),
        (TEMP, "model", ["0.0", "0.7"], ["alpha", "beta"], {("0.0", "alpha"): 0.80, ("0.7", "beta"): 0.40}),
        (TEMP, MODEL, ["0.0", "0.7"], ["alpha", "beta"], {("0.7", "alpha"): 0.60, ("0.0", "beta"): 0.75}),
        # Default axes: the temperature tells the runs of a model apart, in the row label.
        (
            "model",
            "task",
            [
                "alpha (temperature=0.7)",
                "alpha (temperature=0.0)",
                "beta (temperature=0.7)",
                "beta (temperature=0.0)",
            ],
            ["t"],
            {("beta (temperature=0.0)", "t"): 0.75},
        ),
        # Rows by temperature, columns by task: the model goes into the row label.
        (
            TEMP,
            "task",
            ["0.0 (alpha)", "0.0 (beta)", "0.7 (alpha)", "0.7 (beta)"],
            ["t"],
            {("0.7 (alpha)", "t"): 0.60},
        ),
    ],
)
def test_any_two_axes(rows, cols, row_labels, col_labels, cells):
    g = compare.grid(SWEEP, rows, cols)
    assert (g.rows, g.columns) == (row_labels, col_labels)
    assert len(g.cells) == 4 and cells.items() <= values(g).items()


def test_best_per_column_and_differences_beyond_combined_stderr():
    g = compare.grid(SWEEP, "model", TEMP)
    # temperature 0.0: 0.80 ± 0.04 vs 0.75 ± 0.04 (0.05 < 0.057): no flag; 0.7: 0.60 vs 0.40 flagged.
    assert g.cells[("alpha", "0.0")].best and not g.cells[("beta", "0.0")].differs
    assert g.cells[("alpha", "0.7")].best and g.cells[("beta", "0.7")].differs
    assert g.cells[("beta", "0.7")].coords == {
        MODEL: "beta",
        TEMP: "0.7",
        "model": "beta",
        "task": "t",
        "metric": "acc",
        "invocation": "beta-0.7",
        "job": "beta-0.7.0",
    }


def test_several_tasks_and_metrics_go_into_the_column_label():
    two = RunScore("acc", "acc", 0.5, 0.1), RunScore("acc", "strict", 0.25, 0.1)
    runs = [run("alpha", "0.0", 0.8, task="a"), run("alpha", "0.0", 0.7, task="b", inv="x")]
    runs.append(
        TaskRun(
            "y", "y.0", "b", Path("/x"), Path("/"), "beta", scores=two, overrides={MODEL: "beta", TEMP: "0.0"}
        )
    )
    g = compare.grid(runs, "model", TEMP)
    assert g.columns == ["0.0/a", "0.0/b/acc", "0.0/b/acc.strict"]
    g = compare.grid(runs, "model", "metric")
    assert g.columns == ["a/acc", "b/acc", "b/acc.strict"]


def test_the_same_coordinates_twice_are_told_apart_by_invocation():
    g = compare.grid([run("alpha", "0.0", 0.5, inv="i1"), run("alpha", "0.0", 0.6, inv="i2")], "model", TEMP)
    assert g.rows == ["alpha (i1)", "alpha (i2)"]


def test_golden_markdown_of_a_sweep():
    text = compare.render(compare.grid(SWEEP, "model", TEMP), "markdown") + "\n"
    path = GOLDEN / "results_sweep.md"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert text == path.read_text(), "results_sweep.md changed; rerun with UPDATE_GOLDEN=1 if intended"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("model", "model"),
        ("temperature", TEMP),
        (TEMP, TEMP),
        ("model_id", MODEL),
        ("execution", "execution"),
    ],
)
def test_axis_names(name, expected):
    assert compare.axis("--cols", name, SWEEP) == expected


AVAILABLE = f"available: model, task, metric, invocation, {MODEL}, {TEMP} (or any override key)"


def test_unknown_axis_is_one_line_naming_the_available_ones():
    with pytest.raises(LauncherError) as err:
        compare.axis("--rows", "temp", SWEEP)  # a last part must match whole: `temp` is not `temperature`
    assert str(err.value) == f"--rows 'temp' is not an axis of these runs; {AVAILABLE}"


def test_ambiguous_axis_names_the_keys():
    runs = [TaskRun("i", "i.0", "t", Path("/x"), Path("/"), "m", overrides={"a.seed": "1", "b.seed": "2"})]
    with pytest.raises(LauncherError, match=r"'seed' is ambiguous: it ends a\.seed, b\.seed"):
        compare.axis("--cols", "seed", runs)


def test_cli_on_a_recorded_sweep(tmp_path):
    for model, temp, outcomes in [
        ("alpha", "0.0", [True] * 4),
        ("alpha", "0.5", [True, False] * 2),
        ("beta", "0.0", [True, True, True, False]),
        ("beta", "0.5", [False] * 4),
    ]:
        invocation(
            tmp_path / "runs",
            model,
            {"t": outcomes},
            sweep="5eed0002",
            overrides=[f"{MODEL}={model}", f"+{TEMP}={temp}", "execution=local"],
        )
    assert source.load(["5eed0002"])[0].overrides[TEMP] in ("0.0", "0.5")
    proc = cli(
        "results", "5eed", "--rows", "temperature", "--cols", "model", "--format", "json", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    got = {(c["run"], c["column"]): c["value"] for c in json.loads(proc.stdout)}
    assert got == {("0.0", "alpha"): 1.0, ("0.0", "beta"): 0.75, ("0.5", "alpha"): 0.5, ("0.5", "beta"): 0.0}
    proc = cli("results", "5eed", "--cols", "temperature", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].split() == ["model", "\\", "temperature", "0.0", "0.5"]
    proc = cli("results", "5eed", "--rows", "model", "--cols", "model_id", cwd=tmp_path)  # two axes
    assert proc.returncode == 0, proc.stderr
    for args, needle in [
        (("--rows", "seed"), f"--rows 'seed' is not an axis of these runs; {AVAILABLE}"),
        (
            ("--rows", "temperature", "--cols", TEMP),
            f"--rows and --cols both name {TEMP}; give two different axes",
        ),
    ]:
        proc = cli("results", "5eed", *args, cwd=tmp_path)
        assert (proc.returncode, proc.stderr) == (2, f"error: {needle}\n")
