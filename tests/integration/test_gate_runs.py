"""The gate on real runs: the harness (its own process, `python -m launcher.harness run`) answers GSM8K
(gsm8k_cot_zeroshot, 400 items) through the test endpoint set to answer a known share of the items right
(--correct-share: 0.80 and 0.72 of the items by a fixed hash, the second set inside the first). The runs'
folders are laid out as the launcher lays out an invocation (record + index), without Docker: the
container adds nothing the comparison reads. A worse candidate is NO-GO, a rerun GO, 20 items
INCONCLUSIVE, each with its exit code."""

from __future__ import annotations

import json
import time
from pathlib import Path
from statistics import NormalDist

import pytest
from conftest import RunningEndpoint
from helpers import write_run_config
from test_harness import Endpoint, harness

from launcher.model import InvocationRecord, PlannedJob
from launcher.store import index, layout

TASK = "gsm8k_cot_zeroshot"
TASKS = "launcher.harness.benchmarks.gsm8k"
POLICY = "version: 1\ndefaults:\n  max_drop: 0.015\nbenchmarks:\n  gsm8k_cot_zeroshot:\n    tier: critical\n"


@pytest.fixture(scope="module")
def endpoints():
    started = {
        share: Endpoint("--mode", "oracle", "--tasks", TASKS, "--correct-share", share)
        for share in ("0.8", "0.72")
    }
    yield started
    for ep in started.values():
        ep.stop()


def run(root: Path, url: str, items: int, task: str = TASK, tasks: str = TASKS) -> str:
    """One invocation of the task, its results written by the harness; returns its id."""
    inv = layout.new_id()
    folder = root / f"{layout.stamp(time.time())}-{inv}"
    results = folder / task / "results"
    proc = harness(
        "run",
        "--config",
        write_run_config(results, url, task=task, params={"limit_samples": items}),
        tasks=tasks,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    record = InvocationRecord(
        invocation_id=inv,
        folder=str(folder),
        executor="local",
        execution={},
        jobs=(PlannedJob(f"{inv}.0", task, task, "launcher-harness:0.1.0", ()),),
        created=time.time(),
        model_id="fake",
        url=url,
    )
    (folder / layout.RECORD).write_text(layout.record_json(record), encoding="utf-8")
    index.append(record)
    return inv


def test_worse_candidate_is_no_go_a_rerun_go_and_twenty_items_inconclusive(endpoints, tmp_path, cli):
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    good, worse = endpoints["0.8"].url(), endpoints["0.72"].url()
    base, cand, rerun = run(tmp_path, good, 400), run(tmp_path, worse, 400), run(tmp_path, good, 400)

    compared = json.loads(cli("compare", base, cand, "--format", "json", check_rc=0).stdout)["tasks"][0]
    assert compared["n"] == 400 and compared["improved"] == 0 and compared["regressed"] > 20
    assert compared["base"] == pytest.approx(0.8, abs=0.04) and compared["candidate"] == pytest.approx(
        0.72, abs=0.04
    )
    assert compared["test"] == "mcnemar" and compared["p_value"] < 1e-6 and compared["ci"][1] < -0.015

    nogo = cli("gate", base, cand, "--policy", str(policy), "--verbose", check_rc=1).stdout
    assert nogo.startswith("NO-GO") and "BREACH" in nogo
    go = cli("gate", base, rerun, "--policy", str(policy), "--format", "json", check_rc=0).stdout
    task = json.loads(go)["tasks"][0]
    assert task["status"] == "PASS" and task["comparison"]["delta"] == 0 and task["comparison"]["tied"] == 400

    small_base, small_cand = run(tmp_path, good, 20), run(tmp_path, worse, 20)
    inconclusive = cli(
        "gate", small_base, small_cand, "--policy", str(policy), "--verbose", check_rc=3
    ).stdout
    assert inconclusive.startswith("INCONCLUSIVE") and "straddles max_drop" in inconclusive

    refused = cli("gate", base, small_cand, "--policy", str(policy), check_rc=2)
    assert "differ in item limit" in refused.stderr and refused.stdout == ""


def test_items_with_a_category_get_a_clustered_interval(tmp_path):
    """The harness records a sample's category (the test task: the first addend's hundreds)."""
    from launcher import api

    eps = [Endpoint("--mode", "oracle", "--correct-share", share) for share in ("0.9", "0.7")]
    try:
        base, cand = (run(tmp_path, ep.url(), 300, task="add", tasks="harness_tasks") for ep in eps)
    finally:
        for ep in eps:
            ep.stop()
    (task,) = api.compare(base, cand).tasks
    assert task.stats.clusters == 10 and task.stats.regressed > 30 and task.stats.improved == 0
    assert task.stats.ci[0] == pytest.approx(task.stats.delta - NormalDist().inv_cdf(0.975) * task.stats.se)


@pytest.mark.docker
def test_through_the_launcher_in_docker_no_go_then_a_rerun_go(cli, harness_image, tmp_path):
    """The same, end to end: `launcher` runs the harness image (execution=local) against the endpoint."""
    from helpers import invocation_of

    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.replace(TASK, f"launcher.{TASK}"))  # the task as the config names it
    eps = {
        share: RunningEndpoint("--mode", "oracle", "--tasks", TASKS, "--correct-share", share)
        for share in ("0.8", "0.72")
    }
    try:

        def launch(share: str) -> str:
            proc = cli(
                "execution=local",
                "target=local",
                f"target.api_endpoint.url={eps[share].url()}",
                f"execution.output_dir={tmp_path}/out",
                f"evaluation.tasks=[launcher.{TASK}]",
                "evaluation.params.limit_samples=400",
                "--wait",
                timeout=600,
            )
            assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
            return invocation_of(proc)

        base, cand, rerun = launch("0.8"), launch("0.72"), launch("0.8")
    finally:
        for ep in eps.values():
            ep.stop()
    nogo = cli("gate", base, cand, "--policy", str(policy), "--format", "json", check_rc=1).stdout
    (task,) = json.loads(nogo)["tasks"]
    assert (
        task["status"] == "BREACH" and task["comparison"]["improved"] == 0 and task["comparison"]["n"] == 400
    )
    go = json.loads(cli("gate", base, rerun, "--policy", str(policy), "--format", "json", check_rc=0).stdout)
    assert go["verdict"] == "GO" and go["tasks"][0]["comparison"]["tied"] == 400
