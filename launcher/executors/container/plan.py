"""From a RunSpec to each task's container: image, argv, variables, run.sh and run_config.json. Pure.

This is the joint where a task becomes a container: the catalogue gives a known task's image and argv,
the config gives a custom task's; `task_container` builds the ContainerSpec and `plan_tasks` the files.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace

from launcher.catalog import RUN_CONFIG, UnknownTask, all_tasks, resolve
from launcher.config.schema import RunSpec, TaskSpec
from launcher.errors import ConfigError
from launcher.executors.container.config import ContainerConfig
from launcher.executors.container.render import RUNTIME_USER, ContainerSpec, render_run_sh
from launcher.model import PlannedJob
from launcher.store.layout import RUN, RUN_CONFIG_FILE, task_folder_names


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


def bind(host: str, container: str, key: str, read_only: bool = False) -> str:
    """One `host:container[:ro]` bind mount, or the one-line error naming `key`. The container side may
    carry NEL's `:ro`/`:rw` suffix."""
    target, _, mode = container.partition(":")
    if mode not in ("", "ro", "rw"):
        raise ConfigError(
            key, f"{container!r} has the mode {mode!r}", "Write /container/path, optionally :ro"
        )
    for what, path in (("host", host), ("container", target)):
        if not path.startswith("/") and not (what == "host" and path.startswith("~")):
            raise ConfigError(key, f"{what} path {path!r} is not absolute", "Give absolute paths")
        if ":" in path or "," in path:
            raise ConfigError(key, f"{what} path {path!r} contains ':' or ','", "Choose a path without them")
    mode = "ro" if read_only else mode
    return f"{os.path.expanduser(host)}:{target}" + (f":{mode}" if mode else "")


def task_mounts(spec: RunSpec, task: TaskSpec) -> tuple[str, ...]:
    """execution.mounts.evaluation, mount_home ($HOME at the same path) and the task's dataset_dir (ro)."""
    out = [bind(h, c, f"execution.mounts.evaluation.{h}") for h, c in spec.mounts.evaluation.items()]
    if spec.mounts.mount_home:
        home = os.path.expanduser("~")
        out.append(bind(home, home, "execution.mounts.mount_home"))
    if task.dataset_dir:
        index = spec.evaluation.tasks.index(task)
        key = f"evaluation.tasks[{index}].dataset_dir"
        out.append(bind(task.dataset_dir, task.dataset_mount_path, key, read_only=True))
    return tuple(out)


def task_container(
    spec: RunSpec, task: TaskSpec, job_id: str, folder: str, name: str, cfg: ContainerConfig
) -> ContainerSpec:
    """The container of one task: a catalogue task's image and argv unless the config gives its own."""
    try:
        known = resolve(task.name)
    except UnknownTask:
        known = None
    if known is None and not (task.container and task.command):
        index = spec.evaluation.tasks.index(task)
        raise ConfigError(
            f"evaluation.tasks[{index}].name",
            f"{task.name!r} is not a known task (known: {', '.join(all_tasks())})",
            "Set container and command on the task to run your own image",
        )
    return ContainerSpec(
        job_id=job_id,
        task=task.name,
        folder=folder,
        name=name,
        image=task.container or known.image,
        command=tuple(task.command or known.command),
        env_from_host=spec.env_vars(task),
        env={"LAUNCHER_TASK": task.name, "LAUNCHER_CONFIG": RUN_CONFIG, "HOME": "/tmp"},
        network=cfg.network,
        user=cfg.user or RUNTIME_USER,
        extra_args=tuple(cfg.extra_docker_args),
    )


def with_config_extras(
    spec: RunSpec, task: TaskSpec, c: ContainerSpec, task_dir: str, hooks: bool = True
) -> ContainerSpec:
    """The task's container with what the config adds around any task: NEL `lit:` variables (a name also
    passed from the host is the host's; the launcher's own names win), execution.mounts.evaluation,
    mount_home, dataset_dir, and pre_cmd/post_cmd (their files in `task_dir`, mounted read-only; `hooks`
    False for a task whose own command already runs them, e.g. a NEL catalogue task's)."""
    command, mounts = c.command, task_mounts(spec, task)
    env = {k: v for k, v in spec.literal_env(task).items() if k not in c.env_from_host}
    if task.dataset_dir:
        env[DATASET_DIR_VAR] = task.dataset_mount_path
    if hooks and any(spec.pre_post(task)):
        command = ("bash", "-c", WITH_HOOKS, "launcher-task", *command)
        mounts += tuple(f"{task_dir}/{f}:{HOOKS_DIR}/{f}:ro" for f in (PRE, POST))
        # docker's --init is tini: with this it signals the whole group on `docker stop`, so the task gets
        # SIGTERM first and post_cmd runs after it ended (tini 0.19; tests/integration/test_nel_deployment).
        env["TINI_KILL_PROCESS_GROUP"] = "1"
    return replace(c, command=command, env={**env, **c.env}, mounts=(*c.mounts, *mounts))


def hook_files(spec: RunSpec, task: TaskSpec) -> dict[str, str]:
    """pre_cmd.sh and post_cmd.sh (relative to the task folder) when the task has either."""
    pre, post = spec.pre_post(task)
    return {PRE: pre + "\n", POST: post + "\n"} if pre or post else {}


def plan_tasks(
    spec: RunSpec,
    invocation_id: str,
    folder: str,
    cfg: ContainerConfig,
    runtime: str = "docker",
    reserved: frozenset[str] = frozenset(),
) -> TaskPlan:
    """Every selected task's container and files; `folder` is where the scripts will run."""
    if cfg.max_parallel < 1:
        raise ConfigError("execution.max_parallel", f"must be at least 1, got {cfg.max_parallel}")
    tasks = spec.selected_tasks()
    folders = task_folder_names([t.name for t in tasks], reserved)
    jobs, containers, files, host_env = [], [], {}, set()
    for n, (task, task_folder) in enumerate(zip(tasks, folders, strict=True)):
        job_id = f"{invocation_id}.{n}"
        c = task_container(spec, task, job_id, task_folder, f"launcher-{invocation_id}-{n}", cfg)
        c = with_config_extras(spec, task, c, f"{folder}/{task_folder}")
        files.update({f"{task_folder}/{rel}": text for rel, text in hook_files(spec, task).items()})
        host_env.update(c.env_from_host.values())
        files[f"{task_folder}/{RUN}"] = render_run_sh(c, invocation_id, folder, runtime)
        files[f"{task_folder}/{RUN_CONFIG_FILE}"] = run_config(spec, task)
        containers.append(c)
        jobs.append(PlannedJob(job_id, task.name, task_folder, c.image, c.command))
    return TaskPlan(tuple(jobs), tuple(containers), files, frozenset(host_env))


def run_config(spec: RunSpec, task) -> str:
    """What the harness reads from /results/run_config.json. Names of variables only, never values."""
    endpoint = spec.target.api_endpoint
    params = spec.params(task)
    data = {
        "task": task.name,
        "model_id": endpoint.model_id,
        "url": endpoint.url,
        "endpoint_type": endpoint.type,
        "api_key_env": "API_KEY" if "API_KEY" in spec.env_vars(task) else None,
        "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in params.__dict__.items()},
    }
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
