"""The local executor: each task is a Docker container started by generated scripts on this machine.

run_all.sh is its scheduler: it queues every task and runs at most max_parallel run.sh at once.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import time
from pathlib import Path

from launcher.catalog import BUILD_HINTS
from launcher.config.schema import RunSpec
from launcher.errors import ConfigError, LauncherError
from launcher.executors.container.auto_export import auto_export_file
from launcher.executors.container.executor import ContainerExecutor, Look
from launcher.executors.container.plan import plan_tasks
from launcher.executors.container.process import is_running, running_pid, terminate
from launcher.executors.container.server import server_plan
from launcher.executors.local.config import LocalConfig
from launcher.executors.local.render import ServerSpec, render_run_all_sh
from launcher.executors.status import Scheduled
from launcher.model import InvocationRecord, JobStatus, Plan, PlannedJob, State
from launcher.proxy import wiring as proxy_wiring
from launcher.proxy.settings import ProxyConfigError
from launcher.store import events
from launcher.store.layout import EVENTS, LOGS, RUN, RUN_ALL


def _proxy_plan(spec: RunSpec, invocation_id: str) -> tuple[int, dict[str, str]] | None:
    try:
        return proxy_wiring.plan(spec.target.api_endpoint, invocation_id)
    except ProxyConfigError as err:
        raise ConfigError("target.api_endpoint", str(err)) from None


class LocalExecutor(ContainerExecutor):
    name = "local"
    config_class = LocalConfig
    startup_wait = 1.0  # submit reports what has started by then (the first wave, or "pending")

    # ---- plan and start ------------------------------------------------------------------------------

    def plan(self, spec: RunSpec, invocation_id: str, folder: str, created: float) -> Plan:
        cfg: LocalConfig = spec.execution
        proxy = _proxy_plan(spec, invocation_id)
        tasks = plan_tasks(spec, invocation_id, folder, cfg, proxy_port=proxy[0] if proxy else None)
        server, server_files = self._server(spec, invocation_id)
        proxy_lines = proxy_wiring.render_start(sys.executable, proxy[0]) if proxy else None
        auto = auto_export_file(spec)
        run_all = render_run_all_sh(
            invocation_id,
            [j.folder for j in tasks.jobs],
            cfg.max_parallel,
            server,
            proxy_lines,
            sys.executable if auto else None,
        )
        host_env = set(tasks.host_env) | (set(server.container.env_from_host.values()) if server else set())
        if proxy and spec.target.api_endpoint.api_key:
            host_env.add(spec.target.api_endpoint.api_key)  # read by the proxy, not the tasks
        images = (server.container.image,) if server else ()
        files = {RUN_ALL: run_all, **server_files, **tasks.files, **(proxy[1] if proxy else {}), **auto}
        return Plan(invocation_id, folder, tasks.jobs, files, tuple(sorted(host_env)), images)

    def _server(self, spec: RunSpec, invocation_id: str) -> tuple[ServerSpec | None, dict]:
        server = server_plan(spec, invocation_id)
        if server is None:
            return None, {}
        d = spec.deployment
        started = ServerSpec(server.container, d.port, d.health_path, d.startup_timeout, server.stdin)
        return started, server.files

    def check_prerequisites(self, plan: Plan) -> None:
        images = sorted({job.image for job in plan.jobs} | set(plan.images))
        missing = self.docker.missing_images(images)
        for image in images if missing is None else missing:
            hint = BUILD_HINTS.get(image, "")
            self.docker.ensure_image(image, hint, pull=self.config.pull == "missing")

    def start(self, record: InvocationRecord) -> str | None:
        folder = Path(record.folder)
        # A resume looks once (one `docker ps` at most) at what ran; a first start has nothing to look at
        # (run_all.sh never wrote a record), which saves reading every task's files of a big invocation.
        statuses = self.status(record) if events.read(folder / EVENTS) else []
        if record.jobs and statuses and all(s.state == State.SUCCEEDED for s in statuses):
            return "every task already succeeded: nothing started"  # not even a deployment's server
        running = [s for s in statuses if s.started is not None and not s.state.terminal]
        if running_pid(folder / EVENTS, RUN_ALL) or running:
            raise LauncherError(
                f"invocation {record.invocation_id} is still running; wait for it or `launcher kill` it first"
            )
        with open(folder / LOGS / "run_all.log", "ab") as log:
            proc = subprocess.Popen(
                ["bash", RUN_ALL],
                cwd=folder,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kill reaches every script it started
            )
        deadline = time.monotonic() + 10
        while running_pid(folder / EVENTS, RUN_ALL) != proc.pid and proc.poll() is None:
            if time.monotonic() > deadline:
                raise LauncherError(f"{folder / RUN_ALL} did not start within 10 s; see logs/run_all.log")
            time.sleep(0.02)

    # ---- the scheduler: run_all.sh ---------------------------------------------------------------------

    def look(self, record: InvocationRecord) -> Look:
        view = run_all_view(Path(record.folder))

        @functools.cache
        def containers() -> dict | None:
            """Asked only for jobs the stage records leave open: finished runs never touch Docker."""
            try:
                return self.docker.containers(record.invocation_id)
            except LauncherError:
                return None  # engine down: judge by the scripts alone

        def alive(job: PlannedJob, start: events.Event) -> tuple[State, str] | None:
            found = containers()
            container = (found or {}).get(job.job_id, {}).get("status")
            if not (is_running(start, RUN) or container == "running"):
                return None
            if found is None:
                return State.RUNNING, "Docker engine not reachable: container state unknown"
            return (State.RUNNING, "") if container == "running" else (State.PENDING, "container starting")

        return lambda n, job: (view, functools.partial(alive, job))

    def cancel(self, record: InvocationRecord, statuses: list[JobStatus]) -> None:
        """SIGTERM to run_all.sh's process group: no task starts any more, and each run.sh's trap stops its
        container once, with its grace, while its docker client (in its own session, not signalled) copies
        the output to the end. Waits for the task scripts to record their exits (the container's grace and
        a margin at most); stop_containers then stops whatever is left."""
        folder = Path(record.folder)
        scripts = [(folder / EVENTS, RUN_ALL)]
        scripts += [(Path(s.folder) / EVENTS, RUN) for s in statuses if not s.state.terminal]
        for pid in filter(None, (running_pid(*script) for script in scripts)):
            terminate(pid)
        deadline = time.monotonic() + self.config.stop_grace + 10
        while any(running_pid(*script) for script in scripts) and time.monotonic() < deadline:
            time.sleep(0.05)

    def proxy_stats(self, record: InvocationRecord) -> tuple[dict, bool] | None:
        """Live from the running proxy (GET /proxy/stats on 127.0.0.1), else what it last wrote."""
        live = live_proxy_stats(Path(record.folder) / proxy_wiring.STATE_DIR)
        return (live, True) if live is not None else super().proxy_stats(record)

    def describe(self) -> dict:
        return {"resume by hand": f"bash {RUN_ALL}  (or bash <task>/{RUN})"}


def run_all_view(folder: Path) -> Scheduled:
    """What run_all.sh's stage records say about its current run."""
    records = events.read(folder / EVENTS)
    last_start = max((i for i, e in enumerate(records) if e.kind == events.STARTED), default=-1)
    current = records[last_start + 1 :]
    kinds = [e.kind for e in current]
    exits = [e for e in current if e.kind == events.EXITED]
    server_starting = events.SERVER_STARTING in kinds and events.SERVER_READY not in kinds
    return Scheduled(
        alive=bool(running_pid(folder / EVENTS, RUN_ALL)),
        killed=events.KILLED in kinds,
        waiting="waiting for the model server" if server_starting else "waiting for a free slot",
        failure=exits[-1].detail if exits else "",
    )


def live_proxy_stats(state_dir: Path, timeout: float = 0.5) -> dict | None:
    """The counters of the invocation's proxy if it runs (its pid file names a live `launcher.proxy`
    process and its port file says where it listens); None otherwise or if it does not answer in time."""
    try:
        pid = int((state_dir / proxy_wiring.PID_FILE).read_text())
        port = int((state_dir / proxy_wiring.PORT_FILE).read_text())
        alive = b"launcher.proxy" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    if not alive:
        return None
    import http.client  # only when a proxy runs (13 ms)
    import json

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/proxy/stats")
        response = conn.getresponse()
        data = json.loads(response.read()) if response.status == 200 else None
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        conn.close()
    return data if isinstance(data, dict) else None
