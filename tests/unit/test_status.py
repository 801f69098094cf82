"""derive_status, table-tested: every branch of a job's state from its records, scheduler and process."""

import pytest

from launcher.executors.status import Scheduled, derive_status
from launcher.model import State
from launcher.store.events import History, parse

RUNNING = (State.RUNNING, "")


def history(text: str) -> History:
    return History.of(parse(text))


def nothing_runs(start):
    return None


def runs(start):
    return RUNNING


QUEUED = "queued 100\n"
CASES = [
    # (name, events.log, scheduler, process liveness, expected state, expected reason fragment)
    (
        "queued, waiting for a slot",
        QUEUED,
        Scheduled(alive=True, waiting="waiting for a free slot"),
        nothing_runs,
        State.PENDING,
        "free slot",
    ),
    ("running", QUEUED + "started 101 4242\n", Scheduled(alive=True), runs, State.RUNNING, ""),
    (
        "container starting",
        QUEUED + "started 101 4242\n",
        Scheduled(alive=True),
        lambda start: (State.PENDING, "container starting"),
        State.PENDING,
        "container starting",
    ),
    ("exited 0", QUEUED + "started 101 1\nexited 109 0\n", Scheduled(), nothing_runs, State.SUCCEEDED, ""),
    (
        "exited non-zero, known code",
        QUEUED + "started 101 1\nexited 109 127\n",
        Scheduled(),
        nothing_runs,
        State.FAILED,
        "command was not found",
    ),
    (
        "exited non-zero with the script's reason",
        QUEUED + "started 101 1\nexited 109 78 host variable X is not set\n",
        Scheduled(),
        nothing_runs,
        State.FAILED,
        "host variable X",
    ),
    (
        "exited non-zero, reason from the output",
        QUEUED + "started 101 1\nexited 109 3\n",
        Scheduled(),
        nothing_runs,
        State.FAILED,
        "last line of output",
    ),
    (
        "killed while running",
        QUEUED + "started 101 1\nkilled 105\n",
        Scheduled(killed=True),
        nothing_runs,
        State.KILLED,
        "launcher kill",
    ),
    (
        "killed, then its exit record",
        QUEUED + "started 101 1\nkilled 105\nexited 106 143\n",
        Scheduled(),
        nothing_runs,
        State.KILLED,
        "launcher kill",
    ),
    # M9: the kill read the job before its start record, then stopped it: KILLED, not LOST or FAILED
    (
        "kill raced the start: no exit record",
        QUEUED + "started 101 1\n",
        Scheduled(killed=True),
        nothing_runs,
        State.KILLED,
        "launcher kill",
    ),
    (
        "kill raced the start: SIGTERM exit",
        QUEUED + "started 101 1\nexited 102 143\n",
        Scheduled(killed=True),
        nothing_runs,
        State.KILLED,
        "launcher kill",
    ),
    (
        "failed on its own before a kill of the invocation",
        QUEUED + "started 101 1\nexited 102 1\n",
        Scheduled(killed=True),
        nothing_runs,
        State.FAILED,
        "last line",
    ),
    ("killed before it started", QUEUED + "killed 105\n", Scheduled(), nothing_runs, State.KILLED, "before"),
    (
        "scheduler killed before it started",
        QUEUED,
        Scheduled(killed=True),
        nothing_runs,
        State.KILLED,
        "before",
    ),
    (
        "resumed after a kill, running again",
        QUEUED + "started 101 1\nkilled 105\nexited 106 143\n" + "queued 200\nstarted 201 2\n",
        Scheduled(alive=True),
        runs,
        State.RUNNING,
        "",
    ),
    (
        "resumed after a kill, waiting",
        QUEUED + "started 101 1\nkilled 105\n" + "queued 200\n",
        Scheduled(alive=True, waiting="waiting for a free slot"),
        nothing_runs,
        State.PENDING,
        "free slot",
    ),
    (
        "resumed after success: the success stands",
        QUEUED + "started 101 1\nexited 109 0\nqueued 200\n",
        Scheduled(alive=True),
        nothing_runs,
        State.SUCCEEDED,
        "",
    ),
    (
        "LOST: started, no exit record, nothing runs it",
        QUEUED + "started 101 4242\n",
        Scheduled(),
        nothing_runs,
        State.LOST,
        "pid 4242",
    ),
    (
        "PID reused by another process: liveness says no",
        QUEUED + "started 101 4242\n",
        Scheduled(alive=True),
        nothing_runs,
        State.LOST,
        "ended without an exit record",
    ),
    (
        "scheduler says gone before start",
        QUEUED,
        Scheduled(alive=False),
        nothing_runs,
        State.LOST,
        "never started",
    ),
    (
        "scheduler failed before start",
        QUEUED,
        Scheduled(failure="the model server exited"),
        nothing_runs,
        State.FAILED,
        "model server",
    ),
    (
        "scheduler's verdict on a started job",
        QUEUED + "started 101 1\n",
        Scheduled(ended=(State.FAILED, "hit the Slurm time limit")),
        nothing_runs,
        State.FAILED,
        "time limit",
    ),
    (
        "stopped by its scheduler's signal: the scheduler says why",
        QUEUED + "started 101 1\nexited 160 143\n",
        Scheduled(ended=(State.FAILED, "hit the Slurm time limit")),
        nothing_runs,
        State.FAILED,
        "time limit",
    ),
    (
        "no records at all, scheduler alive",
        "",
        Scheduled(alive=True, waiting="queued in Slurm"),
        nothing_runs,
        State.PENDING,
        "queued in Slurm",
    ),
]


@pytest.mark.parametrize(
    ("events", "scheduler", "alive", "state", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_derive_status(events, scheduler, alive, state, reason):
    verdict = derive_status(history(events), scheduler, alive, lambda: "last line of output")
    assert verdict.state == state
    assert reason in verdict.reason


def test_times_and_exit_code_come_from_the_current_attempt():
    text = QUEUED + "started 101 1\nexited 109 3\nqueued 200\nstarted 201 2\nexited 230 0\n"
    verdict = derive_status(history(text), Scheduled(), nothing_runs)
    assert (verdict.state, verdict.exit_code, verdict.started, verdict.ended) == (
        State.SUCCEEDED,
        0,
        201,
        230,
    )


def test_the_process_is_asked_with_the_recorded_pid():
    asked = []
    derive_status(
        history(QUEUED + "started 101 4242 99\n"), Scheduled(), lambda e: asked.append((e.pid, e.ticks))
    )
    assert asked == [(4242, "99")]


def test_the_output_is_read_only_for_a_failure_without_a_reason():
    def boom():
        raise AssertionError("read")

    assert derive_status(history(QUEUED + "started 1 1\nexited 2 0\n"), Scheduled(), nothing_runs, boom).state
    assert derive_status(
        history(QUEUED + "started 1 1\nexited 2 127\n"), Scheduled(), nothing_runs, boom
    ).reason
