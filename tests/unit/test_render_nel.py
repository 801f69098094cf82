"""NEL 0.2.6 config features as they reach the containers: literal variables, mounts, datasets, pre/post
commands and the deployment types' server commands (tables, goldens, and bash running the scripts)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import pytest
from helpers import plan_of
from test_render import FOLDER, check_golden

from launcher.config import legacy
from launcher.config.boundary import to_run_spec
from launcher.config.schema import Deployment
from launcher.errors import ConfigError
from launcher.executors.container.server import default_command
from launcher.executors.local import LocalConfig
from launcher.proxy import wiring
from launcher.testing import caches

ONE = {"name": "one", "container": "img:1", "command": ["eval"]}  # custom tasks: no catalogue involved
ENDPOINT = {"url": "http://127.0.0.1:8123/v1/chat/completions", "model_id": "my-model"}


def nel_spec(deployment=None, mounts=None, evaluation=None):
    data = {
        "execution": {"output_dir": "/data/evals", "user": "1000:1000", "mounts": mounts or {}},
        "deployment": deployment or {"type": "none"},
        "target": {"api_endpoint": ENDPOINT},
        "evaluation": evaluation or {"tasks": [ONE]},
    }
    return to_run_spec(data, "local", LocalConfig)


def docker_argv(script: str) -> list[str]:
    """The `docker run ...` line of a run.sh, split as bash would (the user placeholder aside)."""
    (line,) = [ln for ln in script.splitlines() if " docker run " in f" {ln}"]
    return shlex.split(line.split(" >> ")[0].replace('"$(id -u):$(id -g)"', "U"))


def pairs(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


EVALUATION = {
    "env_vars": {"HF_DATASETS_OFFLINE": "lit:1", "HF_TOKEN": "host:HOST_HF_TOKEN"},
    "pre_cmd": "echo shared-pre",
    "post_cmd": "echo post > /results/post.txt",
    "tasks": [
        {**ONE, "dataset_dir": "/data/sets", "env_vars": {"MODE": "lit:fast"}},
        {"name": "custom", "container": "img:1", "command": ["run", "--x"], "pre_cmd": "echo 'own pre'\nls"},
    ],
}


def test_task_containers_get_literals_mounts_dataset_and_hooks():
    mounts = {"evaluation": {"/host/eval": "/eval:ro", "/host/scratch": "/scratch"}}
    plan = plan_of(nel_spec(mounts=mounts, evaluation=EVALUATION))
    one, custom = (docker_argv(plan.files[f"{t}/run.sh"]) for t in ("one", "custom"))
    env = pairs(one, "-e")
    # literals (`lit:`) as NAME=value, a task's own added; host variables by name only
    assert {"HF_DATASETS_OFFLINE=1", "MODE=fast", "HF_TOKEN"} <= set(env)
    assert "MODE=fast" not in pairs(custom, "-e")
    assert "NEMO_EVALUATOR_DATASET_DIR=/datasets" in env
    assert pairs(one, "-v") == [
        f"{FOLDER}/one/results:/results",
        "/host/eval:/eval:ro",
        "/host/scratch:/scratch",
        "/data/sets:/datasets:ro",
        f"{FOLDER}/one/pre_cmd.sh:/launcher/pre_cmd.sh:ro",
        f"{FOLDER}/one/post_cmd.sh:/launcher/post_cmd.sh:ro",
    ]
    # pre/post in their own files (a task's own pre_cmd replaces the evaluation's), never in a line
    assert plan.files["one/pre_cmd.sh"] == "echo shared-pre\n"
    assert plan.files["custom/pre_cmd.sh"] == "echo 'own pre'\nls\n"
    assert plan.files["custom/post_cmd.sh"] == "echo post > /results/post.txt\n"
    assert "own pre" not in plan.files["custom/run.sh"]
    assert custom[custom.index("img:1") + 1 :][:2] == ["bash", "-c"]
    assert custom[-3:] == ["launcher-task", "run", "--x"]
    check_golden("nel_custom.run.sh", plan.files["custom/run.sh"])


def test_no_hooks_no_wrapper():
    plan = plan_of(nel_spec())
    argv = docker_argv(plan.files["one/run.sh"])
    assert "bash" not in argv and not [f for f in plan.files if f.endswith("_cmd.sh")]


def test_hooks_run_in_order_and_post_runs_on_failure_with_the_tasks_exit_code(tmp_path):
    """The in-container wrapper, run by bash itself with the hook files where the mounts put them."""
    from launcher.executors.container.plan import WITH_HOOKS

    hooks = tmp_path / "launcher"
    hooks.mkdir()
    (hooks / "pre_cmd.sh").write_text("echo pre >> log; export FROM_PRE=yes\n")
    (hooks / "post_cmd.sh").write_text("echo post >> log\n")
    script = WITH_HOOKS.replace("/launcher", str(hooks))
    task = 'echo "task $FROM_PRE" >> log; exit 3'
    proc = subprocess.run(["bash", "-c", script, "launcher-task", "bash", "-c", task], cwd=tmp_path)
    assert proc.returncode == 3
    assert (tmp_path / "log").read_text() == "pre\ntask yes\npost\n"
    (hooks / "pre_cmd.sh").write_text("echo pre >> log2; false\n")  # a failing pre_cmd: no task, no post
    proc = subprocess.run(
        ["bash", "-c", script, "launcher-task", "bash", "-c", "echo task >> log2"], cwd=tmp_path
    )
    assert proc.returncode == 1 and (tmp_path / "log2").read_text() == "pre\n"


@pytest.mark.parametrize(
    ("mounts", "words"),
    [
        ({"evaluation": {"/a": "x"}}, "container path 'x' is not absolute"),
        ({"evaluation": {"/a:b": "/x"}}, "contains ':' or ','"),
        ({"deployment": {"/a": "/x:rx"}}, "has the mode 'rx'"),
    ],
)
def test_bad_mounts_are_one_line_errors(mounts, words):
    deployment = {"type": "generic", "image": "srv:1", "command": "serve", "served_model_name": "m"}
    with pytest.raises(ConfigError) as info:
        plan_of(nel_spec(deployment, mounts))
    assert words in str(info.value) and "\n" not in str(info.value)


def test_relative_host_paths_resolve_where_nel_s_scripts_run_the_container():
    """NEL 0.2.6 local: run.sh runs `docker run -v ./x` in the task's folder (Docker resolves it there);
    our one model server is started by run_all.sh in the invocation folder."""
    deployment = {"type": "generic", "image": "srv:1", "command": "serve", "served_model_name": "m"}
    mounts = {"evaluation": {"./cache": "/c", "data/../d": "/d:ro"}, "deployment": {"hf": "/hf"}}
    plan = plan_of(nel_spec(deployment, mounts))
    assert pairs(docker_argv(plan.files["one/run.sh"]), "-v")[1:] == [
        f"{FOLDER}/one/cache:/c",
        f"{FOLDER}/one/d:/d:ro",
    ]
    assert f"-v {FOLDER}/hf:/hf" in plan.files["run_all.sh"]


VLLM = {
    "type": "vllm",
    "image": "vllm/vllm-openai:v0.8.5",
    "checkpoint_path": "/ckpt/m",
    "served_model_name": "my-model",
    "port": 8123,
    "tensor_parallel_size": 2,
    "gpu_memory_utilization": 0.9,
    "extra_args": "--max-model-len 4096",
    "env_vars": {"HF_HUB_OFFLINE": "lit:1", "HF_TOKEN": "host:HOST_HF_TOKEN"},
    "endpoints": {"health": "/health"},
}


def test_vllm_server_container_and_its_command_file():
    plan = plan_of(nel_spec(VLLM, {"deployment": {"/host/hf": "/root/.cache/huggingface"}}))
    run_all = plan.files["run_all.sh"]
    (line,) = [ln for ln in run_all.splitlines() if "docker run" in ln and "server" in ln]
    argv = shlex.split(line.split(" >> ")[0])
    assert argv[argv.index("--gpus") + 1] == "all" and argv[argv.index("--entrypoint") + 1] == ""
    assert pairs(argv, "-v") == ["/ckpt/m:/checkpoint:ro", "/host/hf:/root/.cache/huggingface"]
    assert {"HF_HUB_OFFLINE=1", "HF_TOKEN"} <= set(pairs(argv, "-e"))
    # the command file is the server's stdin (`bash -s`): readable whatever user the image runs as
    assert "-i" in argv and argv[-3:] == ["vllm/vllm-openai:v0.8.5", "bash", "-s"]
    assert line.endswith(" < server_cmd.sh &")
    assert plan.files["server_cmd.sh"] == (
        "vllm serve /checkpoint --tensor-parallel-size=2 --pipeline-parallel-size=1 --data-parallel-size=1"
        " --port 8123 --trust-remote-code --served-model-name my-model --gpu-memory-utilization 0.9"
        " --max-model-len 4096\n"
    )
    assert "http_ok 8123 /health" in run_all and "HOST_HF_TOKEN" in plan.host_env
    check_golden("run_all_vllm.sh", run_all.replace(sys.executable, "PYTHON"))
    subprocess.run(["bash", "-n"], input=run_all, text=True, check=True)


def test_generic_server_runs_the_users_shell_command_without_gpus():
    deployment = {
        "type": "generic",
        "image": "srv:1",
        "command": "serve --port 8123 && echo done",
        "served_model_name": "m",
        "port": 8123,
    }
    plan = plan_of(nel_spec(deployment))
    assert plan.files["server_cmd.sh"] == "serve --port 8123 && echo done\n"
    assert "--gpus" not in plan.files["run_all.sh"] and "serve --port" not in plan.files["run_all.sh"]


@pytest.mark.parametrize(
    ("kind", "values"),
    [
        ("vllm", {"checkpoint_path": "/c"}),
        ("vllm", {"hf_model_handle": "org/model", "data_parallel_size": 4, "extra_args": "--a 1"}),
        ("sglang", {"checkpoint_path": "/c", "tensor_parallel_size": 2}),
        ("sglang", {"hf_model_handle": "org/model", "extra_args": "--b"}),
        ("trtllm", {"checkpoint_path": "/c", "pipeline_parallel_size": 2}),
        ("nim", {}),
    ],
)
def test_default_server_commands_equal_nels(kind, values):
    """NEL 0.2.6's own deployment YAML, resolved by OmegaConf with the same values, gives our command."""
    configs = caches.nel_configs()
    if configs is None:
        from helpers import unavailable

        unavailable(
            f"NEL {caches.NEL_VERSION} is not installed in {caches.nel_venv()}", "run `make nel-venv`"
        )
    from omegaconf import OmegaConf

    legacy.register_resolvers()
    nel = OmegaConf.load(configs / "deployment" / f"{kind}.yaml")
    nel.merge_with({"served_model_name": "served", "image": "img", "hf_model_handle": None, **values})
    nel_command = str(OmegaConf.create({"deployment": nel}).deployment.command)
    ours = Deployment(type=kind, served_model_name="served", **{k: v for k, v in values.items()})
    defaults = {k: nel[k] for k in ("tensor_parallel_size", "gpu_memory_utilization") if k in nel}
    ours = Deployment(**{**ours.__dict__, **{k: v for k, v in defaults.items() if k not in values}})
    assert default_command(ours).split() == nel_command.split()


def slurm_plan(deployment, **execution):
    from launcher.executors.slurm import SlurmConfig

    # the script runs with stand-ins for docker: the proxy with this python, not from its image
    python = {"launcher_python": sys.executable}
    data = {
        "execution": {"output_dir": "/data/evals", "user": "1000:1000", **python, **execution},
        "deployment": deployment,
        "target": {"api_endpoint": ENDPOINT},
        "evaluation": {"tasks": [ONE, {"name": "t2", "container": "img:1", "command": ["run"]}]},
    }
    spec = to_run_spec(data, "slurm", SlurmConfig)
    return plan_of(spec)


@pytest.mark.parametrize(("gpus_per_node", "gpus"), [(0, False), (8, True)])
def test_on_slurm_a_gpu_server_gets_the_gpus_only_when_the_job_reserved_some(gpus_per_node, gpus):
    """A job that reserved no GPUs must not take the node's (docker refuses `--gpus` on a node without)."""
    batch = slurm_plan(VLLM, gpus_per_node=gpus_per_node).files["sbatch.sh"]
    assert ("--gpus all" in batch) is gpus
    assert (f"#SBATCH --gpus-per-node={gpus_per_node}" in batch) is gpus


def test_slurm_server_and_task_share_each_array_element():
    plan = slurm_plan(VLLM, partition="batch")
    batch = plan.files["sbatch.sh"]
    check_golden("sbatch_vllm.sh", batch.replace(sys.executable, "PYTHON"))
    subprocess.run(["bash", "-n"], input=batch, text=True, check=True)
    assert "#SBATCH --exclusive" in batch and plan.images == ("vllm/vllm-openai:v0.8.5",)
    assert f" < {FOLDER}/server_cmd.sh &" in batch and "HOST_HF_TOKEN" in plan.host_env
    assert '--name "launcher-0000abcd-server-${SLURM_ARRAY_TASK_ID}"' in batch


def test_slurm_server_with_pyxis_is_refused_in_one_line():
    with pytest.raises(
        ConfigError, match=r"^deployment: a model server on Slurm runs with container_runtime"
    ):
        slurm_plan(VLLM, container_runtime="pyxis")


def test_slurm_element_runs_server_then_task_then_stops_the_server(tmp_path):
    """sbatch.sh run by bash as Slurm would run element 1, with a real HTTP server on 127.0.0.1 standing in
    for the model server's readiness and a stub `docker` recording its calls (no Slurm or GPU here)."""
    import socket
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    deployment = {**VLLM, "port": port, "endpoints": {"health": "/"}, "env_vars": {}}
    plan = slurm_plan(deployment)
    for rel, text in plan.files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text.replace(FOLDER, str(tmp_path)))
    for job in plan.jobs:
        (tmp_path / job.folder / "logs").mkdir(exist_ok=True)
    (tmp_path / "logs").mkdir(exist_ok=True)
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "docker").write_text(
        f'#!/usr/bin/env bash\ncd {tmp_path}\necho "$*" >> docker.calls\n'
        '[ "$1" = stop ] && touch stopped\n'  # the "server" runs until `docker stop`
        'if [ "$1" = run ] && [[ " $* " == *" -i "* ]]; then\n'
        "  cat > server.stdin; until [ -e stopped ]; do sleep 0.1; done\nfi\n"
    )
    (stub / "docker").chmod(0o755)
    web = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"], cwd=tmp_path
    )
    try:
        env = {"PATH": f"{stub}:{os.environ['PATH']}", "SLURM_ARRAY_TASK_ID": "1"}
        proc = subprocess.run(["bash", str(tmp_path / "sbatch.sh")], env=env, timeout=60, capture_output=True)
    finally:
        web.terminate()
        web.wait()
    assert proc.returncode == 0, proc.stderr
    calls = (tmp_path / "docker.calls").read_text().splitlines()
    run_server = next(c for c in calls if c.startswith("run") and "server-1" in c)
    run_task = next(c for c in calls if c.startswith("run") and "launcher-0000abcd-1 " in c)
    assert calls.index(run_server) < calls.index(run_task)
    assert calls[-1] == "stop -t 5 launcher-0000abcd-server-1"  # stopped after the task, by the EXIT trap
    assert (tmp_path / "server.stdin").read_text() == plan.files["server_cmd.sh"]
    kinds = [ln.split()[0] for ln in (tmp_path / "t2/events.log").read_text().splitlines()]
    assert kinds == ["server-starting", "server-ready", "started", "exited"]
    assert not (tmp_path / "one/events.log").exists()  # element 1 is t2 only
    # Its endpoint proxy ran in t2's folder on the first port + 1 (what t2's run_config.json names) and
    # was stopped by the same trap: its counters are written on SIGTERM.
    url = json.loads((tmp_path / "t2/results/run_config.json").read_text())["url"]
    port = int((tmp_path / "t2/proxy/proxy.port").read_text())
    assert url == f"http://127.0.0.1:{port}/v1/chat/completions" and port == wiring.port_for("0000abcd") + 1
    assert json.loads((tmp_path / "t2/proxy/proxy_stats.json").read_text())["requests"] == 0
