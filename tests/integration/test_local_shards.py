"""A sharded task on the local executor: the real harness image in N containers behind the invocation's
proxy, merged into the task's one result; kill and resume."""

import json
import os
import time
from pathlib import Path

import pytest
from helpers import GSM8K_PERFECT, invocation_of, jobs

pytestmark = pytest.mark.docker
TASK = "launcher.gsm8k_cot_zeroshot"


@pytest.fixture
def image(harness_image):
    """A branch that changes the harness tests it in its own build (scripts/build-harness-image.sh TAG)."""
    return os.environ.get("LAUNCHER_TEST_HARNESS_IMAGE", harness_image)


def launch(cli, ep, tmp_path, image, limit, *extra, **kw):
    return cli(
        "execution=local",
        "target=local",
        f"target.api_endpoint.url={ep.url()}",
        f"execution.output_dir={tmp_path}/out",
        f"evaluation.tasks=[{{name: {TASK}, shards: 4, container: '{image}'}}]",
        f"evaluation.params.limit_samples={limit}",
        "evaluation.params.parallelism=2",
        "execution.max_parallel=4",
        *extra,
        **kw,
    )


def shard_times(folder: Path, k: int) -> tuple[int, int]:
    records = (folder / "shards" / str(k) / "events.log").read_text().splitlines()
    start = [int(r.split()[1]) for r in records if r.startswith("started ")][-1]
    end = [int(r.split()[1]) for r in records if r.startswith("exited ")][-1]
    return start, end


def test_four_shards_run_at_once_request_each_sample_once_and_merge(cli, endpoint, image, tmp_path):
    ep = endpoint("oracle", latency=0.3)
    proc = launch(cli, ep, tmp_path, image, 40, "--wait")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    inv = invocation_of(proc)
    state = jobs(cli, inv)[TASK]
    assert (state["state"], state["score"], state["done"], state["total"]) == (
        "SUCCEEDED",
        GSM8K_PERFECT,
        40,
        40,
    )
    assert [s["job_id"] for s in state["shards"]] == [f"{state['job_id']}.{k}" for k in range(4)]
    assert all(s["state"] == "SUCCEEDED" and s["total"] == 10 for s in state["shards"])
    folder = Path(state["folder"])
    times = sorted(shard_times(folder, k) for k in range(4))
    # (whole seconds: a start before another's end, both truncated, is a true overlap)
    assert any(later[0] < earlier[1] for earlier, later in zip(times, times[1:], strict=False)), times
    requests = ep.stats()["samples"]
    assert len(requests) == 40 and set(requests.values()) == {1}
    merged = [json.loads(line) for line in (folder / "results/samples.jsonl").read_text().splitlines()]
    assert [r["id"] for r in merged] == [f"gsm8k-{i}" for i in range(40)]  # the task's order
    task_results = json.loads((folder / "results/results.json").read_text())["results"]["tasks"]
    assert next(iter(task_results.values()))["samples"]["items"] == 40
    # one task everywhere: results, status rows; --detail adds a row per shard; logs ID.k is a shard's output
    assert cli("results", inv, check_rc=0).stdout.count("exact_match") == 2
    detail = cli("status", inv, "--detail", check_rc=0).stdout
    assert all(f"{state['job_id']}.{k} " in detail for k in range(4))
    assert f"{state['job_id']}.1 " not in cli("status", inv, check_rc=0).stdout
    assert "shard 3 of 4" in cli("logs", f"{state['job_id']}.2", check_rc=0).stdout
    assert f"{state['job_id']} " in cli("status", f"{state['job_id']}.2", check_rc=0).stdout  # its task's row


def test_kill_mid_run_then_resume_requests_only_unfinished_samples(
    cli, endpoint, image, tmp_path, docker_engine
):
    ep = endpoint("oracle", latency=0.3)
    # the proxy's cache off: it would answer a re-sent request itself, hiding it from the endpoint's count
    no_cache = "++target.api_endpoint.adapter_config={use_caching: false}"
    inv = invocation_of(launch(cli, ep, tmp_path, image, 80, no_cache, check_rc=0))
    deadline = time.monotonic() + 90
    while (jobs(cli, inv)[TASK]["done"] or 0) < 12:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    cli("kill", inv, check_rc=0)
    state = jobs(cli, inv)[TASK]
    assert state["state"] == "KILLED", state
    assert any(s["state"] == "KILLED" for s in state["shards"])
    folder = Path(state["folder"])
    finished = set()
    for k in range(4):
        lines = (folder / "shards" / str(k) / "results/samples.jsonl").read_text().splitlines()
        finished |= {json.loads(line)["id"] for line in lines}
    assert 12 <= len(finished) < 80
    before = ep.stats()["samples"]
    proc = cli("resume", inv, "--wait")
    assert proc.returncode == 0, proc.stdout[-3000:]
    state = jobs(cli, inv)[TASK]
    assert (state["state"], state["score"], state["done"]) == ("SUCCEEDED", GSM8K_PERFECT, 80)
    requests = ep.stats()["samples"]
    assert all(requests[i] == 1 for i in finished)  # a finished sample is never requested again
    in_flight = {i for i in before if i not in finished}  # requested before the kill, not yet recorded
    assert sum(requests.values()) == 80 + len(in_flight) and len(in_flight) <= 4 * 2


def test_a_sharded_code_task_judges_each_shards_programs_in_its_sandbox(cli, endpoint, image, tmp_path):
    ep = endpoint("oracle")
    sharded = [
        f"{{name: {name}, shards: 2, container: '{image}'}}" for name in ("launcher.humaneval_chat", TASK)
    ]
    tasks = f"[{', '.join(sharded)}]"
    proc = cli(
        "execution=local",
        "target=local",
        f"target.api_endpoint.url={ep.url()}",
        f"execution.output_dir={tmp_path}/out",
        f"evaluation.tasks={tasks}",
        "evaluation.params.limit_samples=6",
        "--wait",
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    state = jobs(cli, invocation_of(proc))
    code = state["launcher.humaneval_chat"]
    assert (code["state"], code["score"], code["done"]) == ("SUCCEEDED", "pass@1=1.0000", 6)
    assert state[TASK]["score"] == GSM8K_PERFECT
    for k in range(2):  # each shard's programs ran in its own sandbox container
        verdicts = Path(code["folder"]) / "shards" / str(k) / "results/verdicts.jsonl"
        assert len(verdicts.read_text().splitlines()) == 3
    merged = (Path(code["folder"]) / "results/samples.jsonl").read_text().splitlines()
    assert [json.loads(line)["scores"]["pass@1"] for line in merged] == [1.0] * 6
