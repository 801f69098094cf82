"""The launcher's local executor running the real harness image against a local endpoint."""

import json
import re
import time
from pathlib import Path

import pytest
from helpers import GSM8K_PERFECT, invocation_of, jobs, labelled_containers, wait_for

pytestmark = pytest.mark.docker


def test_image_holds_only_the_harness_and_runs_unprivileged(docker_engine, harness_image):
    out = docker_engine.containers.run(
        harness_image,
        [
            "python3",
            "-c",
            "import importlib.util as u, os; print(os.getuid(), "
            "[m for m in ('hydra', 'docker', 'omegaconf', 'aiohttp', 'yaml') if u.find_spec(m)])",
        ],
        remove=True,
    )
    assert out.decode().strip() == "1000 ['aiohttp', 'yaml']"


def test_smoke_suite_end_to_end(cli, oracle_endpoint, harness_image, tmp_path):
    proc = cli(
        "execution=local",
        "target=local",
        f"target.api_endpoint.url={oracle_endpoint}/v1/chat/completions",
        f"execution.output_dir={tmp_path}/out",
        "evaluation=smoke",
        "--wait",
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    state = jobs(cli, invocation_of(proc))
    assert (
        state["launcher.gsm8k_cot_zeroshot"]["score"]
        == "exact_match,flexible-extract=1.0000 exact_match,strict-match=1.0000"
        and state["launcher.gsm8k_cot_zeroshot"]["done"] == 10
    )
    assert state["launcher.humaneval_chat"]["score"] == "pass@1=1.0000"
    results = Path(state["launcher.humaneval_chat"]["folder"]) / "results"
    for name in ("results.json", "results.yml", "samples.jsonl", "progress.json"):
        assert (results / name).is_file()


def test_kill_then_resume_requests_no_finished_sample_again(
    cli, endpoint, harness_image, tmp_path, docker_engine
):
    ep = endpoint("oracle", latency=0.1)
    proc = cli(
        "execution=local",
        "target=local",
        f"target.api_endpoint.url={ep.url()}",
        f"execution.output_dir={tmp_path}/out",
        "evaluation.tasks=[launcher.gsm8k_cot_zeroshot]",
        "evaluation.params.limit_samples=120",
        "evaluation.params.parallelism=2",
        check_rc=0,
    )
    inv = invocation_of(proc)
    deadline = time.monotonic() + 60
    while (jobs(cli, inv)["launcher.gsm8k_cot_zeroshot"]["done"] or 0) < 10:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    cli("kill", inv, check_rc=0)
    state = jobs(cli, inv)["launcher.gsm8k_cot_zeroshot"]
    # Kill stops the container once, with its grace, and leaves the docker client alone: it copies the
    # output until the container is gone, then run.sh records the harness's own exit status (SIGTERM: 143).
    assert state["state"] == "KILLED" and state["exit_code"] == 143, state
    folder = Path(state["folder"])
    log = (folder / "logs/output.log").read_text().splitlines()
    assert re.fullmatch(r"\[harness [0-9:]+\] stopped by SIGTERM; finished samples are saved.*", log[-1]), log
    assert labelled_containers(docker_engine, inv) == []
    finished = {
        json.loads(line)["id"] for line in (folder / "results/samples.jsonl").read_text().splitlines()
    }
    assert 10 <= len(finished) < 120
    proc = cli("resume", inv, "--wait")
    assert proc.returncode == 0, proc.stdout[-2000:]
    state = jobs(cli, inv)["launcher.gsm8k_cot_zeroshot"]
    assert state["state"] == "SUCCEEDED" and state["score"] == GSM8K_PERFECT and state["done"] == 120
    requests = ep.stats()["samples"]
    assert all(requests[i] == 1 for i in finished)


def test_auto_export_when_the_invocation_ends(cli, oracle_endpoint, harness_image, tmp_path):
    """NEL's `execution.auto_export.destinations` (+ the `export` group's settings): run_all.sh's last step
    exports the finished invocation; the run's state and exit code do not depend on it."""
    table = tmp_path / "scores.csv"
    proc = cli(
        "execution=local",
        "target=local",
        f"target.api_endpoint.url={oracle_endpoint}/v1/chat/completions",
        f"execution.output_dir={tmp_path}/out",
        "evaluation.tasks=[launcher.gsm8k_cot_zeroshot]",
        "evaluation.params.limit_samples=3",
        "+execution.auto_export.destinations=[local]",
        f"+export.local.path={table}",
        "--wait",
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    inv = invocation_of(proc)
    folder = Path(jobs(cli, inv)["launcher.gsm8k_cot_zeroshot"]["folder"]).parent
    wait_for(lambda: table.is_file(), timeout=30, what="the auto-exported table")
    rows = table.read_text().splitlines()
    assert len(rows) == 3 and all(inv in row for row in rows[1:])  # header + one row per metric
    assert "auto-exported to local" in (folder / "logs/export.log").read_text()
