"""Submit's wait for the first wave (issue 17): bounded by the command's age, an explicit wait honoured,
always one look; and the few docker CLI calls status and kill make, with their failure as one line."""

import os
import stat

import pytest

from launcher import api
from launcher.errors import LauncherError
from launcher.executors.base import Executor
from launcher.executors.container.docker_client import Docker
from launcher.executors.container.process import age
from launcher.model import InvocationRecord, JobStatus, PlannedJob, State

JOBS = tuple(PlannedJob(f"inv.{n}", f"t{n}", f"t{n}", "img") for n in range(3))
RECORD = InvocationRecord("inv", "/nonexistent", "fake", {}, JOBS, 0.0)


class Counting(Executor):
    """Every look says every job is still pending (nothing started): submit can only stop at its limit."""

    name, config_class, startup_wait = "fake", dict, 1.0

    def __init__(self):
        super().__init__({})
        self.looks = 0

    def plan(self, *_):
        raise NotImplementedError

    def start(self, record):
        return "started"

    def status(self, record):
        self.looks += 1
        return [JobStatus(j.job_id, j.task, State.PENDING, "/nonexistent") for j in record.jobs]

    def kill(self, record):
        raise NotImplementedError

    def logs(self, *_):
        raise NotImplementedError

    check_prerequisites = proxy_stats = describe = stop_orphan = logs


@pytest.fixture
def unlocked(monkeypatch):
    """No invocation folder here: the lock is the store's business, not this test's."""
    import contextlib

    monkeypatch.setattr(api.layout, "invocation_lock", lambda *_: contextlib.nullcontext())


@pytest.mark.parametrize(("spent", "more_than_one_look"), [(5.0, False), (1.9, False), (0.2, True)])
def test_the_wait_ends_by_the_budget_counted_from_the_command_start(
    unlocked, monkeypatch, spent, more_than_one_look
):
    from launcher.executors.container import process

    monkeypatch.setattr(process, "age", lambda _pid: spent)  # as if the command had started `spent` s ago
    executor = Counting()
    launched = api._start(executor, RECORD, None)
    assert (executor.looks > 1) == more_than_one_look and launched.note == "started"
    assert [s.state for s in launched.statuses] == [State.PENDING] * 3  # honest: nothing started


def test_an_explicit_wait_is_honoured_and_zero_looks_once(unlocked):
    executor = Counting()
    api._start(executor, RECORD, 0.0)
    assert executor.looks == 1
    executor = Counting()
    api._start(executor, RECORD, 0.5)
    assert executor.looks > 1


def test_age():
    assert 0 < age(os.getpid()) <= age(1)
    assert age(2**22 + 12345) is None  # above pid_max's default: no such process


def fake_docker(tmp_path, monkeypatch, script: str) -> None:
    """A `docker` on PATH that prints what an engine would (or fails like an engine that is down, which
    cannot be arranged on a machine whose engine other tests use)."""
    path = tmp_path / "docker"
    path.write_text(f'#!/usr/bin/env bash\necho "$@" >> {tmp_path}/argv\n{script}\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")


def test_containers_are_listed_by_one_docker_ps(tmp_path, monkeypatch):
    fake_docker(tmp_path, monkeypatch, "printf 'aaa\\trunning\\tinv.0\\nbbb\\tcreated\\tinv.1\\n'")
    assert Docker().containers("inv") == {
        "inv.0": {"status": "running", "id": "aaa"},
        "inv.1": {"status": "created", "id": "bbb"},
    }
    (argv,) = (tmp_path / "argv").read_text().splitlines()
    assert argv.startswith("ps --all --no-trunc --filter label=launcher.invocation=inv --format")


def test_stop_is_one_docker_stop_of_the_running_containers(tmp_path, monkeypatch):
    fake_docker(
        tmp_path, monkeypatch, '[ "$1" = ps ] && printf "aaa\\nbbb\\n"; [ "$1" = stop ] && exit 1; true'
    )
    assert Docker().stop("inv", grace=5) == 2  # a container gone meanwhile (exit 1) is what we wanted
    assert (tmp_path / "argv").read_text().splitlines()[1] == "stop --time 5 aaa bbb"


def test_an_engine_that_is_down_is_one_line(tmp_path, monkeypatch):
    fake_docker(
        tmp_path, monkeypatch, 'echo "Cannot connect to the Docker daemon at unix:///x.sock" >&2; exit 1'
    )
    with pytest.raises(
        LauncherError, match=r"^Docker engine is not reachable \(Cannot connect to the Docker"
    ):
        Docker().containers("inv")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(LauncherError, match="the docker command is not installed"):
        Docker().stop("inv", 5)
