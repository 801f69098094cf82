"""One custom task listed twice with different params (a NEL user's two temperatures), run for real by the
local and the Slurm executor: each repeat has its own folder, status row, results and export rows under NEL's
`<name>.<position>`, and a resume starts nothing."""

import csv
import json
from pathlib import Path

import pytest
from helpers import TEST_IMAGE, invocation_of, jobs, write_config
from test_slurm import slurm_cluster  # noqa: F401 (a fixture: skips, or fails under make test, without Slurm)

pytestmark = pytest.mark.docker

# Scores its own run_config.json: the temperature it was given, so each repeat's result shows which it is.
SCORE = "; ".join(
    [
        "import json",
        "params = json.load(open('/results/run_config.json'))['params']",
        "open('/results/attempts.log', 'a').write('run\\n')",
        "score = {'value': params['temperature'], 'stats': {'count': 1}}",
        "doc = {'results': {'tasks': {'echo': {'metrics': {'temperature': {'scores': {'value': score}}}}}}}",
        "json.dump(doc, open('/results/results.json', 'w'))",
    ]
)


@pytest.fixture(autouse=True)
def _image(test_image):
    return test_image


@pytest.mark.parametrize("executor", ["local", "slurm"])
def test_a_task_listed_twice_runs_twice_into_its_own_folders(cli, tmp_path, executor, request):
    if executor == "slurm":
        request.getfixturevalue("slurm_cluster")
    tasks = [
        {
            "name": "echo",
            "container": TEST_IMAGE,
            "command": ["python3", "-c", SCORE],
            "params": {"temperature": t},
        }
        for t in (0.25, 0.75)
    ]
    inv = invocation_of(cli(*write_config(tmp_path, executor, tasks), "--wait", check_rc=0))
    state = jobs(cli, inv)
    assert sorted(state) == ["echo.0", "echo.1"]
    assert {j["state"] for j in state.values()} == {"SUCCEEDED"}
    folders = {name: Path(j["folder"]) for name, j in state.items()}
    assert {name: f.name for name, f in folders.items()} == {"echo.0": "echo.0", "echo.1": "echo.1"}
    for name, temperature in (("echo.0", 0.25), ("echo.1", 0.75)):
        config = json.loads((folders[name] / "results/run_config.json").read_text())
        assert config["task"] == "echo" and config["params"]["temperature"] == temperature

    table = cli("results", inv, "--format", "csv", check_rc=0).stdout
    assert "echo.0" in table and "echo.1" in table and "0.25" in table and "0.75" in table
    out = tmp_path / "scores.csv"
    cli("export", inv, "--dest", "local", "-o", str(out), check_rc=0)
    with out.open() as fh:
        rows = {(r["task"], float(r["value"])) for r in csv.DictReader(fh)}
    assert rows == {("echo.0", 0.25), ("echo.1", 0.75)}

    proc = cli("resume", inv, "--wait", check_rc=0)
    assert "every task already succeeded: nothing" in proc.stdout + proc.stderr
    for folder in folders.values():
        assert (folder / "results/attempts.log").read_text() == "run\n"  # never redone
    assert {j["state"] for j in jobs(cli, inv).values()} == {"SUCCEEDED"}
