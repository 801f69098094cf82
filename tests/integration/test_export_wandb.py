"""`launcher export --dest wandb` in offline mode (WANDB_MODE=offline; no network, no API key), read back
from the run files wandb wrote (decoded with its protobuf schema) and checked by `wandb sync --dry-run`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from export_fixtures import invocation
from helpers import unavailable
from wandb_log import summary_config_files

ROOT = Path(__file__).resolve().parents[2]


def test_wandb_offline_run_read_back_and_same_id_on_reexport(tmp_path):
    try:
        import wandb  # noqa: F401
    except ImportError:
        unavailable("wandb is not installed", "pip install 'launcher[wandb]' (the test extra has it)")
    rec = invocation(tmp_path / "runs", "model-a", {"gsm8k": [True, True, False, False]}, chance=0.25)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(tmp_path),
        "WANDB_SILENT": "true",
        "WANDB_API_KEY": "",
    }
    argv = [sys.executable, "-m", "launcher", "export", rec.invocation_id, "--dest", "wandb"]
    for _ in range(2):
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "exported to wandb" in proc.stdout
    run_files = sorted((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(run_files) == 2  # offline, each export is a file; both carry the same run id (resumed on sync)
    for path in run_files:
        summary, config, files, run_id = summary_config_files(path)
        assert run_id == f"launcher-{rec.invocation_id}-0"
        assert summary["accuracy"] == pytest.approx(0.5)
        assert summary["accuracy_stderr"] == pytest.approx(0.28867513459481287)
        assert config["model"] == "model-a" and config["invocation_id"] == rec.invocation_id
        assert config["temperature"] == "0.0" and "top_p" not in config  # unset sampling params are left out
        assert {"results.json", "results.yml", "config.yaml"} <= set(files)
    wandb_cli = Path(sys.executable).with_name("wandb")
    dry = subprocess.run(
        [str(wandb_cli), "sync", "--dry-run", str(run_files[0].parent)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert dry.returncode == 0 and "Would sync 1 run" in dry.stdout + dry.stderr, dry.stdout + dry.stderr


def test_wandb_builtin_metric_names_as_mlflow_gets_them(tmp_path):
    """W&B receives the same exported names as MLflow (`exact_match/flexible-extract`, `pass_at_1`)."""
    try:
        import wandb  # noqa: F401
    except ImportError:
        unavailable("wandb is not installed", "pip install 'launcher[wandb]' (the test extra has it)")
    from launcher.export.to_mlflow import exported_name
    from launcher.harness.benchmarks import TASKS

    tasks = {"gsm8k_cot_zeroshot": [True, False], "humaneval_chat": [True, True]}
    rec = invocation(tmp_path / "runs", "model-a", tasks, metrics={n: TASKS[n].metrics for n in tasks})
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(tmp_path),
        "WANDB_SILENT": "true",
        "WANDB_API_KEY": "",
    }
    argv = [sys.executable, "-m", "launcher", "export", rec.invocation_id, "--dest", "wandb"]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summaries = {}
    for path in sorted((tmp_path / "wandb").glob("offline-run-*/run-*.wandb")):
        summary, _, _, run_id = summary_config_files(path)
        summaries[run_id] = summary
    gsm, humaneval = (
        summaries[f"launcher-{rec.invocation_id}-0"],
        summaries[f"launcher-{rec.invocation_id}-1"],
    )
    for metric in TASKS["gsm8k_cot_zeroshot"].metrics:
        assert gsm[exported_name(metric)] == pytest.approx(0.5) and "," not in exported_name(metric)
    assert humaneval["pass_at_1"] == pytest.approx(1.0)


def test_wandb_uploads_no_planted_link(tmp_path):
    """N2: results.yml -> /proc/self/environ in a task's results: not added to the artifact."""
    try:
        import wandb  # noqa: F401
    except ImportError:
        unavailable("wandb is not installed", "pip install 'launcher[wandb]' (the test extra has it)")
    rec = invocation(tmp_path / "runs", "model-a", {"gsm8k": [True, False]})
    results = Path(rec.folder, "gsm8k/results")
    (results / "results.yml").unlink()
    (results / "results.yml").symlink_to("/proc/self/environ")
    secret = "sk-planted-link-0123456789"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path),
           "WANDB_SILENT": "true", "WANDB_API_KEY": "", "MY_ENDPOINT_KEY": secret}  # fmt: skip
    argv = [sys.executable, "-m", "launcher", "export", rec.invocation_id, "--dest", "wandb"]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "not uploading results/results.yml" in proc.stderr
    (path,) = sorted((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    files = summary_config_files(path)[2]
    assert "results.json" in files and "results.yml" not in files
    for f in (tmp_path / "wandb").rglob("*"):
        assert f.is_symlink() or not f.is_file() or secret.encode() not in f.read_bytes(), f
