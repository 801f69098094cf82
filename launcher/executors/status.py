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


def combine(job_id: str, merge: Verdict, parts: list[Verdict]) -> Verdict:
    """A sharded task's one verdict from its merge step's and its shards' (`parts`, shard 0 first). Once
    the merge started it speaks for the task (its gate names shards that did not succeed); before, the
    shards do: running while any runs, pending while any waits, else the first failed (or killed, lost)
    shard, named."""
    if merge.started is not None:
        return merge
    started = min((p.started for p in parts if p.started is not None), default=None)
    running = [k for k, p in enumerate(parts) if p.state == State.RUNNING]
    pending = [k for k, p in enumerate(parts) if p.state == State.PENDING]
    bad = [k for k, p in enumerate(parts) if p.state.terminal and p.state != State.SUCCEEDED]
    bad.sort(key=lambda k: parts[k].state != State.FAILED)  # a failure first, then kills and losses
    named = [f"shard {k} ({job_id}.{k}) {parts[k].state.value}: {parts[k].reason}".rstrip(": ") for k in bad]
    if running:
        reason = "; ".join([f"{len(running)} of {len(parts)} shards running", *named[:1]])
        return Verdict(State.RUNNING, reason, started=started)
    if pending:
        return Verdict(State.PENDING, "; ".join([parts[pending[0]].reason, *named[:1]]), started=started)
    if merge.state == State.PENDING:
        return Verdict(State.PENDING, "every shard ended; the merge comes next", started=started)
    if bad:
        first = parts[bad[0]]
        return Verdict(first.state, named[0], first.exit_code, started, first.ended)
    return Verdict(merge.state, merge.reason, merge.exit_code, started, merge.ended)
