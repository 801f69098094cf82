"""The Slurm executor: one array job per invocation, each task the same container as on the local executor.

It submits on this machine (a login node) or, with `execution.hostname`, on a login node reached over
SSH: the invocation folder is copied there once, and `status`, `logs` and `kill` bring back the stage
records, progress and results over one reused connection. Task scripts, stage records and results are
the container core's (executors/container), as on the local executor; Slurm's queue is the scheduler.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import replace
from functools import cached_property
from pathlib import Path

from launcher.catalog import BUILD_HINTS
from launcher.config.schema import RunSpec
from launcher.errors import ConfigError, LauncherError
from launcher.executors.container.auto_export import AUTO_EXPORT, auto_export_file
from launcher.executors.container.executor import ContainerExecutor, Look
from launcher.executors.container.plan import plan_tasks
from launcher.executors.container.process import is_running
from launcher.executors.container.server import ServerSpec, server_plan
from launcher.executors.slurm.config import SlurmConfig, node_python, submits_over_ssh
from launcher.executors.slurm.deployments import auxiliary_block
from launcher.executors.slurm.queue import EXPORT_JOBS, JOBS, SLURM_ENDED, SLURM_LIVE, array_states
from launcher.executors.slurm.render import BATCH, EXPORT_BATCH, render_export_sbatch, render_sbatch
from launcher.executors.slurm.shell import SSH, Local
from launcher.executors.status import Scheduled
from launcher.model import InvocationRecord, JobStatus, Plan, PlannedJob, State
from launcher.proxy import wiring as proxy_wiring
from launcher.proxy.settings import ProxyConfigError
from launcher.store import events
from launcher.store.layout import EVENTS, LABEL_INVOCATION, RUN

ELEMENT = "${SLURM_ARRAY_TASK_ID}"


class SlurmExecutor(ContainerExecutor):
    name = "slurm"
    config_class = SlurmConfig
    startup_wait = 0.0  # submission is non-blocking: the jobs wait in Slurm's queue, not in our command
    # The invocation's own files: no task folder takes these names.
    reserved = frozenset({BATCH, JOBS, EXPORT_BATCH, EXPORT_JOBS, AUTO_EXPORT, proxy_wiring.STATE_DIR})

    @property
    def remote(self) -> bool:
        return self.shell.remote

    @property
    def poll_interval(self) -> float:
        return 2.0 if self.shell.remote else 0.3

    @cached_property
    def shell(self) -> Local:
        cfg: SlurmConfig = self.config
        if not submits_over_ssh(cfg):
            return Local()
        return SSH(cfg.hostname, cfg.username, cfg.port, cfg.ssh_options)

    def remote_folder(self, folder: str) -> str:
        """Where an invocation folder lives on the cluster (the same path when submitting here)."""
        if not self.shell.remote:
            return folder
        base = Path(os.path.abspath(os.path.expanduser(self.config.output_dir)))
        remote_base = (self.config.remote_output_dir or str(base)).rstrip("/")
        return f"{remote_base}/{Path(folder).relative_to(base).as_posix()}"

    def plan(self, spec: RunSpec, invocation_id: str, folder: str, created: float) -> Plan:
        cfg: SlurmConfig = spec.execution
        remote = self.remote_folder(folder)
        proxy = slurm_proxy(spec, invocation_id)
        auto = auto_export_file(spec)
        python = node_python(cfg, proxy is not None, bool(auto))
        tasks = plan_tasks(
            spec,
            invocation_id,
            remote,
            cfg,
            cfg.container_runtime,
            self.reserved,
            proxy_port=(lambda n: proxy[0] + n) if proxy else None,
        )
        # Several instances or nodes: servers in srun steps (slurm/deployments.py); one server here otherwise.
        several = spec.deployment.num_instances > 1 or cfg.nodes > 1
        server = None if several else slurm_server(spec, invocation_id, remote)
        aux = auxiliary_block(spec, invocation_id, remote, also_stop="stop_server" if server else "")
        batch = render_sbatch(
            cfg,
            invocation_id,
            remote,
            [j.folder for j in tasks.jobs],
            server and server[0],
            proxy_wiring.render_start(python, '"$proxy_port"', config=f"{remote}/{proxy_wiring.CONFIG_FILE}")
            if proxy
            else None,
            proxy[0] if proxy else None,
            proxy_only_env(spec, tasks.host_env) if proxy else (),
            aux,
        )
        host_env = set(tasks.host_env) | (
            set(server[0].container.env_from_host.values()) if server else set()
        )
        if proxy and spec.target.api_endpoint.api_key:
            host_env.add(spec.target.api_endpoint.api_key)  # read by each element's proxy, not the tasks
        files = {**tasks.files, **(server[1] if server else {}), BATCH: batch, **(proxy[1] if proxy else {})}
        if auto:
            files.update(auto)
            files[EXPORT_BATCH] = render_export_sbatch(cfg, invocation_id, remote, python)
        images = (server[0].container.image,) if server else ()
        if aux:
            host_env |= aux.host_env
            files.update(aux.files)
            images += aux.images
        return Plan(invocation_id, folder, tasks.jobs, files, tuple(sorted(host_env)), images)

    def check_prerequisites(self, plan: Plan) -> None:
        where = self.shell.target if self.shell.remote else "this machine"
        if self.shell.run(
            ["bash", "-c", "command -v sbatch && command -v squeue && command -v scancel"]
        ).returncode:
            raise LauncherError(f"sbatch, squeue or scancel is missing on {where}: is it a Slurm login node?")
        self._check_node_python(plan, where)
        if self.config.container_runtime != "docker":
            return
        for image in sorted({job.image for job in plan.jobs} | set(plan.images)):
            if not self.shell.remote:
                self.docker.ensure_image(
                    image, BUILD_HINTS.get(image, ""), pull=self.config.pull == "missing"
                )
            elif self.shell.run(["docker", "image", "inspect", image]).returncode:
                hint = BUILD_HINTS.get(image, "build or pull it there")
                raise LauncherError(f"image {image} is not on {where}; {hint}")

    def _check_node_python(self, plan: Plan, where: str) -> None:
        """Over SSH, execution.launcher_python is checked on the login node before anything is submitted
        (the nodes are assumed to share its software): a wrong path is one line now, not a failed job."""
        module = "launcher.proxy.server" if proxy_wiring.CONFIG_FILE in plan.files else "launcher.export"
        if not self.shell.remote or (module == "launcher.export" and EXPORT_BATCH not in plan.files):
            return
        python = self.config.launcher_python
        proc = self.shell.run(["bash", "-c", '"$1" -c "import $2" 2>&1', "_", python, module])
        if proc.returncode != 0:
            reason = (proc.stdout.strip().splitlines() or ["not found"])[-1]
            raise LauncherError(
                f"execution.launcher_python: {python} on {where} cannot import {module} ({reason}); "
                "install launcher[proxy] there or point launcher_python at the python that has it"
            )

    def start(self, record: InvocationRecord) -> str | None:
        folder, remote = Path(record.folder), self.remote_folder(record.folder)
        self.shell.upload(folder, remote)
        states = {s.job_id: s.state for s in self.status(record)} if (folder / JOBS).exists() else {}
        live = [j for j, st in states.items() if not st.terminal]
        if live:
            raise LauncherError(
                f"invocation {record.invocation_id} still has {len(live)} job(s) queued or running; "
                "wait for them or `launcher kill` it first"
            )
        todo = [n for n, job in enumerate(record.jobs) if states.get(job.job_id) != State.SUCCEEDED]
        if not todo:
            return "every task already succeeded: nothing submitted"
        for n in todo:
            self._append(f"{remote}/{record.jobs[n].folder}/{EVENTS}", events.QUEUED)
        array = ",".join(map(str, todo)) + f"%{self.config.max_parallel}"
        # Host variables travel as NUL-separated name/value pairs on stdin into sbatch's environment,
        # which Slurm exports to the job: no value is in an argv or a file, here or on the cluster.
        names = record.host_env if self.shell.remote else ()
        secrets = "".join(f"{name}\0{os.environ.get(name, '')}\0" for name in names)
        script = (
            'while IFS= read -r -d "" n && IFS= read -r -d "" v; do export "$n=$v"; done; '
            'cd "$1" && shift && exec "$@"'
        )
        argv = ["bash", "-c", script, "_", remote, "sbatch", "--parsable", f"--array={array}", BATCH]
        proc = self.shell.run(argv, input=secrets)
        if proc.returncode != 0:
            lines = proc.stderr.strip().splitlines() or ["no message"]
            raise LauncherError(f"sbatch refused the job: {lines[-1].removeprefix('sbatch: error: ')}")
        job_id = proc.stdout.strip().split(";")[0]
        self.shell.run(["bash", "-c", 'echo "$2" >> "$1"', "_", f"{remote}/{JOBS}", job_id])
        self._append(f"{remote}/{EVENTS}", events.SUBMITTED, job_id)
        export = self._submit_export(folder, remote, job_id)
        self.shell.download(remote, folder)
        where = f" on {self.shell.target}" if self.shell.remote else ""
        return f"slurm job {job_id}{where} (array {array}){export}"

    def _submit_export(self, folder: Path, remote: str, array_job: str) -> str:
        """Auto-export: one small job that Slurm starts once every element of this submission has ended,
        whatever their outcome (afterany), so it exports exactly once per submission and needs no
        coordination between elements. `kill` cancels it with the array."""
        if not (folder / EXPORT_BATCH).exists():
            return ""
        argv = ["sbatch", "--parsable", f"--dependency=afterany:{array_job}", f"{remote}/{EXPORT_BATCH}"]
        proc = self.shell.run(["bash", "-c", 'cd "$1" && shift && exec "$@"', "_", remote, *argv])
        if proc.returncode != 0:  # the run itself is submitted: say so, never fail it for its export
            lines = proc.stderr.strip().splitlines() or ["no message"]
            return f"; auto-export not submitted ({lines[-1]}): run `launcher export` when it ends"
        export_id = proc.stdout.strip().split(";")[0]
        self.shell.run(["bash", "-c", 'echo "$2" >> "$1"', "_", f"{remote}/{EXPORT_JOBS}", export_id])
        return f", auto-export job {export_id} after it"

    def _append(self, path: str, kind: str, value: str = "") -> None:
        """A stage record, written where the jobs write theirs (here or on the cluster)."""
        self.shell.run(events.shell_append_argv(path, kind, value))

    def mark(self, record: InvocationRecord, rel_folder: str, kind: str) -> None:
        remote = self.remote_folder(record.folder)
        self._append(f"{remote}/{rel_folder}/{EVENTS}".replace("//", "/"), kind)

    def proxy_folders(self, record: InvocationRecord) -> list[Path]:
        return [Path(record.folder) / job.folder for job in record.jobs]  # each element's own proxy

    def read_back(self, record: InvocationRecord) -> None:
        self.shell.download(self.remote_folder(record.folder), Path(record.folder))

    def look(self, record: InvocationRecord) -> Look:
        """The stage records were read back first, then the queue: a job that ends in between looks LOST
        and is looked at again."""
        folder = Path(record.folder)
        queue = array_states(self.shell, folder)
        records = events.read(folder / EVENTS)
        last_submit = max((i for i, e in enumerate(records) if e.kind == events.SUBMITTED), default=-1)
        killed = any(e.kind == events.KILLED for e in records[last_submit + 1 :])

        def one(n: int, job: PlannedJob):
            state, reason = queue.get(n, ("", ""))
            ended = SLURM_ENDED.get(state)
            waiting = f"queued in Slurm ({reason})" if reason and reason != "None" else "queued in Slurm"
            view = Scheduled(
                alive=state in SLURM_LIVE,
                killed=killed,
                waiting=waiting,
                failure=ended[1] if ended else "",
                ended=ended,
            )

            def alive(start: events.Event) -> tuple[State, str] | None:
                if view.alive or (not self.shell.remote and is_running(start, RUN)):
                    return State.RUNNING, ""
                return None

            return view, alive

        return one

    def cancel(self, record: InvocationRecord, statuses: list[JobStatus]) -> None:
        job_ids = []
        for name in (JOBS, EXPORT_JOBS):  # an export waiting for a killed array must not run
            with contextlib.suppress(OSError):
                job_ids += (Path(record.folder) / name).read_text().split()
        if job_ids:
            self.shell.run(["scancel", *job_ids])

    def stop_containers(self, record: InvocationRecord) -> None:
        if self.config.container_runtime != "docker":
            return
        if not self.shell.remote:
            super().stop_containers(record)
            return
        stop = 'ids=$(docker ps -q --filter "label=$1"); [ -z "$ids" ] || docker stop -t "$2" $ids >/dev/null'
        label = f"{LABEL_INVOCATION}={record.invocation_id}"
        self.shell.run(["bash", "-c", stop, "_", label, str(self.config.stop_grace)])

    def describe(self) -> dict:
        where = f" on {self.shell.target}" if self.shell.remote else ""
        return {"resume by hand": f"launcher resume <id>  (resubmits only unfinished tasks{where})"}


def slurm_proxy(spec: RunSpec, invocation_id: str) -> tuple[int, dict[str, str]] | None:
    """The endpoint proxy on Slurm: (first port, {proxy/proxy.json: ...}) or None when it is off. Each array
    element starts its own proxy on its node before its task, on the first port + its array index: fixed
    here because each task's run_config.json names it, and distinct so elements sharing a node never
    collide. The budget (max_concurrent, ...) is therefore per element, not per invocation."""
    try:
        proxy = proxy_wiring.plan(spec.target.api_endpoint, invocation_id)
    except ProxyConfigError as err:
        raise ConfigError("target.api_endpoint", str(err)) from None
    if proxy is None:
        return None
    last = proxy[0] + len(spec.selected_tasks()) - 1
    if last > 65535:
        raise ConfigError(
            "target.api_endpoint.proxy_port",
            f"{proxy[0]} + one port per task runs past 65535 (up to {last})",
            "Choose a lower proxy_port, or 0 to draw one from the invocation id",
        )
    return proxy


def proxy_only_env(spec: RunSpec, task_env: frozenset[str]) -> tuple[str, ...]:
    """The endpoint key's variable when no task also names it in env_vars: the proxy alone reads it."""
    key = spec.target.api_endpoint.api_key
    return (key,) if key and key not in task_env else ()


def slurm_server(spec: RunSpec, invocation_id: str, folder: str) -> tuple[ServerSpec, dict] | None:
    """The deployment as NEL's Slurm examples run it: each array element starts its own model server and
    its task in the same allocation (one element per node: `--exclusive`, so ports never collide)."""
    server = server_plan(spec, invocation_id)
    if server is None:
        return None
    if spec.execution.container_runtime != "docker":
        raise ConfigError(
            "deployment",
            "a model server on Slurm runs with container_runtime: docker only (pyxis: not yet)",
            "Set execution.container_runtime=docker or use deployment=none",
        )
    if spec.execution.nodes > 1:  # NEL's multi-node serving (srun ranks, $MASTER_IP) is not ours
        raise ConfigError(
            "execution.nodes",
            f"a model server across {spec.execution.nodes} nodes is not supported yet (one node per task)",
            "Set execution.nodes=1 (NEL: num_nodes) or serve the model yourself with deployment=none",
        )
    d = spec.deployment
    # One container name per array element (rendered for bash to expand; the id part is ours, hex).
    container = replace(server.container, name=f"{server.container.name}-{ELEMENT}")
    stdin = f"{folder}/{server.stdin}" if server.stdin != "/dev/null" else server.stdin
    return ServerSpec(container, d.port, d.health_path, d.startup_timeout, stdin), server.files
