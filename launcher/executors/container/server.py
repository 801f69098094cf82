"""From a RunSpec's deployment to the model server's container and files. Pure.

Our own `type: server` runs `command` as an argv in the image (its entrypoint kept). NEL 0.2.6's types
(vllm, sglang, nim, trtllm, generic) run a shell command, as NEL does: the user's `command`, or NEL's default
for the type, written to `server_cmd.sh` in the invocation folder and run with `bash` (mounted read-only,
never inlined into a line), with the image's entrypoint cleared (NEL: `--entrypoint ''`).
Facts from nemo-evaluator-launcher 0.2.6: configs/deployment/<type>.yaml (commands) and
executors/local/executor.py (checkpoint at /checkpoint:ro, execution.mounts.deployment, `--gpus all`).
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass

from launcher.config import legacy
from launcher.config.schema import Deployment, RunSpec
from launcher.errors import ConfigError
from launcher.executors.container.plan import bind, host_client_error, script_variable_error
from launcher.executors.container.render import (
    ContainerSpec,
    changes_the_host_client,
    comment,
    docker_run_argv,
    script_variable,
    with_host_env,
)
from launcher.store import events

SERVER_CMD = "server_cmd.sh"  # in the invocation folder
CHECKPOINT = "/checkpoint"
GPU_TYPES = ("vllm", "sglang", "nim", "trtllm")  # servers that need GPUs: `--gpus all` as NEL gives them
# NEL 0.2.6 configs/deployment/nim.yaml
NIM_COMMAND = "/opt/nvidia/nvidia_entrypoint.sh /opt/nim/start_server.sh"


@dataclass(frozen=True)
class ServerSpec:
    """A model server run_all.sh starts first (logs in logs/server.log) and stops when it ends."""

    container: ContainerSpec
    port: int
    health_path: str
    startup_timeout: int
    stdin: str = "/dev/null"  # e.g. the server's command file for `bash -s` (path relative to the folder)


@dataclass(frozen=True)
class ServerPlan:
    container: ContainerSpec
    files: dict[str, str]  # rel-path in the invocation folder -> text
    stdin: str = "/dev/null"  # what the server container reads on stdin (rel-path in the folder)


def default_command(d: Deployment) -> str:
    """NEL 0.2.6's command for the type, from the same values (model: hf_model_handle or /checkpoint)."""
    q = shlex.quote
    model = q(d.hf_model_handle or CHECKPOINT)
    extra = f" {d.extra_args}" if d.extra_args else ""
    if d.type == "vllm":
        memory = (
            f" --gpu-memory-utilization {d.gpu_memory_utilization}"
            if d.gpu_memory_utilization is not None
            else ""
        )
        sizes = (
            f"--tensor-parallel-size={d.tensor_parallel_size}"
            f" --pipeline-parallel-size={d.pipeline_parallel_size}"
            f" --data-parallel-size={d.data_parallel_size}"
        )
        serve = (
            f"vllm serve {model} {sizes} --port {d.port} --trust-remote-code"
            f" --served-model-name {q(d.served_model_name)}{memory}{extra}"
        )
        if d.distributed_executor_backend:
            serve += f" --distributed-executor-backend {q(d.distributed_executor_backend)}"
        return ray_command(serve) if d.distributed_executor_backend == "ray" else serve
    if d.type == "sglang":
        return (
            f"python3 -m sglang.launch_server --model-path {model} --host 0.0.0.0 --port {d.port}"
            f" --served-model-name {q(d.served_model_name)} --tp-size {d.tensor_parallel_size}"
            f" --dp-size {d.data_parallel_size} --pp-size {d.pipeline_parallel_size}{extra}"
        )
    if d.type == "trtllm":
        return (
            f"mpirun --allow-run-as-root --oversubscribe trtllm-serve serve {CHECKPOINT}"
            f" --tp_size={d.tensor_parallel_size} --pp_size={d.pipeline_parallel_size}"
            f" --host 0.0.0.0 --port {d.port} --backend pytorch --trust_remote_code{extra}"
        )
    if d.type == "nim":
        return NIM_COMMAND
    raise ConfigError(
        "deployment.command",
        f"missing: a {d.type} deployment needs the server's command",
        "Set deployment.command",
    )


# Ray's ports, fixed so that the nodes of an instance agree (NEL 0.2.6 configs/deployment/vllm_ray.yaml).
RAY_PORT = 6379
RAY_FIXED_PORTS = (
    "--node-manager-port=8266 --object-manager-port=8267 --metrics-export-port=8269"
    " --dashboard-agent-grpc-port=8270 --dashboard-agent-listen-port=8271 --runtime-env-agent-port=8272"
)


def ray_command(serve: str) -> str:
    """vLLM over a Ray cluster spanning an instance's nodes, as NEL's vllm_ray runs it: the srun task of
    rank 0 (PROC_ID) starts Ray's head at MASTER_IP, waits for NODES_PER_INSTANCE nodes, then serves; the
    others join the head and block. PROC_ID, MASTER_IP, NODES_PER_INSTANCE: set per srun task by the
    batch script. A worker's own address is the one its route to the head leaves from."""
    return "\n".join(
        [
            "set -euo pipefail",
            f'ray_ports="{RAY_FIXED_PORTS}"',
            'echo "ray: rank $PROC_ID of $NODES_PER_INSTANCE on $(hostname), head $MASTER_IP"',
            'if [ "$PROC_ID" -eq 0 ]; then',
            '  export VLLM_HOST_IP="$MASTER_IP"',
            f"  ray start --head --port={RAY_PORT} $ray_ports",
            f'  export RAY_ADDRESS="$MASTER_IP:{RAY_PORT}"',
            '  until [ "$(ray status 2>/dev/null | grep -c node_)" -ge "$NODES_PER_INSTANCE" ]; do',
            "    sleep 10",
            "  done",
            "  ray status",
            f"  {serve}",
            "else",
            "  VLLM_HOST_IP=$(python3 -c 'import socket, sys; s = socket.socket(socket.AF_INET,"
            ' socket.SOCK_DGRAM); s.connect((sys.argv[1], 1)); print(s.getsockname()[0])\' "$MASTER_IP")',
            "  export VLLM_HOST_IP",
            f'  until ray start --address="$MASTER_IP:{RAY_PORT}" $ray_ports --block; do sleep 5; done',
            "fi",
        ]
    )


def gives_gpus(spec: RunSpec) -> bool:
    """Whether a GPU server gets the node's GPUs (`--gpus all`). On Slurm only when the job reserved GPUs
    (gpus_per_node, NEL's `gres`): a job that reserved none must not take the node's, and on a node
    without GPUs docker refuses the flag. Elsewhere always, as NEL 0.2.6's local executor."""
    return getattr(spec.execution, "gpus_per_node", None) != 0


def server_plan(
    spec: RunSpec,
    invocation_id: str,
    d: Deployment | None = None,
    role: str = "server",
    base: str | None = None,
) -> ServerPlan | None:
    """The model server of an invocation, or None (deployment: none). `d` and `role` for an auxiliary
    server (e.g. role "judge": its command file server_cmd-judge.sh, container launcher-<id>-judge).
    `base`: the folder its script starts it from, for relative host paths (on Slurm: the home)."""
    base = legacy.relative_path_base(spec.executor) or base
    d = spec.deployment if d is None else d
    if d.type == "none":
        return None
    key = "deployment" if role == "server" else f"auxiliary_deployments.{role}"
    for name in sorted(d.env_vars):  # `PATH="$X" docker run` would run another docker
        if changes_the_host_client(name):
            raise host_client_error(f"{key}.env_vars.{name}")
        if script_variable(name):
            raise script_variable_error(f"{key}.env_vars.{name}")
    extra = spec.mounts.deployment if role == "server" else spec.mounts.auxiliary.get(role, {})
    where = "execution.mounts.deployment" if role == "server" else f"execution.mounts.auxiliary.{role}"
    mounts = [bind(h, c, f"{where}.{h}", base=base) for h, c in extra.items()]
    if spec.mounts.mount_home:
        home = os.path.expanduser("~")
        mounts.append(bind(home, home, "execution.mounts.mount_home"))
    if d.checkpoint_path:
        checkpoint = bind(d.checkpoint_path, CHECKPOINT, f"{key}.checkpoint_path", read_only=True, base=base)
        mounts.insert(0, checkpoint)
    files: dict[str, str] = {}
    command, flags, stdin = d.command, [], "/dev/null"
    if d.type != "server":
        cmd_file = SERVER_CMD if role == "server" else SERVER_CMD.replace(".sh", f"-{role}.sh")
        files[cmd_file] = f"{d.shell_command or default_command(d)}\n"
        command, stdin = ("bash", "-s"), cmd_file
        flags = ["-i", "--entrypoint", ""]
        if d.type in GPU_TYPES and gives_gpus(spec):
            flags = ["--gpus", "all", *flags]
    env = {k: v for k, v in d.literal_env.items() if k not in d.env_vars}
    container = ContainerSpec(
        job_id=f"{invocation_id}.{role}",
        task=f"deployment {d.name}".strip() if role == "server" else f"auxiliary deployment {role}",
        folder="",
        name=f"launcher-{invocation_id}-{role}",
        image=d.image,
        command=tuple(command),
        env_from_host=dict(d.env_vars),
        env=env,
        network=spec.execution.network,
        user=None,
        extra_args=(*flags, *d.extra_docker_args),
        mounts=tuple(mounts),
    )
    return ServerPlan(container, files, stdin)


def server_lines(server: ServerSpec, invocation_id: str) -> list[str]:
    c = server.container
    run = with_host_env(c, docker_run_argv(c, invocation_id, None))
    fail = f'{events.shell(events.EXITED, "1 $reason")}; echo "error: $reason" >&2; exit 1'
    return [
        f"# The model server ({comment(c.image)}); stopped when this script ends or is killed.",
        f"stop_server() {{ docker stop -t 5 {shlex.quote(c.name)} >/dev/null 2>&1; }}",
        "trap stop_server EXIT",
        "trap 'exit 143' TERM INT",
        "http_ok() {  # GET with bash alone: the host needs no curl",
        '  { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1',
        "  printf 'GET %s HTTP/1.0\\r\\nHost: 127.0.0.1\\r\\n\\r\\n' \"$2\" >&3",
        "  local line; read -r -t 5 line <&3; exec 3<&-",
        '  [[ "$line" == *" 200"* ]]',
        "}",
        f"docker rm -f {shlex.quote(c.name)} >/dev/null 2>&1",
        events.shell(events.SERVER_STARTING),
        "echo \"=== $(date '+%Y-%m-%d %H:%M:%S') start\" >> logs/server.log",
        f"{run} >> logs/server.log 2>&1 < {shlex.quote(server.stdin)} &",
        "server_pid=$!",
        f"deadline=$(( $(date +%s) + {server.startup_timeout} ))",
        f"until http_ok {server.port} {shlex.quote(server.health_path)}; do",
        '  if ! kill -0 "$server_pid" 2>/dev/null; then',
        '    reason="the model server exited before it was ready; see logs/server.log"',
        f"    {fail}",
        "  fi",
        '  if [ "$(date +%s)" -ge "$deadline" ]; then',
        f'    reason="the model server was not ready within {server.startup_timeout} s; see logs/server.log"',
        f"    {fail}",
        "  fi",
        "  sleep 1",
        "done",
        events.shell(events.SERVER_READY),
    ]
