"""The Slurm executor: one array job per invocation, each task the same container as on the local executor.

It submits on this machine (a login node) or, with `execution.hostname`, on a login node reached over
SSH: the invocation folder is copied there once, and `status`, `logs` and `kill` bring back the stage
records, progress and results over one reused connection. Task scripts, stage records and results are
the container core's (executors/container), as on the local executor; Slurm's queue is the scheduler.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from secrets import token_hex

from launcher.catalog import BUILD_HINTS, TOOLS_HINT
from launcher.catalog.image_choice import recipe_hint
from launcher.config.schema import RunSpec
from launcher.errors import ConfigError, LauncherError
from launcher.executors.container import local_images
from launcher.executors.container.auto_export import AUTO_EXPORT
from launcher.executors.container.executor import ContainerExecutor, Look
from launcher.executors.container.invocation import images_needed, plan_invocation, server_as_planned
from launcher.executors.container.process import is_running
from launcher.executors.container.render import DOCKER
from launcher.executors.container.server import ServerSpec
from launcher.executors.slurm import tools
from launcher.executors.slurm.config import SlurmConfig, submits_over_ssh
from launcher.executors.slurm.deployments import auxiliary_block
from launcher.executors.slurm.node_proxy import render_node_start
from launcher.executors.slurm.pyxis import PYXIS
from launcher.executors.slurm.queue import (
    EXPORT_JOBS,
    JOBS,
    MERGE_JOBS,
    SLURM_ENDED,
    SLURM_LIVE,
    array_states,
    merge_state,
)
from launcher.executors.slurm.render import (
    BATCH,
    EXPORT_BATCH,
    MERGE_BATCH,
    render_export_sbatch,
    render_merge_sbatch,
    render_sbatch,
)
from launcher.executors.slurm.shell import SSH, Local
from launcher.executors.status import Scheduled
from launcher.model import InvocationRecord, JobStatus, Plan, PlannedJob, State, elements
from launcher.proxy import wiring as proxy_wiring
from launcher.store import events
from launcher.store.layout import EVENTS, LABEL_INVOCATION, RUN

ELEMENT = "${SLURM_ARRAY_TASK_ID}"


class SlurmExecutor(ContainerExecutor):
    name = "slurm"
    config_class = SlurmConfig
    startup_wait = 0.0  # submission is non-blocking: the jobs wait in Slurm's queue, not in our command
    # The invocation's own files: no task folder takes these names.
    reserved = frozenset(
        {BATCH, JOBS, EXPORT_BATCH, EXPORT_JOBS, MERGE_BATCH, MERGE_JOBS, AUTO_EXPORT, proxy_wiring.STATE_DIR}
    )

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
        # Several instances or nodes: servers in srun steps (slurm/deployments.py); one server here otherwise.
        several = spec.deployment.num_instances > 1 or cfg.nodes > 1
        # The nodes' images cannot be seen from here: only a forced local build is looked up, and only
        # where the nodes share this machine's Docker (submitting here, not over SSH).
        ask = cfg.catalog_images == "local" and not self.shell.remote
        inv = plan_invocation(
            spec,
            invocation_id,
            remote,
            cfg,
            lambda spec, invocation_id: None if several else slurm_server(spec, invocation_id, remote),
            PYXIS if cfg.container_runtime == "pyxis" else DOCKER,
            self.reserved,
            proxy_per_task=not tools.shares_node_proxy(cfg),
            present=local_images.for_plan(spec) if ask else None,
            here=False,
        )
        aux = auxiliary_block(spec, invocation_id, remote, also_stop="stop_server" if inv.server else "")
        batch = render_sbatch(
            cfg,
            invocation_id,
            remote,
            [e.folder for e in elements(inv.tasks.jobs)],  # one array element per task or shard
            inv.server,
            proxy_start(spec, invocation_id, remote, inv.proxy) if inv.proxy else None,
            inv.proxy[0] if inv.proxy else None,
            proxy_only_env(spec, inv.tasks.host_env) if inv.proxy else (),
            aux,
            shared_proxy=tools.shares_node_proxy(cfg),
        )
        host_env, images = set(inv.host_env), inv.images
        files = {**inv.tasks.files, **inv.server_files, BATCH: batch, **inv.proxy_files}
        merges = [j.folder for j in inv.tasks.jobs if j.parts]
        if merges:
            files[MERGE_BATCH] = render_merge_sbatch(cfg, invocation_id, remote, merges)
        if inv.auto_export:
            files.update(inv.auto_export)
            writes = tools.export_mounts(inv.auto_export[AUTO_EXPORT], remote)
            export = tools.runner(cfg, invocation_id, remote, "export", tools.EXPORT_ENV, writes)
            files[EXPORT_BATCH] = render_export_sbatch(cfg, invocation_id, remote, export)
        if (inv.proxy or inv.auto_export) and tools.uses_image(cfg):
            images += (cfg.launcher_image,)
        if aux:
            host_env |= aux.host_env
            files.update(aux.files)
            images += aux.images
        where = self.shell.target if self.shell.remote else "this machine"
        needed = [*(j.image for j in inv.tasks.jobs), *images]
        checks = tools.submit_checks(cfg, where, needed, inv.proxy is not None, bool(inv.auto_export))
        return Plan(invocation_id, folder, inv.tasks.jobs, files, tuple(sorted(host_env)), images, checks)

    def check_prerequisites(self, plan: Plan) -> None:
        where = self.shell.target if self.shell.remote else "this machine"
        if self.shell.run(
            ["bash", "-c", "command -v sbatch && command -v squeue && command -v scancel"]
        ).returncode:
            raise LauncherError(f"sbatch, squeue or scancel is missing on {where}: is it a Slurm login node?")
        self._check_node_python(plan, where)
        if self.config.container_runtime != "docker":
            return
        for image in images_needed(plan):
            if not self.shell.remote:
                self.docker.ensure_image(
                    image, BUILD_HINTS.get(image) or recipe_hint(image), pull=self.config.pull == "missing"
                )
            elif self.shell.run(["docker", "image", "inspect", image]).returncode:
                hint = BUILD_HINTS.get(image) or recipe_hint(image) or "build or pull it there"
                if image == self.config.launcher_image:
                    hint = (
                        f"it runs the endpoint proxy and auto-export on the nodes: {TOOLS_HINT} there, "
                        "or set execution.launcher_python to a python on the nodes with launcher[proxy]"
                    )
                raise LauncherError(f"image {image} is not on {where}; {hint}")

    def _check_node_python(self, plan: Plan, where: str) -> None:
        """Over SSH, execution.launcher_python is checked on the login node before anything is submitted
        (the nodes are assumed to share its software): a wrong path is one line now, not a failed job."""
        module = "launcher.proxy.server" if proxy_wiring.CONFIG_FILE in plan.files else "launcher.export"
        if not self.shell.remote or (module == "launcher.export" and EXPORT_BATCH not in plan.files):
            return
        python = self.config.launcher_python
        if not python:  # the proxy and the export run from launcher_image (checked with the images)
            return
        proc = self.shell.run(["bash", "-c", '"$1" -c "import $2" 2>&1', "_", python, module])
        if proc.returncode != 0:
            reason = (proc.stdout.strip().splitlines() or ["not found"])[-1]
            raise LauncherError(
                f"execution.launcher_python: {python} on {where} cannot import {module} ({reason}); "
                "install launcher[proxy] there, point launcher_python at the python that has it, or unset it "
                f"to run them from execution.launcher_image ({self.config.launcher_image})"
            )

    def start(self, record: InvocationRecord) -> str | None:
        folder, remote = Path(record.folder), self.remote_folder(record.folder)
        self.shell.upload(folder, remote)
        submitted = (folder / JOBS).exists() or (folder / MERGE_JOBS).exists()
        statuses = self.status(record) if submitted else []
        states = {x.job_id: x.state for s in statuses for x in (s, *s.shards)}
        live = [s.job_id for s in statuses if not s.state.terminal]
        if live:
            raise LauncherError(
                f"invocation {record.invocation_id} still has {len(live)} job(s) queued or running; "
                "wait for them or `launcher kill` it first"
            )
        units = elements(record.jobs)
        todo = [m for m, unit in enumerate(units) if states.get(unit.job_id) != State.SUCCEEDED]
        merges = [j for j in record.jobs if j.parts and states.get(j.job_id) != State.SUCCEEDED]
        if not todo and not merges:
            return "every task already succeeded: nothing submitted"
        for rel in [units[m].folder for m in todo] + [j.folder for j in merges]:
            self._append(f"{remote}/{rel}/{EVENTS}", events.QUEUED)
        job_id = self._submit_array(record, remote, todo) if todo else None
        merge_id = self._submit_merge(remote, job_id) if merges else None
        self._append(f"{remote}/{EVENTS}", events.SUBMITTED, job_id or merge_id)
        export = self._submit_export(folder, remote, merge_id or job_id)
        self.shell.download(remote, folder)
        where = f" on {self.shell.target}" if self.shell.remote else ""
        said = [f"slurm job {job_id}{where} (array {','.join(map(str, todo))}%{self.config.max_parallel})"]
        said = said if job_id else [f"nothing left to run{where}"]
        said += [f"merge job {merge_id} after it"] if merge_id else []
        return ", ".join(said) + export

    def _submit_merge(self, remote: str, after: str | None) -> str:
        """The sharded tasks' merge job, after the array (afterany: it records a failed shard too)."""
        after_array = [f"--dependency=afterany:{after}"] if after else []
        return self._sbatch(remote, [*after_array, MERGE_BATCH], MERGE_JOBS, "the merge job")

    def _submit_array(self, record: InvocationRecord, remote: str, todo: list[int]) -> str:
        array = ",".join(map(str, todo)) + f"%{self.config.max_parallel}"
        # Host variables travel as NUL-separated name/value pairs on stdin into sbatch's environment,
        # which Slurm exports to the job: no value is in an argv or a file, here or on the cluster.
        names = record.host_env if self.shell.remote else ()
        secrets = "".join(f"{name}\0{os.environ.get(name, '')}\0" for name in names)
        # The credential of the nodes' proxies, one per submission: every element on a node presents it
        # to the proxy they share (slurm/node_proxy.py); an element with its own proxy draws its own.
        secrets += f"{proxy_wiring.TOKEN_ENV}\0{token_hex(32)}\0"
        return self._sbatch(remote, [f"--array={array}", BATCH], JOBS, "the job", secrets)

    def _sbatch(self, remote: str, args: list[str], ids: str, what: str, secrets: str = "") -> str:
        """Submit in the invocation folder, note the Slurm job id in `ids` there, return it."""
        script = (
            'while IFS= read -r -d "" n && IFS= read -r -d "" v; do export "$n=$v"; done; '
            'cd "$1" && shift && exec "$@"'
        )
        proc = self.shell.run(
            ["bash", "-c", script, "_", remote, "sbatch", "--parsable", *args], input=secrets
        )
        if proc.returncode != 0:
            lines = proc.stderr.strip().splitlines() or ["no message"]
            raise LauncherError(f"sbatch refused {what}: {lines[-1].removeprefix('sbatch: error: ')}")
        job_id = proc.stdout.strip().split(";")[0]
        self.shell.run(["bash", "-c", 'echo "$2" >> "$1"', "_", f"{remote}/{ids}", job_id])
        return job_id

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
        """Each element's own proxy (pyxis, launcher_python); read_stats finds the nodes' shared ones."""
        if tools.shares_node_proxy(self.config):
            return []
        return [Path(record.folder) / e.folder for e in elements(record.jobs)]

    def read_back(self, record: InvocationRecord) -> None:
        self.shell.download(self.remote_folder(record.folder), Path(record.folder))

    def look(self, record: InvocationRecord) -> Look:
        """The stage records were read back first, then the queue: a job that ends in between looks LOST
        and is looked at again."""
        folder = Path(record.folder)
        queue = array_states(self.shell, folder)
        merging = merge_state(self.shell, folder) if any(j.parts for j in record.jobs) else ("", "")
        records = events.read(folder / EVENTS)
        last_submit = max((i for i, e in enumerate(records) if e.kind == events.SUBMITTED), default=-1)
        killed = any(e.kind == events.KILLED for e in records[last_submit + 1 :])
        return QueueLook(queue, killed, self.shell.remote, merging)

    def cancel(self, record: InvocationRecord, statuses: list[JobStatus]) -> None:
        job_ids = []
        for name in (
            JOBS,
            MERGE_JOBS,
            EXPORT_JOBS,
        ):  # a merge or export waiting for a killed array must not run
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

    @classmethod
    def stop_orphan(cls, invocation_id: str) -> str | None:
        return None  # its Slurm job ids and its cluster were in the folder

    def describe(self) -> dict:
        where = f" on {self.shell.target}" if self.shell.remote else ""
        return {"resume by hand": f"launcher resume <id>  (resubmits only unfinished tasks{where})"}


@dataclass(frozen=True)
class QueueLook(Look):
    """Each array element's Slurm state and reason (and the merge job's, for sharded tasks' merge steps);
    a started element runs while Slurm says so (or, on this machine, while its run.sh lives)."""

    queue: dict[int, tuple[str, str]]  # array index -> (Slurm state, reason)
    killed: bool  # `launcher kill` came after the latest submission
    remote: bool
    merging: tuple[str, str] = ("", "")  # the latest merge job's (Slurm state, reason); none: ("", "")

    def view(self, n: int | None, job: PlannedJob) -> Scheduled:
        state, reason = self.merging if n is None else self.queue.get(n, ("", ""))
        ended = SLURM_ENDED.get(state)
        waiting = f"queued in Slurm ({reason})" if reason and reason != "None" else "queued in Slurm"
        return Scheduled(
            alive=state in SLURM_LIVE,
            killed=self.killed,
            waiting=waiting,
            failure=ended[1] if ended else "",
            ended=ended,
        )

    def running(self, n: int | None, job: PlannedJob, start: events.Event) -> tuple[State, str] | None:
        if self.view(n, job).alive or (not self.remote and is_running(start, RUN)):
            return State.RUNNING, ""
        return None


def proxy_start(spec: RunSpec, invocation_id: str, folder: str, proxy: tuple[int, dict[str, str]]) -> str:
    """An array element's lines that join its node's proxy (slurm/node_proxy.py) or start its own: from
    execution.launcher_image through the tasks' container runtime (the key and the credential run.sh hands
    the tasks as API_KEY, both to that container alone and by name), or with launcher_python."""
    import json

    cfg: SlurmConfig = spec.execution
    key = spec.target.api_endpoint.api_key
    adapter = json.loads(proxy[1][proxy_wiring.CONFIG_FILE]).get("adapter_config") or {}
    cache = adapter.get("caching_dir")  # a shared cache outside the invocation folder is written too
    mounts = (cache,) if cache and not str(cache).startswith(folder + "/") else ()
    names = (*((key,) if key else ()), proxy_wiring.TOKEN_ENV)
    if tools.shares_node_proxy(cfg):
        runner = tools.runner(cfg, invocation_id, folder, "node-proxy", names, mounts)
        return render_node_start(folder, runner, tools.node_proxy_name(invocation_id))
    runner = tools.runner(cfg, invocation_id, folder, "proxy", names, mounts)
    return proxy_wiring.render_start(
        "", '"$proxy_port"', config=f"{folder}/{proxy_wiring.CONFIG_FILE}", runner=runner
    )


def proxy_only_env(spec: RunSpec, task_env: frozenset[str]) -> tuple[str, ...]:
    """The endpoint key's variable when no task also names it in env_vars: the proxy alone reads it."""
    key = spec.target.api_endpoint.api_key
    return (key,) if key and key not in task_env else ()


def slurm_server(spec: RunSpec, invocation_id: str, folder: str) -> tuple[ServerSpec, dict] | None:
    """The deployment as NEL's Slurm examples run it: each array element starts its own model server and
    its task in the same allocation (one element per node: `--exclusive`, so ports never collide)."""
    planned = server_as_planned(spec, invocation_id)
    if planned is None:
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
    server, files = planned
    # One container name per array element (rendered for bash to expand; the id part is ours, hex).
    container = replace(server.container, name=f"{server.container.name}-{ELEMENT}")
    stdin = f"{folder}/{server.stdin}" if server.stdin != "/dev/null" else server.stdin
    return replace(server, container=container, stdin=stdin), files
