"""`launcher results` on a real 2 x 2 Hydra sweep (models x temperature): four invocations whose custom
task, in the test image's container, reads the run config the launcher wrote (/results/run_config.json)
and writes results.json with a score set by the model and the temperature."""

import json

import pytest
from helpers import TEST_IMAGE, jobs, wait_for

pytestmark = pytest.mark.docker

# p(model, temperature); stderr of a proportion over 100 items. At temperature 0.0 the models are 0.05
# apart (within their combined stderr 0.059), at 0.5 they are 0.2 apart (flagged).
SCORE = "; ".join(  # one line: a command argument must not hold a newline
    [
        "import json, math",
        'c = json.load(open("/results/run_config.json"))',
        'table = {"alpha": {0.0: 0.8, 0.5: 0.6}, "beta": {0.0: 0.75, 0.5: 0.4}}',
        'p = table[c["model_id"]][c["params"]["temperature"]]',
        'score = {"value": p, "stats": {"stderr": math.sqrt(p * (1 - p) / 100), "count": 100, "errors": 0}}',
        'metrics = {"accuracy": {"scores": {"accuracy": score}}}',
        'doc = {"results": {"tasks": {c["task"]: {"metrics": metrics}}}}',
        'json.dump({**doc, "model_id": c["model_id"]}, open("/results/results.json", "w"))',
    ]
)


def test_results_of_a_sweep_on_two_swept_axes(cli, tmp_path, test_image):
    cfg = {
        "defaults": [{"execution": "local"}, "_self_"],
        "execution": {"output_dir": str(tmp_path / "out")},
        "target": {"api_endpoint": {"url": "http://127.0.0.1:9/v1/chat/completions", "model_id": "m"}},
        "evaluation": {
            "tasks": [
                {
                    "name": "scored",
                    "container": TEST_IMAGE,
                    "command": ["python3", "-c", SCORE],
                    "params": {"temperature": 0.0},
                }
            ]
        },
    }
    (tmp_path / "cfg.yaml").write_text(json.dumps(cfg))
    model, temp = "target.api_endpoint.model_id", "evaluation.tasks.0.params.temperature"
    proc = cli(
        "--config-dir",
        str(tmp_path),
        "--config-name",
        "cfg",
        "-m",
        f"{model}=alpha,beta",
        f"{temp}=0.0,0.5",
        check_rc=0,
    )
    sweep = next(ln.split()[-1] for ln in proc.stdout.splitlines() if "sweep:" in ln)

    def states() -> list[str]:
        return [
            j["state"]
            for inv in json.loads(cli("status", sweep, "--json", check_rc=0).stdout)
            for j in inv["jobs"]
        ]

    wait_for(lambda: states() == ["SUCCEEDED"] * 4, timeout=120, what="the sweep's four jobs")
    proc = cli("results", sweep, "--rows", "model", "--cols", "temperature", "--format", "json", check_rc=0)
    cells = {(c["run"], c["column"]): c for c in json.loads(proc.stdout)}
    assert {k: c["value"] for k, c in cells.items()} == {
        ("alpha", "0.0"): 0.8,
        ("alpha", "0.5"): 0.6,
        ("beta", "0.0"): 0.75,
        ("beta", "0.5"): 0.4,
    }
    assert cells[("alpha", "0.5")]["best"] and cells[("beta", "0.5")]["differs"]
    assert cells[("alpha", "0.0")]["best"] and not cells[("beta", "0.0")]["differs"]
    # Transposed, as a table a person reads: best per model now, each 0.2 drop flagged. The default axes
    # (model x task) put the temperature into the row labels.
    proc = cli("results", sweep, "--rows", temp, "--cols", "model_id", check_rc=0)
    assert proc.stdout.splitlines()[0].split() == ["temperature", "\\", "model_id", "alpha", "beta"]
    assert proc.stdout.splitlines()[2].split() == ["0.5", "0.6000", "±", "0.0490!", "0.4000", "±", "0.0490!"]
    proc = cli("results", sweep, check_rc=0)
    assert sorted(" ".join(ln.split()[:2]) for ln in proc.stdout.splitlines()[1:5]) == [
        "alpha (temperature=0.0)",
        "alpha (temperature=0.5)",
        "beta (temperature=0.0)",
        "beta (temperature=0.5)",
    ]
    proc = cli("results", sweep, "--cols", "seed")
    assert proc.returncode == 2 and proc.stderr == (
        f"error: --cols 'seed' is not an axis of these runs; available: model, task, metric, invocation, "
        f"{model}, {temp} (or any override key)\n"
    )
    assert set(jobs(cli, sweep)) == {"scored"}
