"""The Slurm executor: one array job per invocation, each task the same container as on the local executor.

It submits on this machine (a login node) or, with `execution.hostname`, on a login node reached over
SSH: the invocation folder is copied there once, and `status`, `logs` and `kill` bring back the stage
records, progress and results over one reused connection. Task scripts, stage records, results and
resume are the local executor's.
"""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

from launcher import __version__
from launcher.config.schema import RunSpec
from launcher.errors import ConfigError, LauncherError
from launcher.executors.base import InvocationRecord, Plan, State
from launcher.executors.local import LocalExecutor, _alive, _RunAll
from launcher.executors.slurm.shell import SSH, Local
from launcher.state import EVENTS, LABEL_INVOCATION, OUTPUT_LOG, RUN, read_events
from launcher.tasks import BUILD_HINTS

BATCH = "sbatch.sh"
JOBS = "slurm_jobs"  # one submitted Slurm job id per line (resume appends)

# Slurm job states -> ours, for array elements that ended without our exit record.
SLURM_ENDED = {
    "CANCELLED": (State.KILLED, "cancelled in Slurm"),
    "TIMEOUT": (State.FAILED, "hit the Slurm time limit; `launcher resume` continues it"),
    "NODE_FAIL": (State.FAILED, "the node failed; `launcher resume` continues it"),
    "PREEMPTED": (State.LOST, "preempted; `launcher resume` continues it"),
    "OUT_OF_MEMORY": (State.FAILED, "out of memory"),
    "BOOT_FAIL": (State.FAILED, "the node failed to boot"),
    "DEADLINE": (State.FAILED, "missed its deadline"),
    "FAILED": (State.FAILED, "the batch script failed"),
}
SLURM_LIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "RESIZING", "SUSPENDED"}


@dataclass(frozen=True)
class SlurmConfig:
    output_dir: str = "results"  # on a shared file system: the nodes write results there
    partition: str | None = None
    account: str | None = None
    time_limit: str = "04:00:00"  # per task (array element)
    nodes: int = 1
    gpus_per_node: int = 0
    max_parallel: int = 8  # array elements running at once (--array=...%N)
    extra_sbatch: tuple[str, ...] = ()  # more "#SBATCH ..." options, e.g. "--qos=high"
    container_runtime: Literal["docker", "pyxis"] = "docker"  # pyxis: srun --container-image
    network: str = "host"  # docker runtime only
    extra_docker_args: tuple[str, ...] = ()
    stop_grace: int = 5
    user: str | None = None
    pull: Literal["missing", "never"] = "missing"
    hostname: str | None = None  # login node reached over SSH; None or localhost: submit on this machine
    username: str | None = None  # SSH user (default: the SSH configuration's)
    port: int = 22  # SSH port
    ssh_options: tuple[str, ...] = ()  # extra `ssh -o` options, e.g. ["IdentityFile=~/.ssh/cluster"]
    remote_output_dir: str | None = None  # output_dir on the cluster (default: the same path)


class SlurmExecutor(LocalExecutor):
    name = "slurm"
    config_class = SlurmConfig
    startup_wait = 0.0  # submission is non-blocking: the jobs wait in Slurm's queue, not in our command

    @cached_property
    def shell(self) -> Local:
        cfg: SlurmConfig = self.config
        if cfg.hostname in (None, "", "localhost"):
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
        if spec.deployment.type != "none":
            raise ConfigError(
                "deployment", "the slurm executor runs no model server yet", "Use deployment=none"
            )
        remote = self.remote_folder(folder)
        local_plan = super().plan(spec, invocation_id, remote, created)
        files = {k: v for k, v in local_plan.files.items() if k != "run_all.sh"}
        files[BATCH] = render_sbatch(
            spec.execution, invocation_id, remote, [j.folder for j in local_plan.jobs]
        )
        return Plan(invocation_id, folder, local_plan.jobs, files, local_plan.host_env, local_plan.images)

    def check_prerequisites(self, plan: Plan) -> None:
        where = self.shell.target if self.shell.remote else "this machine"
        if self.shell.run(
            ["bash", "-c", "command -v sbatch && command -v squeue && command -v scancel"]
        ).returncode:
            raise LauncherError(f"sbatch, squeue or scancel is missing on {where}: is it a Slurm login node?")
        if self.config.container_runtime != "docker":
            return
        if not self.shell.remote:
            super().check_prerequisites(plan)
            return
        for image in sorted({job.image for job in plan.jobs}):
            if self.shell.run(["docker", "image", "inspect", image]).returncode:
                hint = BUILD_HINTS.get(image, "build or pull it there")
                raise LauncherError(f"image {image} is not on {where}; {hint}")

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
        todo = [n for n, job in enumerate(record.jobs) if states.get(job["job_id"]) != State.SUCCEEDED]
        if not todo:
            return "every task already succeeded: nothing submitted"
        for n in todo:
            self._append(f"{remote}/{record.jobs[n]['folder']}/{EVENTS}", "queued")
        array = ",".join(map(str, todo)) + f"%{self.config.max_parallel}"
        # Host variables travel as NUL-separated name/value pairs on stdin into sbatch's environment,
        # which Slurm exports to the job: no value is in an argv or a file, here or on the cluster.
        names = record.extra.get("host_env", []) if self.shell.remote else []
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
        self._append(f"{remote}/{EVENTS}", "submitted", job_id)
        self.shell.download(remote, folder)
        where = f" on {self.shell.target}" if self.shell.remote else ""
        return f"slurm job {job_id}{where} (array {array})"

    def _append(self, path: str, event: str, value: str = "") -> None:
        """A stage record, written where the jobs write theirs (here or on the cluster)."""
        self.shell.run(["bash", "-c", 'echo "$1 $(date +%s) $2" >> "$3"', "_", event, value, path])

    def _refresh(self, record: InvocationRecord) -> None:
        """Records first, then the queue: a job that ends in between looks LOST and is read again."""
        folder = Path(record.folder)
        self.shell.download(self.remote_folder(record.folder), folder)
        self._queue = self._slurm_states(folder)
        self._ended: dict[str, tuple[State, str]] = {}
        events = read_events(folder / EVENTS)
        last_submit = max((i for i, e in enumerate(events) if e[0] == "submitted"), default=-1)
        self._killed = any(e[0] == "killed" for e in events[last_submit + 1 :])

    def _scheduler(self, record: InvocationRecord, job: dict) -> _RunAll:
        index = next(n for n, j in enumerate(record.jobs) if j["job_id"] == job["job_id"])
        state, reason = self._queue.get(index, ("", ""))
        failure = SLURM_ENDED.get(state, (None, ""))[1]
        if state in SLURM_ENDED:
            self._ended[job["job_id"]] = SLURM_ENDED[state]
        waiting = f"queued in Slurm ({reason})" if reason and reason != "None" else "queued in Slurm"
        return _RunAll(alive=state in SLURM_LIVE, killed=self._killed, waiting=waiting, failure=failure)

    def _live(self, job: dict, pid: int, run_all: _RunAll, containers) -> tuple[State, str] | None:
        if run_all.alive or (not self.shell.remote and _alive(pid, RUN)):
            return State.RUNNING, ""
        return self._ended.get(job["job_id"])  # TIMEOUT, NODE_FAIL, PREEMPTED...: Slurm says why

    def _slurm_states(self, folder: Path) -> dict[int, tuple[str, str]]:
        """Array index -> (Slurm state, reason) of the latest submission, from squeue (recent jobs too)."""
        try:
            job_id = (folder / JOBS).read_text().split()[-1]
        except (OSError, IndexError):
            return {}
        proc = self.shell.run(["squeue", "-h", "-r", "-t", "all", "-j", job_id, "-o", "%K|%T|%r"])
        if proc.returncode != 0 and "Invalid job id" not in proc.stderr:
            # Better no answer than a wrong one: unreachable Slurm must not turn running jobs into LOST.
            reason = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            raise LauncherError(f"squeue failed ({reason}); try again when Slurm answers")
        states = {}
        for line in proc.stdout.splitlines():
            index, _, rest = line.partition("|")
            state, _, reason = rest.partition("|")
            if index.strip().isdigit():
                states[int(index)] = (state.strip(), reason.strip())
        return states

    def kill(self, record: InvocationRecord) -> None:
        folder, remote = Path(record.folder), self.remote_folder(record.folder)
        statuses = self.status(record)
        self._append(f"{remote}/{EVENTS}", "killed")
        for status in statuses:
            if not status.state.terminal:
                self._append(f"{remote}/{Path(status.folder).name}/{EVENTS}", "killed")
        try:
            job_ids = (folder / JOBS).read_text().split()
        except OSError:
            job_ids = []
        if job_ids:
            self.shell.run(["scancel", *job_ids])
        if self.config.container_runtime == "docker" and not self.shell.remote:
            self.docker.stop(record.invocation_id, self.config.stop_grace)
        elif self.config.container_runtime == "docker":
            stop = (
                'ids=$(docker ps -q --filter "label=$1"); '
                '[ -z "$ids" ] || docker stop -t "$2" $ids >/dev/null'
            )
            label = f"{LABEL_INVOCATION}={record.invocation_id}"
            self.shell.run(["bash", "-c", stop, "_", label, str(self.config.stop_grace)])
        self.shell.download(remote, folder)

    def logs(self, record: InvocationRecord, job_id: str, follow: bool):
        if not self.shell.remote:
            yield from super().logs(record, job_id, follow)
            return
        job = next(j for j in record.jobs if j["job_id"] == job_id)
        path, offset = Path(record.folder) / job["folder"] / OUTPUT_LOG, 0
        while True:
            finished = self._job_finished(record, job_id)  # downloads the latest copy first
            if path.exists():
                with open(path, encoding="utf-8", errors="replace") as fh:
                    fh.seek(offset)
                    chunk = fh.read()
                    offset = fh.tell()
                if chunk:
                    yield chunk
            if finished or not follow:
                return
            time.sleep(2)

    def describe(self) -> dict:
        where = f" on {self.shell.target}" if self.shell.remote else ""
        return {"resume by hand": f"launcher resume <id>  (resubmits only unfinished tasks{where})"}


def render_sbatch(cfg: SlurmConfig, invocation_id: str, folder: str, task_folders: list[str]) -> str:
    options = [
        f"--job-name=launcher-{invocation_id}",
        f"--output={folder}/logs/slurm-%A_%a.out",
        "--open-mode=append",
        f"--time={cfg.time_limit}",
        f"--nodes={cfg.nodes}",
        "--requeue",
    ]
    if cfg.partition:
        options.append(f"--partition={cfg.partition}")
    if cfg.account:
        options.append(f"--account={cfg.account}")
    if cfg.gpus_per_node:
        options.append(f"--gpus-per-node={cfg.gpus_per_node}")
    options += list(cfg.extra_sbatch)
    lines = (
        ["#!/usr/bin/env bash"]
        + [f"#SBATCH {shlex.quote(o)}" for o in options]
        + [
            f"# Invocation {invocation_id}, generated by launcher {__version__}: one array element per task.",
            "# The array indices are given at submission (`launcher resume` submits only unfinished tasks).",
            "# Host variables reach run.sh through Slurm's environment export; no value is written here.",
            f"tasks=({' '.join(shlex.quote(f) for f in task_folders)})",
            f"cd {shlex.quote(folder)} || exit 1",
            f'exec bash "${{tasks[$SLURM_ARRAY_TASK_ID]}}/{RUN}"',
        ]
    )
    return "\n".join(lines) + "\n"
