"""What Slurm's queue says, as the executor reads it: squeue/sacct lines parsed, and each element's view
(table tests; the real queue is in tests/integration/test_slurm.py)."""

import pytest

from launcher.executors.slurm.executor import QueueLook
from launcher.executors.slurm.queue import parse_sacct, parse_squeue
from launcher.model import PlannedJob, State
from launcher.store.events import Event

JOB = PlannedJob("inv.0", "t", "t", "img")


def test_squeue_lines_by_array_index():
    text = "0|RUNNING|None\n 1 | PENDING | Priority\nN/A|PENDING|x\n\n"
    assert parse_squeue(text) == {0: ("RUNNING", "None"), 1: ("PENDING", "Priority")}


def test_sacct_lines_by_array_index_without_the_actor():
    text = "42_0|COMPLETED\n42_1|CANCELLED by 0\n42|FAILED\n42.batch|COMPLETED\n"
    assert parse_sacct(text) == {0: ("COMPLETED", ""), 1: ("CANCELLED", "")}


@pytest.mark.parametrize(
    ("queue", "killed", "alive", "waiting", "ended"),
    [
        ({}, False, False, "queued in Slurm", None),
        ({0: ("PENDING", "Priority")}, False, True, "queued in Slurm (Priority)", None),
        ({0: ("RUNNING", "None")}, True, True, "queued in Slurm", None),
        ({0: ("TIMEOUT", "")}, False, False, "queued in Slurm", State.FAILED),
        ({0: ("CANCELLED", "")}, False, False, "queued in Slurm", State.KILLED),
    ],
)
def test_each_element_is_seen_as_the_queue_says(queue, killed, alive, waiting, ended):
    view = QueueLook(queue, killed, remote=True).view(0, JOB)
    assert (view.alive, view.killed, view.waiting) == (alive, killed, waiting)
    assert (view.ended[0] if view.ended else None) == ended
    assert view.failure == (view.ended[1] if view.ended else "")


def test_a_started_element_runs_while_slurm_says_so():
    start = Event("started", 0.0, f"{2**22 + 1} 1")  # its run.sh: a pid no process has here
    assert QueueLook({0: ("RUNNING", "")}, False, remote=True).running(0, JOB, start) == (State.RUNNING, "")
    assert QueueLook({0: ("COMPLETED", "")}, False, remote=True).running(0, JOB, start) is None
    assert QueueLook({}, False, remote=False).running(0, JOB, start) is None
