"""Model servers a Slurm array element runs in srun steps, each on its node(s). Pure render functions.

Auxiliary servers (NEL 0.2.6 `auxiliary_deployments`, e.g. a judge), several instances of the model server
behind HAProxy (`num_instances`), and one instance spanning nodes (`vllm_ray`: Ray across the nodes).

As NEL 0.2.6 lays them out (executors/slurm/executor.py, common/auxiliary_deployments.py): the allocation
is the primary's `execution.nodes` followed by each auxiliary's `num_nodes`; each auxiliary server runs on
its first node (one `srun` step running `docker run`), its health endpoint is polled from the batch
script, and `<PREFIX>_PRIMARY_NODE`, `<PREFIX>_<ENDPOINT>_URL` (http://<node>:<port><path>) and
`<PREFIX>_MODEL_ID` are exported. The URL is known only then, so the task's config_ef.yaml carries
`${<PREFIX>_<ENDPOINT>_URL}` (config/legacy.resolve_aux_references) and is filled here, from a kept copy
(config_ef.yaml.in) so that a resubmission on other nodes fills it again. Ours adds `num_nodes: 0`: the
server shares the first node (a one-node cluster, small judges).

Differs from NEL 0.2.6 on purpose: each server runs its own command from its own values (NEL's
`deployment/vllm@auxiliary_deployments.judge` renders the primary's `vllm serve` there, port included);
the server is stopped when the element ends (docker stop in a step on its node); the task container is not
given the <PREFIX>_* variables (the harness reads the URL from config_ef.yaml).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, replace

from launcher.config.legacy import aux_url_variable
from launcher.config.schema import RunSpec
from launcher.errors import ConfigError
from launcher.executors.container.render import ContainerSpec, comment, docker_run_argv, with_host_env
from launcher.executors.container.server import server_plan
from launcher.store import events
from launcher.store.layout import RESULTS

CONFIG = f"{RESULTS}/config_ef.yaml"  # catalogue/nel.CONFIG_FILE in the task's results folder
NAME_ARG = "launcher-aux-container"  # stands for the per-element container name ("$1" in the step)
TASK_DIR = "/launcher-task-dir"  # stands for the element's task folder in a step's mounts ("$PWD")
HAPROXY_CFG = "haproxy.cfg"  # in the task folder, from haproxy.cfg.in (the invocation folder's)
HAPROXY_IN = "/usr/local/etc/haproxy/haproxy.cfg"  # where the haproxy image reads it


@dataclass(frozen=True)
class Auxiliary:
    lines: tuple[str, ...]  # batch-script lines, run in the task folder after the primary server is ready
    files: dict[str, str]  # rel-path in the invocation folder -> text (the servers' command files)
    images: tuple[str, ...]
    host_env: frozenset[str]  # host variable names the servers read
    nodes: int  # nodes the auxiliary servers add to the allocation


def auxiliary_block(spec: RunSpec, invocation_id: str, folder: str, also_stop: str = "") -> Auxiliary | None:
    """The servers an element runs in srun steps (several instances of the model server behind HAProxy,
    then the auxiliary servers), or None. `folder` is the invocation folder on the cluster; `also_stop`:
    what else the exit trap stops after them (e.g. "stop_server": the element's own single server)."""
    d = spec.deployment
    if not spec.auxiliary and d.num_instances == 1 and spec.execution.nodes == 1:
        return None
    if spec.execution.container_runtime != "docker":
        raise ConfigError(
            "auxiliary_deployments" if spec.auxiliary else "execution.num_instances",
            "servers in srun steps run with container_runtime: docker only (pyxis: not yet)",
            "Set execution.container_runtime=docker",
        )
    stop = f"stop_aux; {also_stop}" if also_stop else "stop_aux"
    lines = [
        "# Servers in srun steps: each on its node, stopped when this script ends; logs in logs/.",
        'mapfile -t launcher_nodes < <(scontrol show hostnames "$SLURM_JOB_NODELIST" 2>/dev/null)',
        '[ "${#launcher_nodes[@]}" -gt 0 ] || launcher_nodes=("$(hostname)")',
        "aux_http_ok() {  # host port path; GET with bash alone",
        '  { exec 4<>"/dev/tcp/$1/$2"; } 2>/dev/null || return 1',
        '  printf \'GET %s HTTP/1.0\\r\\nHost: %s\\r\\n\\r\\n\' "$3" "$1" >&4',
        "  local line; read -r -t 5 line <&4; exec 4<&-",
        '  [[ "$line" == *" 200"* ]]',
        "}",
        "aux_pids=()",
        'aux_alive() { local p; for p in "${aux_pids[@]}"; do kill -0 "$p" 2>/dev/null || return 1; done; }',
        "# Stopped by `docker stop` in a step on each server's node(s): srun, signalled, would kill its step",
        "# (SIGKILL) before the container could be stopped.",
        "aux_names=(); aux_nodes=(); aux_ranks=()",
        "stop_aux() {",
        "  local i stops=()",
        '  for i in "${!aux_names[@]}"; do',
        '    srun --overlap --nodes="${aux_ranks[i]}" --ntasks="${aux_ranks[i]}" --ntasks-per-node=1 \\',
        '      --nodelist="${aux_nodes[i]}" bash -c \'n="$1"; [ "$2" -eq 1 ] || n="$1-$SLURM_PROCID"; \'\\',
        '\'docker stop -t 5 "$n" >/dev/null 2>&1\' _ "${aux_names[i]}" "${aux_ranks[i]}" &',
        "    stops+=($!)",
        "  done",
        '  wait "${stops[@]}"',
        '  for i in "${aux_pids[@]}"; do kill "$i" 2>/dev/null; done; wait "${aux_pids[@]}"',
        "}",
        f"trap '{stop}' EXIT",
        "trap 'exit 143' TERM INT",
    ]
    files: dict[str, str] = {}
    images, host_env = [], set()
    if d.num_instances > 1 or (spec.execution.nodes > 1 and d.type != "none"):
        more = instances(spec, invocation_id, folder)
        lines += more.lines
        files.update(more.files)
        images += more.images
        host_env |= more.host_env
    urls = []
    offset = spec.execution.nodes
    for name, a in spec.auxiliary.items():
        plan = server_plan(spec, invocation_id, a, role=name)
        files.update(plan.files)
        images.append(plan.container.image)
        host_env.update(plan.container.env_from_host.values())
        node = 0 if a.num_nodes == 0 else offset
        offset += a.num_nodes
        p = a.env_prefix
        lines += [
            f"# {name}: {comment(plan.container.image)}",
            f'export {p}_PRIMARY_NODE="${{launcher_nodes[{node}]}}"',
            *step_lines(plan.container, plan.stdin, folder, invocation_id, name, f'"${p}_PRIMARY_NODE"'),
            *wait_lines(f'"${p}_PRIMARY_NODE"', a.port, a.health_path, a.startup_timeout, name, name),
        ]
        for endpoint, path in a.endpoints.items():
            if endpoint != "health":
                var = aux_url_variable(p, endpoint)
                urls.append(var)
                lines.append(f'export {var}="http://${{{p}_PRIMARY_NODE}}:{a.port}{path}"')
        lines.append(f"export {p}_MODEL_ID={shlex.quote(a.served_model_name)}")
    lines += fill_config_lines(urls)
    nodes = offset - spec.execution.nodes
    return Auxiliary(tuple(lines), files, tuple(images), frozenset(host_env), nodes)


def instances(spec: RunSpec, invocation_id: str, folder: str) -> Auxiliary:
    """NEL's `num_instances` copies of the model server, one per node of the primary's, and HAProxy on the
    first node balancing them (least connections, health-checked), where the tasks' URL points."""
    d, count = spec.deployment, spec.deployment.num_instances
    per = spec.execution.nodes // count
    # Across nodes: Ray (vllm_ray), or the user's own command, which NEL 0.2.6 runs on every node of the
    # instance with its rank and head address (e.g. vLLM's data parallelism: SLURM_PROCID, MASTER_IP).
    if per > 1 and d.distributed_executor_backend != "ray" and not d.shell_command:
        raise ConfigError(
            "execution.num_nodes",
            f"{per} nodes per instance need a server that spans nodes",
            "Use deployment=vllm_ray (NEL's multi-node vLLM), write its multi-node `command`, "
            "or one node per instance",
        )
    plan = server_plan(spec, invocation_id)
    container = plan.container
    if per > 1:  # each rank's role and its head: NEL's names, set per srun task (ray_command reads them)
        ranked = ("ALL_NODE_IPS", "MASTER_IP", "NODES_PER_INSTANCE", "PROC_ID", "SLURM_PROCID")
        container = replace(container, env_from_host={**container.env_from_host, **{n: n for n in ranked}})
    lb = d.load_balancer
    health = lb.health_check_path or d.health_path
    lines = [
        f"# The model server: {count} instance(s) of {per} node(s) ({comment(plan.container.image)})",
        events.shell(events.SERVER_STARTING),
    ]
    if per > 1:
        lines += [
            "launcher_ips=()  # the nodes' addresses (Ray's head is reached by address)",
            'for n in "${launcher_nodes[@]}"; do',
            '  launcher_ips+=("$(srun --overlap --nodes=1 --ntasks=1 --nodelist="$n" hostname --ip-address'
            " | cut -d' ' -f1)\")",
            "done",
            'export ALL_NODE_IPS="$(IFS=,; echo "${launcher_ips[*]}")"',
            f"export NODES_PER_INSTANCE={per}",
        ]
    for i in range(count):
        if per > 1:
            node = f'"$(IFS=,; echo "${{launcher_nodes[*]:{i * per}:{per}}}")"'
            lines.append(f'export MASTER_IP="${{launcher_ips[{i * per}]}}"')
        else:
            node = f'"${{launcher_nodes[{i}]}}"'
        lines += step_lines(container, plan.stdin, folder, invocation_id, f"server-{i}", node, per)
    for i in range(count):
        node = f'"${{launcher_nodes[{i * per}]}}"' if count > 1 else "127.0.0.1"
        lines += wait_lines(
            node, d.port, d.health_path, d.startup_timeout, f"model server {i}", f"server-{i}"
        )
    if count == 1:  # one instance across nodes: its head is this node, where the tasks' URL points
        lines.append(events.shell(events.SERVER_READY))
        host_env = frozenset(plan.container.env_from_host.values())
        return Auxiliary(tuple(lines), plan.files, (plan.container.image,), host_env, 0)
    sed = " ".join(f'-e "s|{{NODE_{i}}}|${{launcher_nodes[{i * per}]}}|"' for i in range(count))
    proxy = ContainerSpec(
        job_id=f"{invocation_id}.proxy",
        task="load balancer",
        folder="",
        name="",
        image=lb.image,
        command=("haproxy", "-f", HAPROXY_IN),
        env_from_host={},
        env={},
        network=spec.execution.network,
        user=None,
        extra_args=(),
        mounts=(f"{TASK_DIR}/{HAPROXY_CFG}:{HAPROXY_IN}:ro",),
    )
    lines += [
        f"# HAProxy ({comment(lb.image)}) on the first node, port {lb.port}: the tasks' endpoint",
        f"sed {sed} {shlex.quote(folder)}/{HAPROXY_CFG}.in > {HAPROXY_CFG}",
        *step_lines(proxy, "/dev/null", folder, invocation_id, "proxy", '"${launcher_nodes[0]}"'),
        *wait_lines("127.0.0.1", lb.port, health, d.startup_timeout, "load balancer", "proxy"),
        events.shell(events.SERVER_READY),
    ]
    backends = [(f"{{NODE_{i}}}", d.port) for i in range(count)]
    files = {
        **plan.files,
        f"{HAPROXY_CFG}.in": haproxy_config(lb.port, health, lb.health_check_status, backends),
    }
    host_env = frozenset(plan.container.env_from_host.values())
    return Auxiliary(tuple(lines), files, (plan.container.image, lb.image), host_env, 0)


def haproxy_config(port: int, health_path: str, status: int, backends: list[tuple[str, int]]) -> str:
    """HAProxy's configuration as NEL 0.2.6 sets it (executors/slurm/proxy.cfg.template): HTTP mode, long
    timeouts (a generation can take minutes), least-connections balancing, each backend health-checked."""
    lines = [
        "global",
        "    log stdout format raw local0",
        "    maxconn 4096",
        "",
        "defaults",
        "    log global",
        "    mode http",
        "    option httplog",
        "    timeout connect 10s",
        "    timeout client 100000s",
        "    timeout server 100000s",
        "",
        "frontend service_frontend",
        f"    bind *:{port}",
        "    default_backend service_backend",
        "",
        "backend service_backend",
        "    mode http",
        f"    option httpchk GET {health_path}",
        f"    http-check expect status {status}",
        "    option http-server-close",
        "    balance leastconn",
        *(f"    server node{i} {host}:{p} check" for i, (host, p) in enumerate(backends, 1)),
    ]
    return "\n".join(lines) + "\n"


def wait_lines(host: str, port: int, path: str, timeout: int, what: str, log: str) -> list[str]:
    """Poll `host:port path` until 200; any server step ending or the deadline fails the element."""
    return [
        f"deadline=$(( $(date +%s) + {timeout} ))",
        f"until aux_http_ok {host} {port} {shlex.quote(path)}; do",
        *_fail_if("! aux_alive", f"a server exited before the {what} was ready; see logs/{log}.log"),
        *_fail_if(
            '[ "$(date +%s)" -ge "$deadline" ]',
            f"the {what} was not ready within {timeout} s; see logs/{log}.log",
        ),
        "  sleep 1",
        "done",
    ]


def step_lines(
    container, stdin: str, folder: str, invocation_id: str, name: str, node: str, ranks: int = 1
) -> list[str]:
    """One srun step on `node` (a shell word; a node list when `ranks` > 1: one task per node, each with
    its PROC_ID): `docker run` in the background, `docker stop` when the step is signalled or ends (srun
    forwards the batch script's kill). Container names are per element (and rank); TASK_DIR in a mount
    stands for the element's task folder (the step's working directory)."""
    c = replace(container, name=NAME_ARG)
    run = with_host_env(c, docker_run_argv(c, invocation_id, None)).replace(shlex.quote(NAME_ARG), '"$name"')
    run = run.replace(TASK_DIR, '"$PWD"')
    source = f"{folder}/{stdin}" if stdin != "/dev/null" else stdin
    rank = 'export PROC_ID="${SLURM_PROCID:-0}"; name="$1-$PROC_ID"; ' if ranks > 1 else 'name="$1"; '
    step = (
        f'{rank}docker rm -f "$name" >/dev/null 2>&1; '
        f"{run} < {shlex.quote(source)} & pid=$!; "
        """trap 'docker stop -t 5 "$name" >/dev/null 2>&1' EXIT; trap 'exit 143' TERM INT; wait "$pid\""""
    )
    spread = f"--nodes={ranks} --ntasks={ranks} --ntasks-per-node=1" if ranks > 1 else "--nodes=1 --ntasks=1"
    return [
        f"echo \"=== $(date '+%Y-%m-%d %H:%M:%S') start\" >> logs/{name}.log",
        f"srun --overlap {spread} --nodelist={node} bash -c {shlex.quote(step)} _ "
        f'"launcher-{invocation_id}-{name}-${{SLURM_ARRAY_TASK_ID}}" >> logs/{name}.log 2>&1 &',
        "aux_pids+=($!)",
        f'aux_names+=("launcher-{invocation_id}-{name}-${{SLURM_ARRAY_TASK_ID}}"); aux_nodes+=({node}); '
        f"aux_ranks+=({ranks})",
    ]


def fill_config_lines(variables: list[str]) -> list[str]:
    """Fill `${VAR}` in the task's config_ef.yaml from this element's values (NEL: sed over the file)."""
    if not variables:
        return []
    sed = " ".join(f'-e "s|\\${{{v}}}|${{{v}}}|g"' for v in variables)
    return [
        f"if [ -f {CONFIG} ]; then",
        f"  [ -f {CONFIG}.in ] || cp {CONFIG} {CONFIG}.in",
        f"  sed {sed} {CONFIG}.in > {CONFIG}",
        "fi",
    ]


def _fail_if(condition: str, reason: str) -> list[str]:
    fail = f'{events.shell(events.EXITED, "1 $reason")}; echo "error: $reason" >&2; exit 1'
    return [f"  if {condition}; then", f"    reason={shlex.quote(reason)}", f"    {fail}", "  fi"]
