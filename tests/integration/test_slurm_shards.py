"""A sharded task on the real single-node Slurm cluster: shards as array elements (behind the node's
proxy, which they share), then the dependent merge job."""

import json
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from helpers import GSM8K_PERFECT, invocation_of, jobs, wait_for
from test_slurm import slurm_cluster  # noqa: F401 - the fixture

pytestmark = pytest.mark.docker
TASK = "launcher.gsm8k_cot_zeroshot"


@pytest.fixture
def image(harness_image):
    """A branch that changes the harness tests it in its own build (scripts/build-harness-image.sh TAG)."""
    return os.environ.get("LAUNCHER_TEST_HARNESS_IMAGE", harness_image)


def test_shards_run_as_array_elements_then_the_merge_job(cli, endpoint, image, tmp_path, slurm_cluster):  # noqa: F811
    ep = endpoint("oracle")
    cfg = {
        "defaults": [{"execution": "slurm"}, "_self_"],
        "execution": {"output_dir": str(tmp_path / "out")},
        "target": {"api_endpoint": {"url": ep.url(), "model_id": "m"}},
        "evaluation": {
            "tasks": ["launcher.aime2025", {"name": TASK, "shards": 3, "container": image}],
            "params": {"limit_samples": 12, "parallelism": 2},
        },
    }
    (tmp_path / "cfg.yaml").write_text(json.dumps(cfg))
    proc = cli("--config-dir", str(tmp_path), "--config-name", "cfg", "--wait", timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert "(array 0,1,2,3%" in proc.stdout and "merge job" in proc.stdout
    state = jobs(cli, invocation_of(proc))[TASK]
    assert (state["state"], state["score"], state["done"], state["total"]) == (
        "SUCCEEDED",
        GSM8K_PERFECT,
        12,
        12,
    )
    assert [s["state"] for s in state["shards"]] == ["SUCCEEDED"] * 3
    folder = Path(state["folder"])
    ports = []
    for k in range(3):
        shard = folder / "shards" / str(k)
        ports.append(urlsplit(json.loads((shard / "results/run_config.json").read_text())["url"]).port)
    assert ports[1:] == [ports[0], ports[0]]  # the node's proxy (the aime task, element 0, uses it too)
    counters = [json.loads(p.read_text()) for p in folder.parent.glob("proxy/nodes/*/*/proxy_stats.json")]
    assert sum(c["requests"] for c in counters) == ep.stats()["total"]
    gsm8k = {k: v for k, v in ep.stats()["samples"].items() if k.startswith("gsm8k")}
    assert len(gsm8k) == 12 and set(gsm8k.values()) == {1}
    merged = [json.loads(line)["id"] for line in (folder / "results/samples.jsonl").read_text().splitlines()]
    assert merged == [f"gsm8k-{i}" for i in range(12)]
    assert (folder.parent / "slurm_merge_jobs").read_text().split()


def test_kill_then_resume_resubmits_only_the_unfinished_shards(cli, endpoint, image, tmp_path, slurm_cluster):  # noqa: F811
    ep = endpoint("oracle", latency=0.3)
    cfg = {
        "defaults": [{"execution": "slurm"}, "_self_"],
        "execution": {"output_dir": str(tmp_path / "out"), "max_parallel": 2},
        "target": {"api_endpoint": {"url": ep.url(), "model_id": "m"}},
        "evaluation": {
            "tasks": [{"name": TASK, "shards": 4, "container": image}],
            "params": {"limit_samples": 40, "parallelism": 1},
        },
    }
    (tmp_path / "cfg.yaml").write_text(json.dumps(cfg))
    inv = invocation_of(cli("--config-dir", str(tmp_path), "--config-name", "cfg", check_rc=0))

    def some_shards_done() -> bool:
        shards = jobs(cli, inv)[TASK]["shards"]
        return any(s["state"] == "SUCCEEDED" for s in shards) and any(
            s["state"] != "SUCCEEDED" for s in shards
        )

    wait_for(some_shards_done, timeout=300, what="a shard to succeed while others run")
    cli("kill", inv, check_rc=0)
    state = jobs(cli, inv)[TASK]
    assert state["state"] == "KILLED", state
    done = [k for k, s in enumerate(state["shards"]) if s["state"] == "SUCCEEDED"]
    proc = cli("resume", inv, "--wait", timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    unfinished = ",".join(str(k) for k in range(4) if k not in done)
    assert f"(array {unfinished}%2)" in proc.stdout and "merge job" in proc.stdout
    state = jobs(cli, inv)[TASK]
    assert (state["state"], state["score"], state["done"]) == ("SUCCEEDED", GSM8K_PERFECT, 40)
    finished_before = set()
    folder = Path(state["folder"])
    for k in done:
        lines = (folder / "shards" / str(k) / "results/samples.jsonl").read_text().splitlines()
        finished_before |= {json.loads(line)["id"] for line in lines}
    requests = ep.stats()["samples"]
    assert all(requests[i] == 1 for i in finished_before)
