"""The local executor: each task is a Docker container started by generated scripts on this machine."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from launcher.config.schema import RunSpec
from launcher.errors import ConfigError, LauncherError
from launcher.executors.base import Executor, InvocationRecord, JobStatus, Plan, PlannedJob, State
from launcher.executors.local.render import (
    RUNTIME_USER,
    ContainerSpec,
    ServerSpec,
    render_run_all_sh,
    render_run_sh,
)
from launcher.state import (
    EVENTS,
    OUTPUT_LOG,
    PROGRESS,
    RESULTS_JSON,
    RUN,
    RUN_ALL,
    append_event,
    read_events,
    task_folder_names,
)
from launcher.tasks import BUILD_HINTS, RUN_CONFIG, TASKS

EXIT_REASONS = {
    74: "the task could not write its results folder (disk full?); see logs/output.log",
    125: "docker could not start the container",
    126: "the command in the container is not executable",
    127: "the command was not found in the container",
    137: "killed with SIGKILL (out of memory, or docker kill)",
    143: "stopped with SIGTERM",
}


@dataclass(frozen=True)
class LocalConfig:
    output_dir: str = "results"  # invocation folders are created under it (relative to the current directory)
    max_parallel: int = 4  # tasks run at once; each task also bounds its own concurrent requests
    network: str = "host"  # host networking: an endpoint on 127.0.0.1 works from the container as is
    extra_docker_args: tuple[str, ...] = ()  # appended to every `docker run`, before the image
    stop_grace: int = 5  # seconds between SIGTERM and SIGKILL when a task is killed
    user: str | None = None  # container user; default: the uid:gid running the task, so results are yours
    pull: Literal["missing", "never"] = "missing"  # pull an image that is not on this machine before starting


class LocalExecutor(Executor):
    name = "local"
    config_class = LocalConfig
    startup_wait = 30.0  # "started" is said only once the containers really run

    def __init__(self, config: LocalConfig, docker=None):
        super().__init__(config)
        self._docker = docker

    @property
    def docker(self):
        if self._docker is None:
            from launcher.executors.local.docker_client import Docker

            self._docker = Docker()
        return self._docker

    # ---- plan and start ------------------------------------------------------------------------------

    def plan(self, spec: RunSpec, invocation_id: str, folder: str, created: float) -> Plan:
        cfg: LocalConfig = spec.execution
        if cfg.max_parallel < 1:
            raise ConfigError("execution.max_parallel", f"must be at least 1, got {cfg.max_parallel}")
        tasks = spec.selected_tasks()
        folders = task_folder_names([t.name for t in tasks])
        user = cfg.user or RUNTIME_USER
        server = self._server(spec, invocation_id)
        files: dict[str, str] = {RUN_ALL: render_run_all_sh(invocation_id, folders, cfg.max_parallel, server)}
        jobs, host_env = [], set(server.container.env_from_host.values()) if server else set()
        for n, (task, task_folder) in enumerate(zip(tasks, folders, strict=True)):
            index = spec.evaluation.tasks.index(task)
            known = TASKS.get(task.name)
            if known is None and not (task.container and task.command):
                raise ConfigError(
                    f"evaluation.tasks[{index}].name",
                    f"{task.name!r} is not a known task (known: {', '.join(TASKS)})",
                    "Set container and command on the task to run your own image",
                )
            image = task.container or known.image
            command = task.command or known.command
            env_from_host = spec.env_vars(task)
            host_env.update(env_from_host.values())
            job_id = f"{invocation_id}.{n}"
            container = ContainerSpec(
                job_id=job_id,
                task=task.name,
                folder=task_folder,
                name=f"launcher-{invocation_id}-{n}",
                image=image,
                command=tuple(command),
                env_from_host=env_from_host,
                env={"LAUNCHER_TASK": task.name, "LAUNCHER_CONFIG": RUN_CONFIG, "HOME": "/tmp"},
                network=cfg.network,
                user=user,
                extra_args=tuple(cfg.extra_docker_args),
            )
            runtime = getattr(cfg, "container_runtime", "docker")
            files[f"{task_folder}/{RUN}"] = render_run_sh(container, invocation_id, folder, runtime)
            files[f"{task_folder}/results/run_config.json"] = run_config(spec, task)
            jobs.append(PlannedJob(job_id, task.name, task_folder, image, tuple(command)))
        images = (server.container.image,) if server else ()
        return Plan(invocation_id, folder, tuple(jobs), files, tuple(sorted(host_env)), images)

    def _server(self, spec: RunSpec, invocation_id: str) -> ServerSpec | None:
        d = spec.deployment
        if d.type == "none":
            return None
        container = ContainerSpec(
            job_id=f"{invocation_id}.server",
            task=f"deployment {d.name}".strip(),
            folder="",
            name=f"launcher-{invocation_id}-server",
            image=d.image,
            command=d.command,
            env_from_host=dict(d.env_vars),
            env={},
            network=self.config.network,
            user=None,
            extra_args=d.extra_docker_args,
        )
        return ServerSpec(container, d.port, d.health_path, d.startup_timeout)

    def check_prerequisites(self, plan: Plan) -> None:
        for image in sorted({job.image for job in plan.jobs} | set(plan.images)):
            hint = BUILD_HINTS.get(image, "")
            self.docker.ensure_image(image, hint, pull=self.config.pull == "missing")

    def start(self, record: InvocationRecord) -> None:  # nothing to add to the report
        folder = Path(record.folder)
        running = [j for j in record.jobs if _last_pid(folder / j["folder"] / EVENTS, RUN)]
        if self._run_all_alive(folder) or running:
            raise LauncherError(
                f"invocation {record.invocation_id} is still running; wait for it or `launcher kill` it first"
            )
        with open(folder / "logs" / "run_all.log", "ab") as log:
            proc = subprocess.Popen(
                ["bash", RUN_ALL],
                cwd=folder,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kill reaches every script it started
            )
        deadline = time.monotonic() + 10
        while _last_pid(folder / EVENTS, RUN_ALL) != proc.pid and proc.poll() is None:
            if time.monotonic() > deadline:
                raise LauncherError(f"{folder / RUN_ALL} did not start within 10 s; see logs/run_all.log")
            time.sleep(0.02)

    # ---- status -----------------------------------------------------------------------------------------

    def status(self, record: InvocationRecord) -> list[JobStatus]:
        folder = Path(record.folder)

        @functools.cache
        def containers() -> dict | None:
            """Asked only for jobs the stage records leave open: finished runs never touch Docker."""
            try:
                return self.docker.containers(record.invocation_id)
            except LauncherError:
                return None  # engine down: judge by the scripts alone

        self._refresh(record)
        statuses = []
        for job in record.jobs:
            status = self._job_status(folder, job, containers, self._scheduler(record, job))
            if status.state == State.LOST:
                # The script may have written its exit record and ended between our reading the records
                # and checking its process: read again, now that it is surely gone.
                self._refresh(record)
                status = self._job_status(folder, job, containers, self._scheduler(record, job))
            statuses.append(status)
        return statuses

    def _refresh(self, record: InvocationRecord) -> None:
        """Read what starts the jobs, once per look (and again before a second look at a LOST job)."""
        self._run_all = _RunAll.read(Path(record.folder))

    def _scheduler(self, record: InvocationRecord, job: dict) -> _RunAll:
        """What starts this job: here run_all.sh; a batch scheduler answers for its own queue."""
        return self._run_all

    def _live(self, job: dict, pid: int, run_all: _RunAll, containers) -> tuple[State, str] | None:
        """State of a job that started and has no exit record yet, or None if nothing runs it."""
        found = containers()
        container = (found or {}).get(job["job_id"], {}).get("status")
        if not (_alive(pid, RUN) or container == "running"):
            return None
        if found is None:
            return State.RUNNING, "Docker engine not reachable: container state unknown"
        return (State.RUNNING, "") if container == "running" else (State.PENDING, "container starting")

    def _job_status(self, folder, job, containers, run_all: _RunAll) -> JobStatus:
        task_dir = folder / job["folder"]
        events = read_events(task_dir / EVENTS)
        done, total = _progress(task_dir / PROGRESS)
        base = dict(
            job_id=job["job_id"],
            task=job["task"],
            folder=str(task_dir),
            done=done,
            total=total,
            score=_score(task_dir / RESULTS_JSON),
        )
        # run_all.sh writes `queued` for every task when it (re)starts: what came before is history,
        # except a success, which run.sh will skip.
        queued = max((i for i, e in enumerate(events) if e[0] == "queued"), default=-1)
        previous, events = events[: max(queued, 0)], events[queued + 1 :]
        starts = [e for e in events if e[0] == "started"]
        if not starts and _succeeded(previous):
            events = previous[max(i for i, e in enumerate(previous) if e[0] == "started") :]
            starts = events[:1]
        if not starts:
            if run_all.killed or any(e[0] == "killed" for e in events):
                return JobStatus(**base, state=State.KILLED, reason="killed before it started")
            if run_all.alive:
                return JobStatus(**base, state=State.PENDING, reason=run_all.waiting)
            if run_all.failure:
                return JobStatus(**base, state=State.FAILED, reason=run_all.failure)
            return JobStatus(
                **base, state=State.LOST, reason="never started and run_all.sh is not running; resume it"
            )
        last_start = max(i for i, e in enumerate(events) if e[0] == "started")
        started = events[last_start][1]
        after = events[last_start + 1 :]
        exits = [e for e in after if e[0] == "exited"]
        killed = any(e[0] == "killed" for e in after)
        if exits:
            ended, value = exits[-1][1], exits[-1][2]
            code_text, _, detail = value.partition(" ")
            code = int(code_text) if code_text.lstrip("-").isdigit() else None
            timing = dict(exit_code=code, started=started, ended=ended)
            if code == 0:
                return JobStatus(**base, state=State.SUCCEEDED, **timing)
            if killed:
                return JobStatus(**base, state=State.KILLED, reason="killed by `launcher kill`", **timing)
            reason = detail or EXIT_REASONS.get(code, "") or _last_line(task_dir / OUTPUT_LOG)
            return JobStatus(**base, state=State.FAILED, reason=reason, **timing)
        pid = int(events[last_start][2]) if events[last_start][2].isdigit() else -1
        if killed:
            ended = next(e[1] for e in after if e[0] == "killed")
            return JobStatus(
                **base, state=State.KILLED, reason="killed by `launcher kill`", started=started, ended=ended
            )
        live = self._live(job, pid, run_all, containers)
        if live:
            return JobStatus(**base, state=live[0], reason=live[1], started=started)
        return JobStatus(
            **base,
            state=State.LOST,
            reason=f"run.sh (pid {pid}) ended without an exit record; `launcher resume` continues it",
            started=started,
        )

    # ---- kill and logs ------------------------------------------------------------------------------

    def kill(self, record: InvocationRecord) -> None:
        folder = Path(record.folder)
        statuses = self.status(record)
        append_event(folder / EVENTS, "killed")
        for status in statuses:
            if not status.state.terminal:
                append_event(Path(status.folder) / EVENTS, "killed")
        # Stop the scripts first so no further task starts, then the containers (SIGTERM reaches the
        # harness through --init; SIGKILL after the grace period).
        pids = [_last_pid(folder / EVENTS, RUN_ALL)]
        pids += [_last_pid(Path(s.folder) / EVENTS, RUN) for s in statuses if not s.state.terminal]
        for pid in filter(None, pids):
            _terminate(pid)
        self.docker.stop(record.invocation_id, self.config.stop_grace)

    def logs(self, record: InvocationRecord, job_id: str, follow: bool) -> Iterator[str]:
        job = next(j for j in record.jobs if j["job_id"] == job_id)
        path = Path(record.folder) / job["folder"] / OUTPUT_LOG
        while not path.exists():
            if not follow or self._job_finished(record, job_id):
                return
            time.sleep(0.3)
        with open(path, encoding="utf-8", errors="replace") as fh:
            while True:
                line = fh.readline()
                if line:
                    yield line
                    continue
                if not follow or self._job_finished(record, job_id):
                    rest = fh.read()
                    if rest:
                        yield rest
                    return
                time.sleep(0.3)

    def _job_finished(self, record: InvocationRecord, job_id: str) -> bool:
        return next(s for s in self.status(record) if s.job_id == job_id).state.terminal

    def describe(self) -> dict:
        return {"resume by hand": f"bash {RUN_ALL}  (or bash <task>/{RUN})"}

    @staticmethod
    def _run_all_alive(folder: Path) -> bool:
        pid = _last_pid(folder / EVENTS, RUN_ALL)
        return bool(pid)


@dataclass(frozen=True)
class _RunAll:
    """What run_all.sh's stage records say about its current run."""

    alive: bool
    killed: bool
    waiting: str  # why a job that has not started yet waits
    failure: str  # why it ended before starting the tasks, if it did

    @classmethod
    def read(cls, folder: Path) -> _RunAll:
        events = read_events(folder / EVENTS)
        last_start = max((i for i, e in enumerate(events) if e[0] == "started"), default=-1)
        current = [e[0] for e in events[last_start + 1 :]]
        exits = [e for e in events[last_start + 1 :] if e[0] == "exited"]
        failure = exits[-1][2].partition(" ")[2] if exits else ""
        server_starting = "server-starting" in current and "server-ready" not in current
        return cls(
            alive=bool(_last_pid(folder / EVENTS, RUN_ALL)),
            killed="killed" in current,
            waiting="waiting for the model server" if server_starting else "waiting for a free slot",
            failure=failure,
        )


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


def _last_pid(events_path: Path, script: str) -> int | None:
    """PID of the script's current run, if it is alive (a started record without an exit record)."""
    events = read_events(events_path)
    last_start = max((i for i, e in enumerate(events) if e[0] == "started"), default=None)
    if last_start is None or any(e[0] == "exited" for e in events[last_start:]):
        return None
    value = events[last_start][2]
    if not value.isdigit():
        return None
    pid = int(value)
    return pid if _alive(pid, script) else None


def _alive(pid: int, script: str) -> bool:
    """True if `pid` runs bash on `script` (guards against PID reuse)."""
    if pid <= 0:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(part.endswith(script.encode()) for part in cmdline)


def _terminate(pid: int) -> None:
    """SIGTERM the script's process group when it leads one (started by us), else the script alone."""
    try:
        target = os.getpgid(pid)
        if target == pid:
            os.killpg(pid, signal.SIGTERM)
        else:
            os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


def _progress(path: Path) -> tuple[int | None, int | None]:
    try:
        data = json.loads(path.read_text())
        return int(data.get("done")), int(data.get("total"))
    except (OSError, ValueError, TypeError):
        return None, None


def _score(path: Path) -> str:
    """`metric=value` pairs from results.json (results.tasks.<task>.metrics.<metric>.scores.<score>.value)."""
    try:
        tasks = json.loads(path.read_text())["results"]["tasks"]
        pairs = [
            f"{name}={score['value']:.4f}"
            for task in tasks.values()
            for metric in task["metrics"].values()
            for name, score in metric["scores"].items()
        ]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return ""
    return " ".join(pairs)


def _succeeded(events: list) -> bool:
    attempts = [e for e in events if e[0] in ("started", "exited")]
    return bool(attempts) and attempts[-1][0] == "exited" and attempts[-1][2].split(" ")[0] == "0"


def _last_line(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, os.path.getsize(path) - 4096))
            lines = [ln.strip() for ln in fh.read().decode("utf-8", "replace").splitlines() if ln.strip()]
        return lines[-1][:200] if lines else ""
    except OSError:
        return ""
