"""Auxiliary model servers (NEL 0.2.6 `auxiliary_deployments`, e.g. a judge) in a Slurm array element. Pure.

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
the server is stopped when the element ends (docker stop in the step's trap); the task container is not
given the <PREFIX>_* variables (the harness reads the URL from config_ef.yaml).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, replace

from launcher.config.legacy import aux_url_variable
from launcher.config.schema import RunSpec
from launcher.errors import ConfigError
from launcher.executors.container.render import comment, docker_run_argv, with_host_env
from launcher.executors.container.server import server_plan
from launcher.store import events
from launcher.store.layout import RESULTS

CONFIG = f"{RESULTS}/config_ef.yaml"  # catalogue/nel.CONFIG_FILE in the task's results folder
NAME_ARG = "launcher-aux-container"  # stands for the per-element container name ("$1" in the step)


@dataclass(frozen=True)
class Auxiliary:
    lines: tuple[str, ...]  # batch-script lines, run in the task folder after the primary server is ready
    files: dict[str, str]  # rel-path in the invocation folder -> text (the servers' command files)
    images: tuple[str, ...]
    host_env: frozenset[str]  # host variable names the servers read
    nodes: int  # nodes the auxiliary servers add to the allocation


def auxiliary_block(spec: RunSpec, invocation_id: str, folder: str, primary: bool) -> Auxiliary | None:
    """The auxiliary servers of an element, or None. `folder` is the invocation folder on the cluster;
    `primary`: the element also runs a primary server (its `stop_server` joins the exit trap)."""
    if not spec.auxiliary:
        return None
    if spec.execution.container_runtime != "docker":
        raise ConfigError(
            "auxiliary_deployments",
            "auxiliary servers run with container_runtime: docker only (pyxis: not yet)",
            "Set execution.container_runtime=docker",
        )
    stop = "stop_aux; stop_server" if primary else "stop_aux"
    lines = [
        "# Auxiliary servers (auxiliary_deployments): each on its node(s) after the primary's, one srun step",
        "# each; stopped when this script ends. Their logs: logs/<name>.log in this task's folder.",
        'mapfile -t launcher_nodes < <(scontrol show hostnames "$SLURM_JOB_NODELIST" 2>/dev/null)',
        '[ "${#launcher_nodes[@]}" -gt 0 ] || launcher_nodes=("$(hostname)")',
        "aux_http_ok() {  # host port path; GET with bash alone",
        '  { exec 4<>"/dev/tcp/$1/$2"; } 2>/dev/null || return 1',
        '  printf \'GET %s HTTP/1.0\\r\\nHost: %s\\r\\n\\r\\n\' "$3" "$1" >&4',
        "  local line; read -r -t 5 line <&4; exec 4<&-",
        '  [[ "$line" == *" 200"* ]]',
        "}",
        "aux_pids=()",
        "stop_aux() {",
        '  local p; for p in "${aux_pids[@]}"; do kill "$p" 2>/dev/null; done; wait "${aux_pids[@]}"',
        "}",
        f"trap '{stop}' EXIT",
        "trap 'exit 143' TERM INT",
    ]
    files: dict[str, str] = {}
    images, host_env, urls = [], set(), []
    offset = spec.execution.nodes
    for name, d in spec.auxiliary.items():
        plan = server_plan(spec, invocation_id, d, role=name)
        files.update(plan.files)
        images.append(plan.container.image)
        host_env.update(plan.container.env_from_host.values())
        node = 0 if d.num_nodes == 0 else offset
        offset += d.num_nodes
        p = d.env_prefix
        lines += [
            f"# {name}: {comment(plan.container.image)}",
            f'export {p}_PRIMARY_NODE="${{launcher_nodes[{node}]}}"',
            *step_lines(plan.container, plan.stdin, folder, invocation_id, name, f"{p}_PRIMARY_NODE"),
            f"deadline=$(( $(date +%s) + {d.startup_timeout} ))",
            f'until aux_http_ok "${p}_PRIMARY_NODE" {d.port} {shlex.quote(d.health_path)}; do',
            *_fail_if(
                '! kill -0 "${aux_pids[-1]}" 2>/dev/null',
                f"the {name} server exited before it was ready; see logs/{name}.log",
            ),
            *_fail_if(
                '[ "$(date +%s)" -ge "$deadline" ]',
                f"the {name} server was not ready within {d.startup_timeout} s; see logs/{name}.log",
            ),
            "  sleep 1",
            "done",
        ]
        for endpoint, path in d.endpoints.items():
            if endpoint != "health":
                var = aux_url_variable(p, endpoint)
                urls.append(var)
                lines.append(f'export {var}="http://${{{p}_PRIMARY_NODE}}:{d.port}{path}"')
        lines.append(f"export {p}_MODEL_ID={shlex.quote(d.served_model_name)}")
    lines += fill_config_lines(urls)
    return Auxiliary(tuple(lines), files, tuple(images), frozenset(host_env), offset - spec.execution.nodes)


def step_lines(container, stdin: str, folder: str, invocation_id: str, name: str, node_var: str) -> list[str]:
    """One srun step on the server's node: `docker run` in the background, `docker stop` when the step is
    signalled or ends (srun forwards the batch script's kill). The container name is per element."""
    c = replace(container, name=NAME_ARG)
    run = with_host_env(c, docker_run_argv(c, invocation_id, None)).replace(shlex.quote(NAME_ARG), '"$1"')
    source = f"{folder}/{stdin}" if stdin != "/dev/null" else stdin
    step = (
        'docker rm -f "$1" >/dev/null 2>&1; '
        f"{run} < {shlex.quote(source)} & pid=$!; "
        """trap 'docker stop -t 5 "$1" >/dev/null 2>&1' EXIT; trap 'exit 143' TERM INT; wait "$pid\""""
    )
    return [
        f"echo \"=== $(date '+%Y-%m-%d %H:%M:%S') start\" >> logs/{name}.log",
        f'srun --overlap --nodes=1 --ntasks=1 --nodelist="${node_var}" bash -c {shlex.quote(step)} _ '
        f'"launcher-{invocation_id}-{name}-${{SLURM_ARRAY_TASK_ID}}" >> logs/{name}.log 2>&1 &',
        "aux_pids+=($!)",
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
