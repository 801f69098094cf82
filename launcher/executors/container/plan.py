"""From a RunSpec to each task's container: image, argv, variables, run.sh and run_config.json. Pure.

This is the joint where a task becomes a container: the catalogue gives a known task's image and argv,
the config gives a custom task's; `task_container` builds the ContainerSpec and `plan_tasks` the files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from launcher.catalog import RUN_CONFIG, UnknownTask, all_tasks, resolve
from launcher.config.schema import RunSpec, TaskSpec
from launcher.errors import ConfigError
from launcher.executors.container.config import ContainerConfig
from launcher.executors.container.render import RUNTIME_USER, ContainerSpec, render_run_sh
from launcher.model import PlannedJob
from launcher.proxy import wiring as proxy_wiring
from launcher.store.layout import RUN, RUN_CONFIG_FILE, task_folder_names


@dataclass(frozen=True)
class TaskPlan:
    jobs: tuple[PlannedJob, ...]
    containers: tuple[ContainerSpec, ...]
    files: dict[str, str]  # <task>/run.sh and <task>/results/run_config.json
    host_env: frozenset[str]  # host variable names the tasks read when they run


def task_container(
    spec: RunSpec,
    task: TaskSpec,
    job_id: str,
    folder: str,
    name: str,
    cfg: ContainerConfig,
    proxy_port: int | None = None,
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
    env_from_host = spec.env_vars(task)
    if proxy_port is not None and env_from_host.get("API_KEY") == spec.target.api_endpoint.api_key:
        env_from_host = {k: v for k, v in env_from_host.items() if k != "API_KEY"}  # the proxy has it
    return ContainerSpec(
        job_id=job_id,
        task=task.name,
        folder=folder,
        name=name,
        image=task.container or known.image,
        command=tuple(task.command or known.command),
        env_from_host=env_from_host,
        env={"LAUNCHER_TASK": task.name, "LAUNCHER_CONFIG": RUN_CONFIG, "HOME": "/tmp"},
        network=cfg.network,
        user=cfg.user or RUNTIME_USER,
        extra_args=tuple(cfg.extra_docker_args),
    )


def plan_tasks(
    spec: RunSpec,
    invocation_id: str,
    folder: str,
    cfg: ContainerConfig,
    runtime: str = "docker",
    reserved: frozenset[str] = frozenset(),
    proxy_port: int | None = None,
) -> TaskPlan:
    """Every selected task's container and files; `folder` is where the scripts will run."""
    if cfg.max_parallel < 1:
        raise ConfigError("execution.max_parallel", f"must be at least 1, got {cfg.max_parallel}")
    tasks = spec.selected_tasks()
    folders = task_folder_names([t.name for t in tasks], reserved)
    jobs, containers, files, host_env = [], [], {}, set()
    for n, (task, task_folder) in enumerate(zip(tasks, folders, strict=True)):
        job_id = f"{invocation_id}.{n}"
        c = task_container(spec, task, job_id, task_folder, f"launcher-{invocation_id}-{n}", cfg, proxy_port)
        host_env.update(c.env_from_host.values())
        files[f"{task_folder}/{RUN}"] = render_run_sh(c, invocation_id, folder, runtime)
        files[f"{task_folder}/{RUN_CONFIG_FILE}"] = run_config(spec, task, proxy_port)
        containers.append(c)
        jobs.append(PlannedJob(job_id, task.name, task_folder, c.image, c.command))
    return TaskPlan(tuple(jobs), tuple(containers), files, frozenset(host_env))


def run_config(spec: RunSpec, task, proxy_port: int | None = None) -> str:
    """What the harness reads from /results/run_config.json. Names of variables only, never values.
    Behind the proxy: the proxy's URL and no key variable."""
    endpoint = spec.target.api_endpoint
    params = spec.params(task)
    key_env = "API_KEY" if "API_KEY" in spec.env_vars(task) else None
    if proxy_port is not None and spec.env_vars(task).get("API_KEY") == endpoint.api_key:
        key_env = None
    data = {
        "task": task.name,
        "model_id": endpoint.model_id,
        "url": endpoint.url if proxy_port is None else proxy_wiring.task_url(endpoint.url, proxy_port),
        "endpoint_type": endpoint.type,
        "api_key_env": key_env,
        "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in params.__dict__.items()},
    }
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
