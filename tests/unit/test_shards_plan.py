"""A sharded task's plan: shard folders, run configs and scripts, the merge step and its gate, run_all.sh,
the refusals; and how a sharded task's one status combines its shards'."""

import json
import subprocess
from pathlib import Path

import pytest
from test_render import check_golden, plan_for

from launcher.errors import ConfigError
from launcher.executors.status import Verdict, combine
from launcher.model import State

TASK = "launcher.gsm8k_cot_zeroshot"


def test_golden_sharded_task_scripts():
    plan = plan_for([{"name": TASK, "shards": 3}, "launcher.aime2025"], max_parallel=2)
    check_golden("run_all_shards.sh", plan.files["run_all.sh"])
    check_golden("shards_merge.run.sh", plan.files[f"{TASK}/run.sh"])
    job = plan.jobs[0]
    assert (job.job_id, job.shards, [p.job_id for p in job.parts]) == (
        "0000abcd.0",
        3,
        ["0000abcd.0.0", "0000abcd.0.1", "0000abcd.0.2"],
    )
    assert plan.jobs[1].shards == 0 and plan.jobs[1].parts == ()
    whole = json.loads(plan.files[f"{TASK}/results/run_config.json"])
    for k in range(3):
        shard = json.loads(plan.files[f"{TASK}/shards/{k}/results/run_config.json"])
        assert shard.pop("shard") == {"index": k, "count": 3} and shard == whole
        script = plan.files[f"{TASK}/shards/{k}/run.sh"]
        assert f"--name launcher-0000abcd-0-{k} " in script and f"launcher.job=0000abcd.0.{k}" in script
        assert f"{TASK}/shards/{k}/results:/results" in script
    assert "shards" not in whole["params"]  # the merged results' config equals an unsharded run's


def test_behind_the_proxy_each_shard_presents_the_credential_and_the_merge_gets_none():
    """The merge sends no request: no API_KEY, no key; each shard is a task like any other."""
    plan = plan_for([{"name": TASK, "shards": 2}], proxy=True)
    for k in range(2):
        script = plan.files[f"{TASK}/shards/{k}/run.sh"]
        assert 'API_KEY="${LAUNCHER_PROXY_TOKEN}"' in script and "MY_API_KEY" not in script
    merge = plan.files[f"{TASK}/run.sh"]
    assert "API_KEY" not in merge and "LAUNCHER_PROXY_TOKEN" not in merge
    assert "LAUNCHER_PROXY_TOKEN=$(od " in plan.files["run_all.sh"]


def test_task_params_shards_and_one_shard_is_the_whole_task():
    plan = plan_for([{"name": TASK, "shards": 1}, {"name": "launcher.hellaswag", "params": {"shards": 2}}])
    assert [j.shards for j in plan.jobs] == [0, 2]
    assert f"{TASK}/shards/0/run.sh" not in plan.files and "launcher.hellaswag/shards/1/run.sh" in plan.files


def test_a_custom_task_running_the_harness_can_be_sharded_and_merges_with_its_module():
    command = ["python3", "-m", "launcher.harness", "--tasks", "mine", "run", "--config", "/results/x"]
    plan = plan_for([{"name": "mytask", "container": "my/img:1", "command": command, "shards": 2}])
    merge = plan.files["mytask/run.sh"]
    assert "launcher.harness --tasks mine merge --config /results/run_config.json /shards/0/results " in merge
    assert "/shards:ro" in merge and "my/img:1" in merge


@pytest.mark.parametrize(
    ("task", "words"),
    [
        (
            {"name": "custom", "container": "my/img:1", "command": ["eval", "--all"], "shards": 2},
            "own command",
        ),
        ({"name": "simple_evals.gpqa_diamond", "shards": 4}, "NEL catalogue task"),
    ],
)
def test_a_task_that_cannot_take_a_slice_is_refused_in_one_line(task, words):
    with pytest.raises(ConfigError) as info:
        plan_for([task])
    message = str(info.value)
    assert "evaluation.tasks[0].shards" in message and words in message and "\n" not in message


def test_the_merge_gate_fails_the_task_naming_the_shards_that_did_not_succeed(tmp_path):
    plan = plan_for([{"name": TASK, "shards": 3}])
    task = tmp_path / "t"
    for k, last in enumerate(["exited 1 3", "exited 1 2", None]):  # 3: ended, some samples errored
        (task / "shards" / str(k)).mkdir(parents=True)
        if last:
            (task / "shards" / str(k) / "events.log").write_text(f"started 1 5 6\n{last}\n")
    (task / "logs").mkdir()
    (task / "run.sh").write_text(plan.files[f"{TASK}/run.sh"])
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MY_API_KEY": "x", "HOST_HF_TOKEN": "y"}
    proc = subprocess.run(["bash", str(task / "run.sh")], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 1, proc.stderr
    last = (task / "events.log").read_text().splitlines()[-1].split(" ", 2)
    assert last[0] == "exited" and last[2].startswith("1 shard(s) 1 2 of 3 did not succeed")
    assert "launcher logs 0000abcd.0.K" in last[2]
    assert "shard(s) 1 2 of 3" in (task / "logs/output.log").read_text()


def v(state: State, reason: str = "", started: float | None = None, code=None) -> Verdict:
    return Verdict(state, reason, code, started, None)


S, R, P, F, K, L = State.SUCCEEDED, State.RUNNING, State.PENDING, State.FAILED, State.KILLED, State.LOST


@pytest.mark.parametrize(
    ("merge", "parts", "state", "reason"),
    [
        (
            v(P, "waiting for a free slot"),
            [v(R, started=5), v(P, "slot"), v(S, started=3)],
            R,
            "1 of 3 shards running",
        ),
        (
            v(P, "w"),
            [v(R, started=5), v(F, "boom", 4, 1)],
            R,
            "1 of 2 shards running; shard 1 (j.1) FAILED: boom",
        ),
        (v(P, "w"), [v(P, "waiting for a free slot"), v(S, started=1)], P, "waiting for a free slot"),
        (v(P, "w"), [v(S, started=1), v(S, started=2)], P, "every shard ended; the merge comes next"),
        (v(L, "never started"), [v(K, "killed", 1), v(F, "boom", 2, 1)], F, "shard 1 (j.1) FAILED: boom"),
        (
            v(L, "never started"),
            [v(S, started=1), v(K, "killed by", 2)],
            K,
            "shard 1 (j.1) KILLED: killed by",
        ),
        (v(L, "never started; resume"), [v(S, started=1)] * 2, L, "never started; resume"),
        (
            v(F, "shard(s) 1 of 2 did not succeed", 9, 1),
            [v(S, started=1), v(F, "x", 2)],
            F,
            "shard(s) 1 of 2",
        ),
    ],
)
def test_a_sharded_task_is_one_job(merge, parts, state, reason):
    got = combine("j", merge, parts)
    assert got.state == state and got.reason.startswith(reason)
    starts = [p.started for p in parts if p.started is not None]
    assert got.started == (merge.started if merge.started is not None else min(starts, default=None))


def test_logs_and_status_find_a_shard_by_its_id():
    plan = plan_for([{"name": TASK, "shards": 2}])
    from launcher.model import InvocationRecord

    record = InvocationRecord("0000abcd", "/x", "local", {}, plan.jobs, 0.0)
    assert record.job("0000abcd.0.1").folder == f"{TASK}/shards/1"
    assert record.job("0000abcd.0").folder == TASK
    with pytest.raises(KeyError):
        record.job("0000abcd.0.2")
    assert InvocationRecord.from_dict(record.to_dict()).jobs == plan.jobs
    assert Path(record.job("0000abcd.0.0").folder).parent.name == "shards"


@pytest.mark.parametrize(
    ("runtime", "ports"), [("docker", ["9000"] * 4), ("pyxis", ["9000", "9001", "9002", "9003"])]
)
def test_on_slurm_each_shard_is_an_array_element_behind_its_proxy_and_a_merge_job_follows(runtime, ports):
    """docker: the elements on a node share its proxy (one port); pyxis: each element has its own."""
    from launcher.config.boundary import to_run_spec
    from launcher.executors.slurm import SlurmConfig, SlurmExecutor

    data = {
        "deployment": {"type": "none"},
        "execution": {"output_dir": "/data/evals", "container_runtime": runtime},
        "target": {
            "api_endpoint": {
                "url": "http://127.0.0.1:8000/v1/chat/completions",
                "model_id": "m",
                "proxy_port": 9000,
            }
        },
        "evaluation": {"tasks": ["launcher.aime2025", {"name": TASK, "shards": 2}, "launcher.hellaswag"]},
    }
    spec = to_run_spec(data, "slurm", SlurmConfig)
    plan = SlurmExecutor(spec.execution).plan(spec, "0000abcd", "/data/evals/x", 0.0)
    assert (
        f"tasks=(launcher.aime2025 {TASK}/shards/0 {TASK}/shards/1 launcher.hellaswag)"
        in plan.files["sbatch.sh"]
    )
    port = lambda rel: json.loads(plan.files[f"{rel}/results/run_config.json"])["url"].split(":")[2][:4]  # noqa: E731
    assert [
        port(r) for r in ("launcher.aime2025", f"{TASK}/shards/0", f"{TASK}/shards/1", "launcher.hellaswag")
    ] == ports
    check_golden("merge.sbatch.sh", plan.files["merge.sbatch.sh"])


def test_status_is_one_row_per_sharded_task_and_detail_adds_a_row_per_shard():
    from launcher.api import InvocationStatus
    from launcher.cli.render import render, render_json
    from launcher.model import InvocationRecord, JobStatus

    parts = tuple(JobStatus(f"inv.0.{k}", TASK, State.RUNNING, f"/f/shards/{k}", 3, 5) for k in range(2))
    task = JobStatus("inv.0", TASK, State.RUNNING, "/f", 6, 10, reason="2 of 2 shards running", shards=parts)
    collected = [InvocationStatus(InvocationRecord("inv", "/x", "local", {}, (), 0.0), [task])]
    plain, detail = render(collected).splitlines(), render(collected, detail=True).splitlines()
    assert len(plain) == 2 and "6/10" in plain[1] and "2 of 2 shards running" in plain[1]
    assert [row.split()[0] for row in detail[1:]] == ["inv.0", "inv.0.0", "inv.0.1"]
    assert json.loads(render_json(collected))[0]["jobs"][0]["shards"][1]["done"] == 3


def test_run_all_merges_a_task_once_its_last_shard_ended_while_other_tasks_still_run(tmp_path):
    from launcher.executors.local.render import render_run_all_sh

    script = render_run_all_sh("inv", ["t/shards/0", "t/shards/1", "other"], 3, merges=(("t", 2),))
    scripts = {
        "t/shards/0/run.sh": "sleep 0.2",
        "t/shards/1/run.sh": "exit 3",
        # the other task ends only once t has merged (or gives up after 60 s)
        "other/run.sh": "for _ in $(seq 600); do [ -e ../t/merged ] && break; sleep 0.1; done\n"
        "echo other >> ../log",
        "t/run.sh": "touch merged; echo merge >> ../log",
    }
    for rel, body in scripts.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(f'cd "$(dirname "$0")"\n{body}\n')
    (tmp_path / "run_all.sh").write_text(script)
    proc = subprocess.run(["bash", str(tmp_path / "run_all.sh")], capture_output=True, text=True, timeout=120)
    assert (tmp_path / "log").read_text().split() == ["merge", "other"], proc.stderr
    assert proc.returncode == 0  # a shard's exit 3 (some samples errored) is for its merge to judge
