"""The Slurm executor: one array job per invocation, each task the same container as on the local executor.

This slice submits on the machine it runs on (a login node, or a single-node cluster); the task
scripts, stage records, results and resume are the local executor's. Submitting over SSH from a laptop
is not built yet: `execution.hostname` other than localhost is refused with a clear message.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from launcher import __version__
from launcher.config.schema import RunSpec
from launcher.errors import ConfigError, LauncherError
from launcher.executors.base import InvocationRecord, Plan, State
from launcher.executors.local import LocalExecutor, _RunAll
from launcher.state import EVENTS, RUN, append_event, read_events

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
    hostname: str | None = None  # the login node; this slice supports only this machine (None/localhost)


class SlurmExecutor(LocalExecutor):
    name = "slurm"
    config_class = SlurmConfig

    def plan(self, spec: RunSpec, invocation_id: str, folder: str, created: float) -> Plan:
        cfg: SlurmConfig = spec.execution
        if cfg.hostname not in (None, "", "localhost", "127.0.0.1"):
            raise ConfigError(
                "execution.hostname",
                "submitting over SSH is not supported yet",
                "Run the launcher on the login node (hostname: null)",
            )
        if spec.deployment.type != "none":
            raise ConfigError(
                "deployment", "the slurm executor runs no model server yet", "Use deployment=none"
            )
        local_plan = super().plan(spec, invocation_id, folder, created)
        files = {k: v for k, v in local_plan.files.items() if k != "run_all.sh"}
        files[BATCH] = render_sbatch(cfg, invocation_id, folder, [j.folder for j in local_plan.jobs])
        images = local_plan.images
        return Plan(invocation_id, folder, local_plan.jobs, files, local_plan.host_env, images)

    def check_prerequisites(self, plan: Plan) -> None:
        for tool in ("sbatch", "squeue", "scancel"):
            if not any(Path(d, tool).exists() for d in os.environ.get("PATH", "").split(os.pathsep)):
                raise LauncherError(f"{tool} is not on PATH: run the launcher on a Slurm login node")
        if self.config.container_runtime == "docker":
            super().check_prerequisites(plan)

    def start(self, record: InvocationRecord) -> None:
        folder = Path(record.folder)
        states = {s.job_id: s.state for s in self.status(record)} if (folder / JOBS).exists() else {}
        live = [j for j, st in states.items() if not st.terminal]
        if live:
            raise LauncherError(
                f"invocation {record.invocation_id} still has {len(live)} job(s) queued or running; "
                "wait for them or `launcher kill` it first"
            )
        todo = [n for n, job in enumerate(record.jobs) if states.get(job["job_id"]) != State.SUCCEEDED]
        if not todo:
            return
        for n in todo:
            append_event(folder / record.jobs[n]["folder"] / EVENTS, "queued")
        array = ",".join(map(str, todo)) + f"%{self.config.max_parallel}"
        proc = subprocess.run(
            ["sbatch", "--parsable", f"--array={array}", BATCH], cwd=folder, capture_output=True, text=True
        )
        if proc.returncode != 0:
            lines = proc.stderr.strip().splitlines() or ["no message"]
            raise LauncherError(f"sbatch refused the job: {lines[-1].removeprefix('sbatch: error: ')}")
        job_id = proc.stdout.strip().split(";")[0]
        with open(folder / JOBS, "a", encoding="utf-8") as fh:
            fh.write(job_id + "\n")
        append_event(folder / EVENTS, "submitted", job_id)

    def status(self, record: InvocationRecord):
        self._queue = self._slurm_states(Path(record.folder))  # one squeue call per status
        return super().status(record)

    def _scheduler(self, record: InvocationRecord, job: dict) -> _RunAll:
        folder = Path(record.folder)
        index = next(n for n, j in enumerate(record.jobs) if j["job_id"] == job["job_id"])
        state, reason = self._queue.get(index, ("", ""))
        events = read_events(folder / EVENTS)
        last_submit = max((i for i, e in enumerate(events) if e[0] == "submitted"), default=-1)
        killed = any(e[0] == "killed" for e in events[last_submit + 1 :])
        failure = SLURM_ENDED.get(state, (None, ""))[1]
        waiting = f"queued in Slurm ({reason})" if reason and reason != "None" else "queued in Slurm"
        return _RunAll(alive=state in SLURM_LIVE, killed=killed, waiting=waiting, failure=failure)

    def _slurm_states(self, folder: Path) -> dict[int, tuple[str, str]]:
        """Array index -> (Slurm state, reason) of the latest submission, from squeue (recent jobs too)."""
        try:
            job_id = (folder / JOBS).read_text().split()[-1]
        except (OSError, IndexError):
            return {}
        proc = subprocess.run(
            ["squeue", "-h", "-r", "-t", "all", "-j", job_id, "-o", "%K|%T|%r"],
            capture_output=True,
            text=True,
        )
        states = {}
        for line in proc.stdout.splitlines():
            index, _, rest = line.partition("|")
            state, _, reason = rest.partition("|")
            if index.strip().isdigit():
                states[int(index)] = (state.strip(), reason.strip())
        return states

    def kill(self, record: InvocationRecord) -> None:
        folder = Path(record.folder)
        try:
            job_ids = (folder / JOBS).read_text().split()
        except OSError:
            job_ids = []
        statuses = self.status(record)
        append_event(folder / EVENTS, "killed")
        for status in statuses:
            if not status.state.terminal:
                append_event(Path(status.folder) / EVENTS, "killed")
        if job_ids:
            subprocess.run(["scancel", *job_ids], capture_output=True)
        if self.config.container_runtime == "docker":
            self.docker.stop(record.invocation_id, self.config.stop_grace)

    def describe(self) -> dict:
        return {"resume by hand": "launcher resume <id>  (resubmits only unfinished tasks)"}


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
