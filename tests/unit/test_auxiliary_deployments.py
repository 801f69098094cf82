"""NEL 0.2.6 `auxiliary_deployments` (a judge server beside the model under test) on the Slurm executor:
the mapping and references (tables), the rendered batch script (golden), and bash running one element
with a real HTTP server on 127.0.0.1 as the judge (Slurm's srun/scontrol and docker are stubs: no cluster
or GPU here)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from helpers import plan_of
from test_render import FOLDER, check_golden

from launcher.config.boundary import to_run_spec
from launcher.config.legacy import resolve_aux_references
from launcher.errors import ConfigError
from launcher.executors.local import LocalConfig
from launcher.executors.slurm import SlurmConfig

ENDPOINT = {"url": "http://127.0.0.1:8000/v1/chat/completions", "model_id": "m"}
TASK = {"name": "aime", "container": "img:1", "command": ["eval"]}
JUDGE = {
    "type": "vllm",
    "image": "vllm/vllm-openai:v0.8.5",
    "hf_model_handle": "Qwen/Qwen2.5-72B-Instruct",
    "served_model_name": "qwen-judge",
    "port": 8001,
    "endpoints": {"chat": "/v1/chat/completions", "completions": "/v1/completions", "health": "/health"},
    "env_vars": {"HF_TOKEN": "host:HOST_HF_TOKEN"},
}
REFS = {
    "url": "auxiliary_deployments.judge.chat_url",
    "model_id": "auxiliary_deployments.judge.model_id",
    "note": "plain text",
}


def spec_of(aux, executor="slurm", deployment=None, evaluation=None, **execution):
    python = {"launcher_python": sys.executable} if executor == "slurm" else {}
    data = {
        # these scripts run with stand-ins for srun and docker: the proxy with this python, not its image
        "execution": {"output_dir": "/data/evals", "user": "1000:1000", **python, **execution},
        "deployment": deployment or {"type": "none"},
        "target": {"api_endpoint": ENDPOINT},
        "evaluation": evaluation or {"tasks": [TASK]},
        "auxiliary_deployments": aux,
    }
    return to_run_spec(data, executor, SlurmConfig if executor == "slurm" else LocalConfig)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("auxiliary_deployments.judge.chat_url", "${JUDGE_CHAT_URL}"),
        ("auxiliary_deployments.judge.completions_url", "${JUDGE_COMPLETIONS_URL}"),
        ("auxiliary_deployments.judge.model_id", "qwen-judge"),
        ("see auxiliary_deployments.judge.model_id!", "see qwen-judge!"),  # NEL: a text replacement
        ("judge", "judge"),
    ],
)
def test_references_resolve_as_nel_resolves_them(value, expected):
    aux = {"judge": {**JUDGE, "env_prefix": "JUDGE"}}
    out = resolve_aux_references({"nemo_evaluator_config": {"config": {"params": {"x": [value]}}}}, aux)
    assert out["nemo_evaluator_config"]["config"]["params"]["x"] == [expected]


def test_task_level_references_and_env_prefix():
    evaluation = {"tasks": [{**TASK, "nemo_evaluator_config": {"config": {"params": {"extra": REFS}}}}]}
    spec = spec_of({"judge": {**JUDGE, "env_prefix": "grader"}}, evaluation=evaluation)
    extra = spec.evaluation.tasks[0].nemo_evaluator_config["config"]["params"]["extra"]
    assert extra == {"url": "${GRADER_CHAT_URL}", "model_id": "qwen-judge", "note": "plain text"}
    assert spec.auxiliary["judge"].env_prefix == "GRADER" and spec.auxiliary["judge"].env_vars == {
        "HF_TOKEN": "HOST_HF_TOKEN"
    }


def test_type_none_is_dropped_as_nel_drops_it():
    assert spec_of({"judge": {"type": "none"}}).auxiliary == {}


REFUSED = [
    ({"judge": JUDGE}, {"executor": "local"}, "auxiliary_deployments.judge: a second model server runs on"),
    ({"judge": {**JUDGE, "num_instances": 2}}, {}, "auxiliary_deployments.judge.num_instances: several"),
    ({"my judge": JUDGE}, {}, "auxiliary_deployments.my judge: the name may hold only letters"),
    ({"judge": {**JUDGE, "num_nodes": 2}}, {}, "auxiliary_deployments.judge.num_nodes: an auxiliary server"),
    ({"judge": {**JUDGE, "env_prefix": "SLURM"}}, {}, "auxiliary_deployments.judge.env_prefix: 'SLURM'"),
    ({"judge": {**JUDGE, "hf_model_handle": None}}, {}, "auxiliary_deployments.judge.checkpoint_path: miss"),
    (
        {"judge": {**JUDGE, "num_nodes": 0, "port": 8000}},
        {"deployment": {**JUDGE, "port": 8000}},
        "auxiliary_deployments.judge.port: is the primary server's port on the same node",
    ),
    (
        {"judge": JUDGE},
        {
            "evaluation": {
                "tasks": [{**TASK, "nemo_evaluator_config": {"x": "auxiliary_deployments.jduge.url"}}]
            }
        },
        "evaluation.tasks[0].nemo_evaluator_config.x: 'auxiliary_deployments.jduge.url' names no auxiliary",
    ),
]


@pytest.mark.parametrize(("aux", "more", "words"), REFUSED, ids=[r[2][:50] for r in REFUSED])
def test_refused_in_one_line(aux, more, words):
    with pytest.raises(ConfigError) as info:
        spec_of(aux, **more)
    assert str(info.value).startswith(words) and "\n" not in str(info.value)


def test_sbatch_with_a_judge_on_its_own_node():
    plan = plan_of(spec_of({"judge": JUDGE}, deployment={**JUDGE, "served_model_name": "m", "port": 8000}))
    batch = plan.files["sbatch.sh"]
    check_golden("sbatch_judge.sh", batch)
    subprocess.run(["bash", "-n"], input=batch, text=True, check=True)
    assert "#SBATCH --nodes=2" in batch and "launcher_nodes[1]" in batch
    assert plan.images == ("vllm/vllm-openai:v0.8.5", "vllm/vllm-openai:v0.8.5")
    assert (
        "--port 8001" in plan.files["server_cmd-judge.sh"]
        and "qwen-judge" in plan.files["server_cmd-judge.sh"]
    )
    assert "HOST_HF_TOKEN" in plan.host_env
    assert "trap 'stop_aux; stop_server' EXIT" in batch


def test_element_starts_the_judge_fills_config_ef_then_stops_it(tmp_path):
    """Element 0 with the judge on the first node (num_nodes: 0) and no primary server: srun runs its
    command here, the judge's health endpoint is a real HTTP server on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    judge = {**JUDGE, "num_nodes": 0, "port": port, "endpoints": {"chat": "/v1/chat", "health": "/"}}
    plan = plan_of(spec_of({"judge": judge}))
    for rel, text in plan.files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text.replace(FOLDER, str(tmp_path)))
    task = tmp_path / plan.jobs[0].folder
    (task / "logs").mkdir(exist_ok=True)
    (task / "results").mkdir(exist_ok=True)
    (task / "results/config_ef.yaml").write_text("judge_url: ${JUDGE_CHAT_URL}\nother: ${HOME}\n")
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "docker").write_text(
        f'#!/usr/bin/env bash\ncd {tmp_path}\necho "$*" >> docker.calls\n'
        '[ "$1" = stop ] && touch stopped\n'
        'if [ "$1" = run ] && [[ " $* " == *" -i "* ]]; then\n'
        "  cat > judge.stdin; until [ -e stopped ]; do sleep 0.1; done\nfi\n"
    )
    (stub / "scontrol").write_text("#!/usr/bin/env bash\necho 127.0.0.1\n")
    # srun: drop its options, run the command (a step on this node), record the node asked for
    (stub / "srun").write_text(
        f'#!/usr/bin/env bash\necho "$*" >> {tmp_path}/srun.calls\n'
        'while [[ "$1" == --* ]]; do shift; done\nexec "$@"\n'
    )
    for name in ("docker", "scontrol", "srun"):
        (stub / name).chmod(0o755)
    web = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"], cwd=tmp_path
    )
    try:
        env = {"PATH": f"{stub}:{os.environ['PATH']}", "SLURM_ARRAY_TASK_ID": "0", "SLURM_JOB_NODELIST": "n1"}
        proc = subprocess.run(["bash", str(tmp_path / "sbatch.sh")], env=env, timeout=60, capture_output=True)
    finally:
        web.terminate()
        web.wait()
    assert proc.returncode == 0, proc.stderr
    assert (task / "results/config_ef.yaml").read_text() == (
        f"judge_url: http://127.0.0.1:{port}/v1/chat\nother: ${{HOME}}\n"
    )
    calls = (tmp_path / "docker.calls").read_text().splitlines()
    run_judge = next(c for c in calls if c.startswith("run") and "launcher-0000abcd-judge-0" in c)
    run_task = next(c for c in calls if c.startswith("run") and "launcher-0000abcd-0 " in c)
    assert calls.index(run_judge) < calls.index(run_task)
    assert calls[-1] == "stop -t 5 launcher-0000abcd-judge-0"  # after the task: the step's trap
    assert (tmp_path / "judge.stdin").read_text() == plan.files["server_cmd-judge.sh"]
    assert "--nodelist=127.0.0.1" in (tmp_path / "srun.calls").read_text()
