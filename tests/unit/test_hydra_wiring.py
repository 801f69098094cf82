"""The Hydra front calls the config boundary as CONFIG built it: NEL's groups and resolvers, the user's own
`???` as the missing error even where a default exists, Lepton refused, pending settings said aloud."""

from __future__ import annotations

import yaml

EVALUATION = {"tasks": [{"name": "one", "container": "img:1", "command": ["eval"]}]}  # no catalogue
ENDPOINT = {"url": "http://127.0.0.1:9/v1/chat/completions", "model_id": "m"}


def write(tmp_path, tree) -> str:
    path = tmp_path / "my_run.yaml"
    path.write_text(yaml.safe_dump(tree))
    return str(path)


def test_a_users_missing_value_is_the_error_even_when_the_executor_has_a_default(cli, tmp_path):
    path = write(
        tmp_path,
        {
            "defaults": [{"execution": "local"}, "_self_"],
            "execution": {"output_dir": "???"},  # the local executor's default is "results"
            "target": {"api_endpoint": ENDPOINT},
            "evaluation": EVALUATION,
        },
    )
    proc = cli("run", "--config", path, "--dry-run", check_rc=2)
    assert proc.stderr == (
        "error: execution.output_dir: missing required value. "
        "Set it in your config or add execution.output_dir=... to the command\n"
    )
    # the command line fills it
    cli("run", "--config", path, "--dry-run", f"execution.output_dir={tmp_path}/o", check_rc=0)


def test_nel_slurm_default_composes_as_our_slurm_executor_with_nels_values(cli, tmp_path):
    path = write(
        tmp_path,
        {
            "defaults": [{"execution": "slurm/default"}, "_self_"],
            "execution": {"output_dir": str(tmp_path / "o"), "account": "acc"},
            "target": {"api_endpoint": ENDPOINT},
            "evaluation": EVALUATION,
        },
    )
    proc = cli("run", "--config", path, "--dry-run", env={"USER": "someone"}, check_rc=0)
    assert "#SBATCH --partition=batch" in proc.stdout and "#SBATCH --gpus-per-node=8" in proc.stdout
    assert "#SBATCH --exclusive" in proc.stdout and "#SBATCH --time=01:00:00" in proc.stdout


def test_lepton_is_refused_in_one_line(cli, tmp_path):
    path = write(
        tmp_path,
        {"defaults": [{"execution": "lepton/default"}, "_self_"], "target": {"api_endpoint": ENDPOINT}},
    )
    proc = cli("run", "--config", path, "--dry-run", check_rc=2)
    assert (
        proc.stderr.startswith("error: execution: Lepton is not supported") and proc.stderr.count("\n") == 1
    )


def test_select_not_null_resolves_and_pending_export_is_said(cli, tmp_path):
    path = write(
        tmp_path,
        {
            "defaults": [{"execution": "local"}, "_self_"],
            "execution": {"output_dir": str(tmp_path / "o"), "auto_export": {"destinations": ["mlflow"]}},
            "target": {
                "api_endpoint": {
                    **ENDPOINT,
                    "model_id": "${select_not_null:deployment.hf_model_handle,fallback}",
                }
            },
            "evaluation": EVALUATION,
        },
    )
    proc = cli("run", "--config", path, "--dry-run", check_rc=0)
    assert '"model_id": "fallback"' in proc.stdout
    # the local executor exports at the end of run_all.sh: nothing pending, the step is in the script
    assert "pending" not in proc.stderr
    assert "-m launcher.export auto" in proc.stdout and "# ---- auto_export.json" in proc.stdout
    # Slurm: a job submitted after the array (--dependency=afterany) runs the same step
    slurm = cli("run", "--config", path, "execution=slurm", "--dry-run", check_rc=0)
    assert "pending" not in slurm.stderr
    assert "-m launcher.export auto" in slurm.stdout and "# ---- export.sbatch.sh" in slurm.stdout
