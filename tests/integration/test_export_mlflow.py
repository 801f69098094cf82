"""`launcher export --dest mlflow` against a real MLflow tracking server (SQLite backend, 127.0.0.1), read
back through MlflowClient: one run per task, params, metrics with stderr, tags, artifacts; idempotent."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from export_fixtures import invocation
from helpers import free_port, unavailable

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    try:
        import mlflow  # noqa: F401
    except ImportError:
        unavailable("mlflow is not installed", "pip install 'launcher[mlflow]' (the test extra has it)")
    tmp = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    log = open(tmp / "server.log", "w")  # noqa: SIM115 - open for the server's lifetime
    proc = subprocess.Popen(
        [
            str(mlflow_bin),
            "server",
            "--backend-store-uri",
            f"sqlite:///{tmp}/mlflow.db",
            "--artifacts-destination",
            str(tmp / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                if resp.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"mlflow server did not start: {(tmp / 'server.log').read_text()[-2000:]}")
        time.sleep(0.5)
    yield url
    os.killpg(proc.pid, 15)  # the server's own process group: gunicorn/uvicorn workers go with it
    proc.wait(30)
    log.close()


def export(cli_env, *args):
    return subprocess.run(
        [sys.executable, "-m", "launcher", "export", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **cli_env},
        timeout=300,
    )


def test_mlflow_one_run_per_task_read_back_and_idempotent(tmp_path, mlflow_server):
    from mlflow.tracking import MlflowClient

    rec = invocation(
        tmp_path / "runs", "model-a", {"gsm8k": [True] * 3 + [False], "mmlu": [True, False]}, errors=1
    )
    env = {"MLFLOW_TRACKING_URI": mlflow_server}
    first = export(env, rec.invocation_id, "--dest", "mlflow", "--experiment", "exp1", "--samples")
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.stdout.count("exported to mlflow") == 2, first.stdout
    second = export(env, rec.invocation_id, "--dest", "mlflow", "--experiment", "exp1")
    assert second.returncode == 0, second.stderr[-2000:]
    assert second.stdout.count("already exported to mlflow") == 2, second.stdout

    client = MlflowClient(tracking_uri=mlflow_server)
    exp = client.get_experiment_by_name("exp1")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 2  # one per task, not duplicated by the second export
    by_task = {r.data.tags["task"]: r for r in runs}
    gsm = by_task["gsm8k"]
    assert gsm.data.tags["launcher.job"] == f"{rec.invocation_id}.0"
    assert gsm.data.tags["launcher.invocation"] == rec.invocation_id
    assert gsm.data.params["model"] == "model-a"
    assert gsm.data.params["invocation_id"] == rec.invocation_id
    assert gsm.data.params["temperature"] == "0.0" and gsm.data.params["max_tokens"] == "256"
    assert gsm.data.metrics["accuracy"] == pytest.approx(3 / 5)  # the errored sample scores 0
    assert gsm.data.metrics["accuracy_stderr"] == pytest.approx(0.06**0.5)
    assert gsm.info.status == "FINISHED"
    artifacts = {a.path for a in client.list_artifacts(gsm.info.run_id)}
    assert {"results.json", "results.yml", "samples.jsonl", "config.yaml"} <= artifacts
    config = Path(client.download_artifacts(gsm.info.run_id, "config.yaml", str(tmp_path))).read_text()
    assert "hf_secretvalue123" not in config and "API_KEY" in config  # secret values redacted, names kept


def test_every_builtin_metric_exports_under_a_name_mlflow_accepts(tmp_path, mlflow_server):
    """lm-eval's `exact_match,flexible-extract` and HumanEval's `pass@1` are refused by MLflow as they are:
    each built-in's metrics arrive under their documented exported names, the task's own name in a tag."""
    from mlflow.tracking import MlflowClient

    from launcher.export.to_mlflow import TAG_METRIC, exported_name
    from launcher.harness.benchmarks import TASKS

    metrics = {name: task.metrics for name, task in TASKS.items()}
    rec = invocation(
        tmp_path / "runs", "model-b", {name: [True, True, False] for name in TASKS}, metrics=metrics
    )
    proc = export(
        {"MLFLOW_TRACKING_URI": mlflow_server}, rec.invocation_id, "--dest", "mlflow", "--experiment", "all"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    client = MlflowClient(tracking_uri=mlflow_server)
    runs = client.search_runs([client.get_experiment_by_name("all").experiment_id], max_results=1000)
    by_task = {r.data.tags["task"]: r for r in runs}
    assert set(by_task) == set(TASKS)
    assert exported_name("exact_match,flexible-extract") == "exact_match/flexible-extract"
    assert exported_name("pass@1") == "pass_at_1"
    for name, task in TASKS.items():
        data = by_task[name].data
        for metric in task.metrics:
            assert data.metrics[exported_name(metric)] == pytest.approx(2 / 3), (name, metric)
            assert exported_name(f"{metric}_stderr") in data.metrics
            if exported_name(metric) != metric:
                assert data.tags[TAG_METRIC + exported_name(metric)] == metric


def test_mlflow_uploads_no_planted_link_or_fifo(tmp_path, mlflow_server):
    """N2: a task plants results.yml -> /proc/self/environ (the exporter's environment holds the key) and
    a FIFO as samples.jsonl: neither is read or uploaded, the export does not hang, a warning says so."""
    from mlflow.tracking import MlflowClient

    rec = invocation(tmp_path / "runs", "model-a", {"gsm8k": [True, False]})
    results = Path(rec.folder, "gsm8k/results")
    (results / "results.yml").unlink()
    (results / "results.yml").symlink_to("/proc/self/environ")
    (results / "samples.jsonl").unlink()
    os.mkfifo(results / "samples.jsonl")
    secret = "sk-planted-link-0123456789"
    env = {"MLFLOW_TRACKING_URI": mlflow_server, "MY_ENDPOINT_KEY": secret}
    proc = export(env, rec.invocation_id, "--dest", "mlflow", "--experiment", "links", "--samples")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "not uploading results/results.yml" in proc.stderr
    assert "not uploading results/samples.jsonl" in proc.stderr
    client = MlflowClient(tracking_uri=mlflow_server)
    (run,) = client.search_runs([client.get_experiment_by_name("links").experiment_id])
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert names == {"results.json", "config.yaml"}
    for name in names:
        assert secret not in Path(client.download_artifacts(run.info.run_id, name, str(tmp_path))).read_text()


def test_mlflow_unreachable_says_what_failed_and_changes_nothing(tmp_path):
    rec = invocation(tmp_path / "runs", "model-a", {"gsm8k": [True, False]})
    results = Path(rec.folder, "gsm8k/results/results.json")
    before = results.read_bytes()
    port = free_port()  # nothing listens there
    proc = export(
        {
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}",
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
        },
        rec.invocation_id,
        "--dest",
        "mlflow",
    )
    assert proc.returncode == 1
    assert (
        "export to mlflow failed" in proc.stderr
        and f"launcher export {rec.jobs[0]['job_id']} --dest mlflow" in proc.stderr
    )
    assert "Traceback" not in proc.stderr
    assert results.read_bytes() == before
