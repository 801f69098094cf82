"""What Slurm's queue says about an invocation's array job: squeue while it knows the job, sacct after.

Its states map to ours only for elements that ended without writing their own exit record."""

from __future__ import annotations

from pathlib import Path

from launcher.errors import LauncherError
from launcher.executors.slurm.shell import Local
from launcher.model import State

JOBS = "slurm_jobs"  # one submitted Slurm job id per line (resume appends)
EXPORT_JOBS = "slurm_export_jobs"  # its Slurm job ids, one per submission (kill cancels them too)

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


def array_states(shell: Local, folder: Path) -> dict[int, tuple[str, str]]:
    """Array index -> (Slurm state, reason) of the latest submission, from squeue (recent jobs too)."""
    try:
        job_id = (folder / JOBS).read_text().split()[-1]
    except (OSError, IndexError):
        return {}
    proc = shell.run(["squeue", "-h", "-r", "-t", "all", "-j", job_id, "-o", "%K|%T|%r"])
    if proc.returncode != 0 and "Invalid job id" not in proc.stderr:
        # Better no answer than a wrong one: unreachable Slurm must not turn running jobs into LOST.
        reason = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise LauncherError(f"squeue failed ({reason}); try again when Slurm answers")
    return parse_squeue(proc.stdout) or accounted_states(shell, job_id)


def accounted_states(shell: Local, job_id: str) -> dict[int, tuple[str, str]]:
    """Once squeue has forgotten the job (MinJobAge), Slurm's accounting still knows how each element
    ended: one sacct call. No accounting configured: no answer (the stage records still speak)."""
    proc = shell.run(["sacct", "-n", "-P", "-X", "-j", job_id, "-o", "JobID,State"])
    return parse_sacct(proc.stdout) if proc.returncode == 0 else {}


def parse_squeue(text: str) -> dict[int, tuple[str, str]]:
    """`squeue -r -o %K|%T|%r` lines -> array index -> (state, reason)."""
    states = {}
    for line in text.splitlines():
        index, _, rest = line.partition("|")
        state, _, reason = rest.partition("|")
        if index.strip().isdigit():
            states[int(index)] = (state.strip(), reason.strip())
    return states


def parse_sacct(text: str) -> dict[int, tuple[str, str]]:
    """`sacct -P -X -o JobID,State` lines ("123_4|CANCELLED by 0") -> array index -> (state, "")."""
    states = {}
    for line in text.splitlines():
        element, _, state = line.partition("|")
        _, _, index = element.partition("_")
        if index.isdigit():
            states[int(index)] = (state.split(" ")[0].strip(), "")  # "CANCELLED by 0" -> CANCELLED
    return states
