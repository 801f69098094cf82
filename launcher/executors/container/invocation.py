"""What local and Slurm plan the same way for an invocation, before each renders its own scheduler script:
the endpoint proxy, every task's container, a deployment's model server, auto-export's settings, and the
host variables and images they need. Pure.

The scheduler says only what differs: where the scripts run (`folder`), whether each task gets its own
proxy port (Slurm: one proxy per array element) or all share one (local: one proxy per invocation), and
how its model server is started (`server`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from launcher.config.schema import RunSpec
from launcher.errors import ConfigError
from launcher.executors.container.auto_export import auto_export_file
from launcher.executors.container.config import ContainerConfig
from launcher.executors.container.plan import TaskPlan, plan_tasks
from launcher.executors.container.render import DOCKER, TaskLaunch
from launcher.executors.container.server import ServerSpec, server_plan
from launcher.model import Plan
from launcher.proxy import wiring as proxy_wiring
from launcher.proxy.settings import ProxyConfigError

# (spec, invocation id) -> the model server as this scheduler starts it and its files, or None.
ServerOf = Callable[[RunSpec, str], "tuple[ServerSpec, dict[str, str]] | None"]


@dataclass(frozen=True)
class Invocation:
    tasks: TaskPlan
    proxy: tuple[int, dict[str, str]] | None  # (its port, the first one when each task has its own; files)
    server: ServerSpec | None
    server_files: dict[str, str]
    auto_export: dict[str, str]  # {auto_export.json: ...} or {}
    host_env: frozenset[str]  # host variables the tasks, the server and the proxy read
    images: tuple[str, ...]  # needed besides the tasks' own: the server's

    @property
    def proxy_files(self) -> dict[str, str]:
        return self.proxy[1] if self.proxy else {}


def plan_invocation(
    spec: RunSpec,
    invocation_id: str,
    folder: str,
    cfg: ContainerConfig,
    server: ServerOf,
    launch: TaskLaunch = DOCKER,
    reserved: frozenset[str] = frozenset(),
    proxy_per_task: bool = False,
    present: frozenset[str] | None = None,
    here: bool = True,
) -> Invocation:
    """The parts every scheduler runs. `folder`: where the scripts will run (the cluster's copy on Slurm).
    `present`: the catalogue tasks' candidate images on this machine (local_images.present), None when
    unknown; `here`: the tasks run on this machine's Docker (catalog.image_choice)."""
    proxy = plan_proxy(spec, invocation_id, proxy_per_task)
    port = proxy[0] if proxy else None
    tasks = plan_tasks(
        spec,
        invocation_id,
        folder,
        cfg,
        launch,
        reserved,
        proxy_port=(lambda n: port + n) if proxy and proxy_per_task else port,
        present=present,
        here=here,
    )
    started = server(spec, invocation_id)
    host_env = set(tasks.host_env) | (set(started[0].container.env_from_host.values()) if started else set())
    if proxy and spec.target.api_endpoint.api_key:
        host_env.add(spec.target.api_endpoint.api_key)  # read by the proxy, not the tasks
    return Invocation(
        tasks=tasks,
        proxy=proxy,
        server=started[0] if started else None,
        server_files=started[1] if started else {},
        auto_export=auto_export_file(spec),
        host_env=frozenset(host_env),
        images=(started[0].container.image,) if started else (),
    )


def plan_proxy(
    spec: RunSpec, invocation_id: str, per_task: bool = False
) -> tuple[int, dict[str, str]] | None:
    """(its port, {proxy/proxy.json: ...}) or None when the proxy is off. `per_task`: each task (each shard
    of a sharded task: each Slurm array element) gets the port + its index in model.elements (fixed here
    because each run_config.json names it), so the last must exist."""
    try:
        proxy = proxy_wiring.plan(spec.target.api_endpoint, invocation_id)
    except ProxyConfigError as err:
        raise ConfigError("target.api_endpoint", str(err)) from None
    if proxy is None or not per_task:
        return proxy
    last = proxy[0] + sum(spec.shards(t) for t in spec.selected_tasks()) - 1  # a port per array element
    if last > 65535:
        raise ConfigError(
            "target.api_endpoint.proxy_port",
            f"{proxy[0]} + one port per task runs past 65535 (up to {last})",
            "Choose a lower proxy_port, or 0 to draw one from the invocation id",
        )
    return proxy


def server_as_planned(
    spec: RunSpec, invocation_id: str, base: str | None = None
) -> tuple[ServerSpec, dict[str, str]] | None:
    """The deployment's model server with its readiness check, started by the scheduler's script from
    `base` (where its relative host paths start)."""
    server = server_plan(spec, invocation_id, base=base)
    if server is None:
        return None
    d = spec.deployment
    return ServerSpec(server.container, d.port, d.health_path, d.startup_timeout, server.stdin), server.files


def images_needed(plan: Plan) -> list[str]:
    """Every image the plan runs, each once, sorted: the tasks' and the others' (a model server)."""
    return sorted({job.image for job in plan.jobs} | set(plan.images))
