"""A job's state from its stage records, what its scheduler says, and whether its process lives. Pure.

The scheduler is whatever starts the jobs: run_all.sh on this machine, Slurm's queue on a cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from launcher.model import State
from launcher.store.events import EXITED, KILLED, STARTED, Event, History, succeeded

EXIT_REASONS = {
    74: "the task could not write its results folder (disk full?); see logs/output.log",
    125: "docker could not start the container",
    126: "the command in the container is not executable",
    127: "the command was not found in the container",
    137: "killed with SIGKILL (out of memory, or docker kill)",
    143: "stopped with SIGTERM",
}
KILLED_BY_US = "killed by `launcher kill`"
KILL_SIGNALS = (137, 143)  # exit codes of SIGKILL and SIGTERM


class SchedulerView(Protocol):
    """What the scheduler says about one job (the public protocol an executor implements)."""

    @property
    def alive(self) -> bool:
        """It will still start (or is running) the job."""

    @property
    def killed(self) -> bool:
        """`launcher kill` stopped the scheduler's current run."""

    @property
    def waiting(self) -> str:
        """Why a job that has not started yet waits."""

    @property
    def failure(self) -> str:
        """Why the scheduler ended before starting the job, if it did."""

    @property
    def ended(self) -> tuple[State, str] | None:
        """Its verdict on a started job that left no exit record (e.g. Slurm's TIMEOUT), if any."""


@dataclass(frozen=True)
class Scheduled:
    """A plain SchedulerView."""

    alive: bool = False
    killed: bool = False
    waiting: str = ""
    failure: str = ""
    ended: tuple[State, str] | None = None


# the open `started` record -> (RUNNING or PENDING, reason), or None if nothing runs it.
Liveness = Callable[[Event], "tuple[State, str] | None"]


@dataclass(frozen=True)
class Verdict:
    state: State
    reason: str = ""
    exit_code: int | None = None
    started: float | None = None
    ended: float | None = None


def derive_status(
    history: History,
    scheduler: SchedulerView,
    alive: Liveness,
    last_output: Callable[[], str] = lambda: "",
) -> Verdict:
    """The state of one job. `last_output` gives the last line of its output, read only for a failure."""
    events = list(history.current)
    starts = [i for i, e in enumerate(events) if e.kind == STARTED]
    if not starts and succeeded(history.previous):
        # The scheduler re-queued it, but run.sh skips a task that already succeeded: that attempt stands.
        previous = list(history.previous)
        events = previous[max(i for i, e in enumerate(previous) if e.kind == STARTED) :]
        starts = [0]
    if not starts:
        if scheduler.killed or any(e.kind == KILLED for e in events):
            return Verdict(State.KILLED, "killed before it started")
        if scheduler.alive:
            return Verdict(State.PENDING, scheduler.waiting)
        if scheduler.failure:
            return Verdict(State.FAILED, scheduler.failure)
        return Verdict(State.LOST, "never started and nothing will start it; `launcher resume` starts it")
    start = events[starts[-1]]
    after = events[starts[-1] + 1 :]
    exits = [e for e in after if e.kind == EXITED]
    kills = [e for e in after if e.kind == KILLED]
    if exits:
        code = exits[-1].exit_code
        timing = dict(exit_code=code, started=start.at, ended=exits[-1].at)
        if code == 0:
            return Verdict(State.SUCCEEDED, **timing)
        # The kill may have read the job before its start record (a race): its signal still ended it.
        if kills or (scheduler.killed and code in KILL_SIGNALS):
            return Verdict(State.KILLED, KILLED_BY_US, **timing)
        if code in KILL_SIGNALS and scheduler.ended:  # run.sh stopped its container when signalled: why
            return Verdict(*scheduler.ended, **timing)  # the signal came is the scheduler's (time limit)
        reason = exits[-1].detail or EXIT_REASONS.get(code, "") or last_output()
        return Verdict(State.FAILED, reason, **timing)
    if kills:
        return Verdict(State.KILLED, KILLED_BY_US, started=start.at, ended=kills[0].at)
    live = alive(start)
    if live:
        return Verdict(live[0], live[1], started=start.at)
    if scheduler.ended:
        state, reason = scheduler.ended
        return Verdict(state, reason, started=start.at)
    if scheduler.killed:  # started as the kill came: stopped by it, not lost
        return Verdict(State.KILLED, KILLED_BY_US, started=start.at)
    return Verdict(
        State.LOST,
        f"run.sh (pid {start.pid}) ended without an exit record; `launcher resume` continues it",
        started=start.at,
    )
