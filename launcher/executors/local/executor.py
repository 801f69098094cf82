"""The local executor: each task is a Docker container started by generated scripts on this machine.

run_all.sh is its scheduler: it queues every task and runs at most max_parallel run.sh at once.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from launcher.catalog import BUILD_HINTS
from launcher.catalog.image_choice import recipe_hint
from launcher.config.schema import RunSpec
from launcher.errors import LauncherError
from launcher.executors.container import local_images
from launcher.executors.container.executor import ContainerExecutor, Look
from launcher.executors.container.invocation import images_needed, plan_invocation, server_as_planned
from launcher.executors.container.process import is_running, running_pid, terminate
from launcher.executors.local.config import LocalConfig
from launcher.executors.local.render import render_run_all_sh
from launcher.executors.status import Scheduled
from launcher.model import InvocationRecord, JobStatus, Plan, PlannedJob, State, elements
from launcher.proxy import wiring as proxy_wiring
from launcher.store import events
from launcher.store.layout import EVENTS, LOGS, RUN, RUN_ALL


class LocalExecutor(ContainerExecutor):
    name = "local"
    config_class = LocalConfig
    startup_wait = 1.0  # submit reports what has started by then (the first wave, or "pending")

    # ---- plan and start ------------------------------------------------------------------------------

    def plan(self, spec: RunSpec, invocation_id: str, folder: str, created: float) -> Plan:
        cfg: LocalConfig = spec.execution
        # run_all.sh starts the model server in the invocation folder: its relative host paths start there
        inv = plan_invocation(
            spec,
            invocation_id,
            folder,
            cfg,
            lambda s, i: server_as_planned(s, i, base=folder),
            present=local_images.for_plan(spec),  # the tasks run on this machine's Docker
        )
        proxy_lines = proxy_wiring.render_start(sys.executable, inv.proxy[0]) if inv.proxy else None
        run_all = render_run_all_sh(
            invocation_id,
            [e.folder for e in elements(inv.tasks.jobs)],
            cfg.max_parallel,
            inv.server,
            proxy_lines,
            sys.executable if inv.auto_export else None,
            tuple((j.folder, j.shards) for j in inv.tasks.jobs if j.parts),
        )
        files = {RUN_ALL: run_all, **inv.server_files, **inv.tasks.files, **inv.proxy_files}
        files.update(inv.auto_export)
        return Plan(invocation_id, folder, inv.tasks.jobs, files, tuple(sorted(inv.host_env)), inv.images)

    def check_prerequisites(self, plan: Plan) -> None:
        images = images_needed(plan)
        missing = self.docker.missing_images(images)
        for image in images if missing is None else missing:
            hint = BUILD_HINTS.get(image) or recipe_hint(image)
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
        return RunAllLook(run_all_view(Path(record.folder)), self, record.invocation_id)

    def cancel(self, record: InvocationRecord, statuses: list[JobStatus]) -> None:
        """SIGTERM to run_all.sh's process group: no task starts any more, and each run.sh's trap stops its
        container once, with its grace, while its docker client (in its own session, not signalled) copies
        the output to the end. Waits for the task scripts to record their exits (the container's grace and
        a margin at most); stop_containers then stops whatever is left."""
        folder = Path(record.folder)
        scripts = [(folder / EVENTS, RUN_ALL)]
        scripts += [
            (Path(x.folder) / EVENTS, RUN) for s in statuses for x in (s, *s.shards) if not x.state.terminal
        ]
        for pid in filter(None, (running_pid(*script) for script in scripts)):
            terminate(pid)
        deadline = time.monotonic() + self.config.stop_grace + 10
        while any(running_pid(*script) for script in scripts) and time.monotonic() < deadline:
            time.sleep(0.05)

    @classmethod
    def stop_orphan(cls, invocation_id: str) -> str | None:
        """Its containers carry its id as a label: they are found and stopped without the folder."""
        from launcher.executors.container.docker_client import Docker

        stopped = Docker().stop(invocation_id, grace=5)
        return f"its folder is gone; stopped {stopped} container(s)"

    def proxy_stats(self, record: InvocationRecord) -> tuple[dict, bool] | None:
        """Live from the running proxy (GET /proxy/stats on 127.0.0.1), else what it last wrote."""
        live = live_proxy_stats(Path(record.folder) / proxy_wiring.STATE_DIR)
        return (live, True) if live is not None else super().proxy_stats(record)

    def describe(self) -> dict:
        return {"resume by hand": f"bash {RUN_ALL}  (or bash <task>/{RUN})"}


@dataclass
class RunAllLook(Look):
    """run_all.sh's view is the same for every job; a started job runs while its run.sh or its container
    does (Docker asked at most once per refresh, and only for jobs the stage records leave open)."""

    scheduled: Scheduled
    executor: ContainerExecutor  # its Docker client, made only when a job is asked about
    invocation_id: str

    def view(self, n: int | None, job: PlannedJob) -> Scheduled:
        return self.scheduled

    @functools.cached_property
    def containers(self) -> dict | None:
        try:
            return self.executor.docker.containers(self.invocation_id)
        except LauncherError:
            return None  # engine down: judge by the scripts alone

    def running(self, n: int | None, job: PlannedJob, start: events.Event) -> tuple[State, str] | None:
        found = self.containers
        container = (found or {}).get(job.job_id, {}).get("status")
        if not (is_running(start, RUN) or container == "running"):
            return None
        if found is None:
            return State.RUNNING, "Docker engine not reachable: container state unknown"
        return (State.RUNNING, "") if container == "running" else (State.PENDING, "container starting")


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
