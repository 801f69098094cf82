"""From a RunSpec to each task's container: image, argv, variables, run.sh and run_config.json. Pure.

This is the joint where a task becomes a container: the catalogue gives a known task's image and argv,
the config gives a custom task's; `task_container` builds the ContainerSpec and `plan_tasks` the files.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum

from launcher import __version__
from launcher.catalog import RUN_CONFIG_IN_CONTAINER, Known, TaskInfo, resolve
from launcher.config import legacy
from launcher.config.schema import RunSpec, TaskSpec
from launcher.config.values import changes_how_programs_run
from launcher.errors import ConfigError
from launcher.executors.container import shards
from launcher.executors.container.config import ContainerConfig
from launcher.executors.container.render import (
    DOCKER,
    RUNTIME_USER,
    ContainerSpec,
    TaskLaunch,
    changes_the_host_client,
    render_run_sh,
    script_variable,
)
from launcher.harness.contract import RunConfig
from launcher.model import PlannedJob
from launcher.proxy import wiring as proxy_wiring
from launcher.store.layout import RESULTS, RUN, RUN_CONFIG_FILE, task_folder_names


class TaskKind(Enum):
    BUILTIN = "builtin"  # one of our benchmarks, run by our harness image
    CATALOGUE = "catalogue"  # a NEL 0.2.6 catalogue task, run by its harness image with NEL's files
    CUSTOM = "custom"  # the config's own image and argv (`container` and `command` on the task)


@dataclass(frozen=True)
class TaskPlan:
    jobs: tuple[PlannedJob, ...]
    containers: tuple[ContainerSpec, ...]
    files: dict[str, str]  # <task>/run.sh and <task>/results/run_config.json
    host_env: frozenset[str]  # host variable names the tasks read when they run


# NEL 0.2.6 (common/helpers.py get_eval_factory_command) sources pre_cmd.sh in the task container, then runs
# the evaluation in a subshell whose EXIT trap sources post_cmd.sh and keeps the evaluation's exit code.
# Ours is the same shape around the task's argv ("$@"); the two files are mounted read-only, never inlined.
# The shells wait out SIGTERM (`trap :`; the task itself gets it from tini, see below), so post_cmd runs
# once the task has ended, even when it is killed.
HOOKS_DIR = "/launcher"
PRE, POST = "pre_cmd.sh", "post_cmd.sh"
WITH_HOOKS = (
    f"trap : TERM INT; source {HOOKS_DIR}/{PRE} && "
    f'(trap : TERM INT; trap "code=\\$?; source {HOOKS_DIR}/{POST}; exit \\$code" EXIT; "$@")'
)
DATASET_DIR_VAR = "NEMO_EVALUATOR_DATASET_DIR"  # NEL 0.2.6 local executor: where the dataset is mounted


def bind(host: str, container: str, key: str, read_only: bool = False, base: str | None = None) -> str:
    """One `host:container[:ro]` bind mount, or the one-line error naming `key`. The container side may
    carry NEL's `:ro`/`:rw` suffix. A relative host path is taken from `base`, the folder NEL 0.2.6's
    script would run the container from (its `docker run -v ./x` resolves there); on Slurm the boundary
    already made it absolute (config.legacy.absolute_mounts)."""
    target, _, mode = container.partition(":")
    if mode not in ("", "ro", "rw"):
        raise ConfigError(
            key, f"{container!r} has the mode {mode!r}", "Write /container/path, optionally :ro"
        )
    if base and not host.startswith(("/", "~")):
        host = os.path.normpath(os.path.join(base, host))
    for what, path in (("host", host), ("container", target)):
        if not path.startswith("/") and not (what == "host" and path.startswith("~")):
            raise ConfigError(key, f"{what} path {path!r} is not absolute", "Give absolute paths")
        if ":" in path or "," in path:
            raise ConfigError(key, f"{what} path {path!r} contains ':' or ','", "Choose a path without them")
    mode = "ro" if read_only else mode
    return f"{os.path.expanduser(host)}:{target}" + (f":{mode}" if mode else "")


def task_mounts(spec: RunSpec, task: TaskSpec, base: str | None = None) -> tuple[str, ...]:
    """execution.mounts.evaluation, mount_home ($HOME at the same path) and the task's dataset_dir (ro);
    relative host paths from `base` (the task's folder, where NEL's local run.sh starts its container)."""
    out = [
        bind(h, c, f"execution.mounts.evaluation.{h}", base=base) for h, c in spec.mounts.evaluation.items()
    ]
    if spec.mounts.mount_home:
        home = os.path.expanduser("~")
        out.append(bind(home, home, "execution.mounts.mount_home"))
    if task.dataset_dir:
        key = f"{task_key(spec, task)}.dataset_dir"
        out.append(bind(task.dataset_dir, task.dataset_mount_path, key, read_only=True, base=base))
    return tuple(out)


def task_key(spec: RunSpec, task: TaskSpec) -> str:
    """`evaluation.tasks[i]` of this task object, for messages."""
    index = spec.evaluation.positions.get(id(task))
    return f"evaluation.tasks[{spec.evaluation.tasks.index(task) if index is None else index}]"


def task_container(
    spec: RunSpec,
    task: TaskSpec,
    job_id: str,
    folder: str,
    name: str,
    cfg: ContainerConfig,
    proxy_port: int | None = None,
    adapter_host: str | None = None,
    present: frozenset[str] | None = None,
    here: bool = True,
) -> tuple[ContainerSpec, dict[str, str], TaskKind, str]:
    """The container of one task, the files it reads from its results folder (relative to the task
    folder), its kind and why its image (catalogue tasks; else ""): a built-in runs our harness, a NEL
    catalogue task its harness image with NEL's config_ef.yaml (catalog.image_choice: `present`, the
    candidate images on this machine, None when unknown; `here`, the tasks run on this machine's Docker),
    a custom task the config's own image and argv. Behind the endpoint proxy (`proxy_port`)
    the task gets the proxy's URL and, as API_KEY, the proxy's credential instead of the key: only the
    proxy holds the key. `adapter_host`: the loopback address of a catalogue task's own nemo-evaluator
    adapter server (catalog.nel.adapter_host)."""
    key = task_key(spec, task)
    known = resolve(task.name, f"{key}.name")
    env_from_host = spec.env_vars(task)
    for var, host in sorted(env_from_host.items()):  # over SSH these are exported before `exec sbatch`
        if changes_how_programs_run(host):
            where = f"{key}.env_vars" if var in task.env_vars else "evaluation.env_vars"
            raise ConfigError(
                f"{where}.{var}",
                f"reads the host variable {host}, which changes how programs load or where they connect",
                "Copy the value into a variable of another name and pass that one",
            )
    if proxy_port is not None:
        env_from_host = without_proxied_key(spec, env_from_host)
        env_from_host[proxy_wiring.TOKEN_CARRIER] = proxy_wiring.TOKEN_ENV  # the proxy's credential
    env = {"LAUNCHER_TASK": task.name, "LAUNCHER_CONFIG": RUN_CONFIG_IN_CONTAINER, "HOME": "/tmp"}
    code, kind, why, mounts = False, TaskKind.CATALOGUE, "", ()
    if task.command:  # the config's own argv wins over any catalogue entry
        kind = TaskKind.CUSTOM
        if not task.container and known is None:
            raise ConfigError(f"{key}.container", "a custom command needs an image", "Set container too")
        image = task.container or (known.builtin.image if known.builtin else nel_image(known, task, spec))
        command = tuple(task.command)
        files = {RUN_CONFIG_FILE: run_config(spec, task, None, env_from_host, proxy_port)}
    elif known is None:
        raise ConfigError(
            f"{key}.name",
            f"{task.name!r} is not a known task",
            "`launcher ls tasks` lists them; set container and command on the task to run your own image",
        )
    elif known.builtin is not None:
        info = known.builtin
        code, kind = info.code, TaskKind.BUILTIN
        image, command = task.container or info.image, info.command
        files = {RUN_CONFIG_FILE: run_config(spec, task, info, env_from_host, proxy_port)}
    else:
        from launcher.catalog import image_choice
        from launcher.catalog.nel import ADAPTER_HOST_VAR

        harness_images = spec.evaluation.harness_images
        mode = cfg.catalog_images
        choice = image_choice.choose(known.nel, task.container, harness_images, mode, present, here)
        rendered = render_nel(spec, task, known, env_from_host, proxy_port, adapter_host, choice.image)
        literal = spec.literal_env(task)  # passed as values by with_config_extras, not from the host

        if not loopback(literal.get(ADAPTER_HOST_VAR, "127.0.0.1")):
            raise ConfigError(
                f"{key}.env_vars.{ADAPTER_HOST_VAR}",
                f"{literal[ADAPTER_HOST_VAR]!r} would open nemo-evaluator's adapter server beyond this host",
                "Use a loopback address (127.x.y.z, ::1 or localhost), or leave it to the launcher",
            )
        env_from_host = {n: env_from_host.get(n, n) for n in rendered.env_names if n not in literal}
        env.update(rendered.env)
        env.update({k: v for k, v in choice.env.items() if k not in literal})  # a local build's own
        mounts = tuple(bind(h, c, image_choice.KEY, read_only=True) for h, c in choice.mounts.items())
        image, command, why = rendered.image, rendered.argv, choice.why
        files = {f"{RESULTS}/{rel}": text for rel, text in rendered.files.items()}
    for var in sorted({*env_from_host, *spec.literal_env(task)}):  # pyxis sets literals as `K=V srun`
        mine = var in task.env_vars or var in task.literal_env
        where = f"{key}.env_vars" if mine else "evaluation.env_vars"
        if changes_the_host_client(var) and var in env_from_host:
            raise host_client_error(f"{where}.{var}")
        if script_variable(var):
            raise script_variable_error(f"{where}.{var}")
    container = ContainerSpec(
        job_id=job_id,
        task=task.name,
        folder=folder,
        name=name,
        image=image,
        command=tuple(command),
        env_from_host=env_from_host,
        env=env,
        network=cfg.network,
        user=cfg.user or RUNTIME_USER,
        extra_args=tuple(cfg.extra_docker_args),
        sandbox=code,
        mounts=mounts,
    )
    return container, files, kind, why


def loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def without_proxied_key(spec: RunSpec, env: dict[str, str]) -> dict[str, str]:
    """The task's variables without the endpoint key: behind the proxy only the proxy holds it."""
    key = spec.target.api_endpoint.api_key
    return {k: v for k, v in env.items() if not (k == "API_KEY" and key and v == key)}


def nel_image(known: Known, task: TaskSpec, spec: RunSpec) -> str:
    from launcher.catalog import nel

    return nel.image_for(known.nel, task.container, spec.evaluation.harness_images)


def render_nel(
    spec: RunSpec,
    task: TaskSpec,
    known: Known,
    env_from_host: dict[str, str],
    proxy_port: int | None,
    adapter_host: str | None = None,
    image: str | None = None,
):
    """A NEL catalogue task as NEL 0.2.6 renders it: only what the user set explicitly is passed (the
    harness's own defaults apply otherwise, as in NEL); the key by the name NEL's config gives it, or, behind
    the endpoint proxy, the proxy's URL and its credential (API_KEY) instead of the key. Ours besides
    (launcher.catalog.nel): the adapter server's own loopback address, and behind the proxy, progress
    tracking. `image`: the one catalog.image_choice chose (else image_for's)."""
    from dataclasses import asdict

    from launcher.catalog import nel

    endpoint = spec.target.api_endpoint
    explicit = {k: v for k, v in asdict(spec.target.generation).items() if v is not None}
    explicit.update({k: v for k, v in asdict(spec.explicit_params(task)).items() if v is not None})
    params = nel.nel_params(explicit, f"{task_key(spec, task)}.params")
    config = nel.merge_config({"config": {"params": params}} if params else {}, task.nemo_evaluator_config)
    names = [n for n in env_from_host if not (n == "API_KEY" and env_from_host[n] == endpoint.api_key)]
    pre_cmd, post_cmd = spec.pre_post(task)
    url = server_url(spec, task.endpoint_type or known.nel.endpoint_type)
    return nel.render_task(
        known.nel,
        config,
        url=url if proxy_port is None else proxy_wiring.task_url(url, proxy_port),
        model_id=endpoint.model_id,
        api_key_name=endpoint.api_key if proxy_port is None else proxy_wiring.TOKEN_CARRIER,
        endpoint_type=task.endpoint_type,
        env_names=tuple([*names, *spec.literal_env(task)]),
        container=image or task.container,
        harness_images=spec.evaluation.harness_images,
        metadata={"launcher": {"version": __version__, "task": task.name}},
        pre_cmd=pre_cmd,
        post_cmd=post_cmd,
        adapter_host=adapter_host,
        progress_url=None if proxy_port is None else proxy_wiring.progress_url(proxy_port),
    )


def server_url(spec: RunSpec, endpoint_type: str) -> str:
    """The URL a catalogue task of `endpoint_type` gets. With a deployment whose server the target points
    at (the deployment option sets its chat URL), NEL 0.2.6 uses the server's path for the task's endpoint
    type (common/helpers.py get_endpoint_url: `deployment.endpoints[endpoint_type]`); else the target's."""
    url, d = spec.target.api_endpoint.url, spec.deployment
    paths = {"chat": "/v1/chat/completions", "completions": "/v1/completions", **d.endpoints}
    own = url.startswith("http://127.0.0.1:") and url.endswith(paths["chat"])
    if d.type == "none" or not own or endpoint_type not in paths:
        return url
    return url[: -len(paths["chat"])] + paths[endpoint_type]


def script_variable_error(key: str) -> ConfigError:
    return ConfigError(
        key,
        "is a variable of the launcher's scripts or of bash itself (UID, RANDOM, stopping, rc, ...): "
        "passing it would change the script, not just the container",
        "Pass the value under another name and set it inside the container's command",
    )


def host_client_error(key: str) -> ConfigError:
    return ConfigError(
        key,
        "this name would also change how the host runs docker (PATH, HOME, IFS, DOCKER_*, LD_*, ...)",
        "Pass the value under another name and set it inside the container's command",
    )


def with_config_extras(
    spec: RunSpec, task: TaskSpec, c: ContainerSpec, task_dir: str, hooks: bool = True
) -> ContainerSpec:
    """The task's container with what the config adds around any task: NEL `lit:` variables (a name also
    passed from the host is the host's; the launcher's own names win), execution.mounts.evaluation,
    mount_home, dataset_dir, and pre_cmd/post_cmd (their files in `task_dir`, mounted read-only; `hooks`
    False for a task whose own command already runs them, e.g. a NEL catalogue task's)."""
    base = legacy.relative_path_base(spec.executor) or task_dir
    command, mounts = c.command, task_mounts(spec, task, base)
    env = {k: v for k, v in spec.literal_env(task).items() if k not in c.env_from_host}
    if task.dataset_dir:
        env[DATASET_DIR_VAR] = task.dataset_mount_path
    if hooks and any(spec.pre_post(task)):
        command = ("bash", "-c", WITH_HOOKS, "launcher-task", *command)
        mounts += tuple(f"{task_dir}/{f}:{HOOKS_DIR}/{f}:ro" for f in (PRE, POST))
        # docker's --init is tini: with this it signals the whole group on `docker stop`, so the task gets
        # SIGTERM first and post_cmd runs after it ended (tini 0.19; tests/integration/test_nel_deployment).
        env["TINI_KILL_PROCESS_GROUP"] = "1"
    mine = {m.split(":")[1] for m in mounts}  # a local build's data mount yields to the config's own there
    kept = tuple(m for m in c.mounts if m.split(":")[1] not in mine)
    return replace(c, command=command, env={**env, **c.env}, mounts=(*kept, *mounts))


def hook_files(spec: RunSpec, task: TaskSpec) -> dict[str, str]:
    """pre_cmd.sh and post_cmd.sh (relative to the task folder) when the task has either."""
    pre, post = spec.pre_post(task)
    return {PRE: pre + "\n", POST: post + "\n"} if pre or post else {}


def plan_tasks(
    spec: RunSpec,
    invocation_id: str,
    folder: str,
    cfg: ContainerConfig,
    launch: TaskLaunch = DOCKER,
    reserved: frozenset[str] = frozenset(),
    proxy_port: int | Callable[[int], int] | None = None,
    present: frozenset[str] | None = None,
    here: bool = True,
) -> TaskPlan:
    """Every selected task's container and files; `folder` is where the scripts will run. `proxy_port`: one
    port for all tasks (local: one proxy per invocation) or element index (model.elements) -> port (Slurm:
    one proxy per array element, so each element's run_config.json names its own port). `present`, `here`:
    what a catalogue task's image choice reads (task_container)."""
    if cfg.max_parallel < 1:
        raise ConfigError("execution.max_parallel", f"must be at least 1, got {cfg.max_parallel}")
    from launcher.catalog.nel import adapter_host

    selected = spec.selected()
    # A task's id (its name, or NEL's <name>.<position> for a repeated name) names its folder and job, so
    # repeats get their own folders, results and status rows; resume reads them back from the record.
    # The proxy's state folder sits next to the task folders (locally in the invocation) on every executor.
    folders = task_folder_names([i for i, _ in selected], reserved | {proxy_wiring.STATE_DIR})
    jobs, containers, files, host_env = [], [], {}, set()
    element = 0  # the position in model.elements of this task (or of its first shard)
    port_of = proxy_port if callable(proxy_port) else lambda _: proxy_port
    for n, ((task_id, task), task_folder) in enumerate(zip(selected, folders, strict=True)):
        job_id = f"{invocation_id}.{n}"
        c, task_files, kind, why = task_container(
            spec,
            task,
            job_id,
            task_folder,
            f"launcher-{invocation_id}-{n}",
            cfg,
            port_of(element),
            adapter_host(invocation_id, n),
            present,
            here,
        )
        nel_task = kind == TaskKind.CATALOGUE  # a catalogue task runs its own pre/post (NEL's way)
        count = spec.shards(task)
        merge = shards.merge_argv(c.command) if count > 1 else None
        if count > 1 and (nel_task or merge is None):
            raise shards.refuse(task_key(spec, task), task.name, c.command, nel_task)
        whole = replace(c, task=task_id)  # the merge step's: without the config's hooks and mounts
        c = with_config_extras(spec, task, c, f"{folder}/{task_folder}", hooks=not nel_task)
        launch.check(c, task_key(spec, task), f"{folder}/{task_folder}/{RESULTS}")
        c = replace(c, task=task_id)  # labels and run.sh name the id; the container still gets the name
        if not nel_task:
            files.update({f"{task_folder}/{rel}": text for rel, text in hook_files(spec, task).items()})
        host_env.update(v for v in c.env_from_host.values() if v != proxy_wiring.TOKEN_ENV)  # run_all.sh's
        known = resolve(task.name)  # table lookups: cheap even for 1,000 tasks
        benchmark = known.name if known else ""
        job = PlannedJob(
            job_id, task_id, task_folder, c.image, c.command, benchmark, count if count > 1 else 0, why
        )
        if merge is None:
            files[f"{task_folder}/{RUN}"] = render_run_sh(c, invocation_id, folder, launch, cfg.stop_grace)
            containers.append(c)
        else:
            for part in shards.shard_containers(job, c):
                files[f"{part.folder}/{RUN}"] = render_run_sh(
                    part, invocation_id, folder, launch, cfg.stop_grace
                )
                containers.append(part)
            merger = shards.merge_container(job, whole, merge, folder)
            gate = shards.merge_gate(job)
            files[f"{task_folder}/{RUN}"] = render_run_sh(
                merger, invocation_id, folder, launch, cfg.stop_grace, gate
            )
            ports = [port_of(element + k) for k in range(count)]
            files.update(shards.shard_files(job, task_files[RUN_CONFIG_FILE], ports))
        files.update({f"{task_folder}/{rel}": text for rel, text in task_files.items()})
        jobs.append(job)
        element += len(job.parts) or 1
    return TaskPlan(tuple(jobs), tuple(containers), files, frozenset(host_env))


def run_config(
    spec: RunSpec, task: TaskSpec, info: TaskInfo | None, env: dict[str, str], proxy_port: int | None = None
) -> str:
    """/results/run_config.json (launcher.harness.contract.RunConfig). Names of variables only, never
    values: `env` is the task's variables as task_container passes them (behind the proxy without the
    key). The target's generation values travel apart from what the evaluation/task set, so a built-in's
    own defaults (e.g. a token budget) beat the target's but not the user's. Behind the proxy: its URL."""
    from dataclasses import fields

    endpoint_type, url = endpoint_for(spec, task, info)
    if proxy_port is not None:
        url = proxy_wiring.task_url(url, proxy_port)
    plain = lambda p: {f.name: getattr(p, f.name) for f in fields(p)}  # noqa: E731  # flat: no asdict copies
    params = plain(spec.explicit_params(task))
    return RunConfig(
        task=info.name if info else task.name,
        model_id=spec.target.api_endpoint.model_id,
        url=url,
        endpoint_type=endpoint_type,
        api_key_env="API_KEY" if "API_KEY" in env else None,
        params={k: v for k, v in params.items() if k not in ("repeats", "shards")},
        target_params={k: v for k, v in plain(spec.target.generation).items() if v is not None},
        repeats=params["repeats"],
        redact_env=tuple(sorted(env)),
        proxied=proxy_port is not None,
    ).to_json()


def endpoint_for(spec: RunSpec, task: TaskSpec, info: TaskInfo | None) -> tuple[str, str]:
    """(endpoint type, URL) a built-in task uses: the task's or the target's type when the task supports
    it, else the one it supports, at the target's URL with the path swapped between /chat/completions
    and /completions (the OpenAI layout every server we know follows)."""
    endpoint = spec.target.api_endpoint
    want = task.endpoint_type or endpoint.type
    supported = info.endpoint_types if info else (want,)
    key = task_key(spec, task)
    if want not in supported:
        if task.endpoint_type:
            raise ConfigError(
                f"{key}.endpoint_type", f"{task.name} supports {', '.join(supported)} endpoints only"
            )
        want = supported[0]
    if want == endpoint.type:
        return want, endpoint.url
    chat, plain = "/chat/completions", "/completions"
    base = endpoint.url.rstrip("/")
    if base.endswith(chat):
        return want, base[: -len(chat)] + plain
    if base.endswith(plain):  # already a completions URL (the target's `type` left at its default)
        return want, base if want == "completions" else base[: -len(plain)] + chat
    raise ConfigError(
        "target.api_endpoint.url",
        f"task {task.name} needs a {want} endpoint and {endpoint.url!r} does not end in {chat} or {plain}",
        f"Point the target at an OpenAI-style URL, or set {key}.endpoint_type",
    )
