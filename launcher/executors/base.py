"""The executor interface: plan (pure), start, then status, logs and kill by the run record.

The core writes the plan's files and the run record; `start` serves both submit and resume."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar

from launcher.config.schema import RunSpec


class State(str, Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    KILLED = "KILLED"
    LOST = "LOST"

    @property
    def terminal(self) -> bool:
        return self not in (State.PENDING, State.RUNNING)


@dataclass(frozen=True)
class PlannedJob:
    job_id: str  # "<invocation id>.<n>"
    task: str  # the task's name as configured
    folder: str  # the task's folder, relative to the invocation folder
    image: str
    command: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    """Everything submit would do, as data: printable by --dry-run, checkable by golden tests."""

    invocation_id: str
    folder: str  # absolute invocation folder
    jobs: tuple[PlannedJob, ...]
    files: dict[str, str]  # relative path -> content; scripts end in .sh and are made executable
    host_env: tuple[str, ...] = ()  # host variables that must be set when the work runs
    images: tuple[str, ...] = ()  # images needed besides the jobs' own (e.g. a model server)


@dataclass(frozen=True)
class JobStatus:
    job_id: str
    task: str
    state: State
    folder: str
    done: int | None = None  # samples finished, from the harness's progress file
    total: int | None = None
    exit_code: int | None = None
    reason: str = ""
    started: float | None = None
    ended: float | None = None
    score: str = ""  # headline metric from the task's results, e.g. "exact_match=0.8125"


@dataclass
class InvocationRecord:
    """What is known of an invocation on disk (the run record), independent of the executor."""

    invocation_id: str
    folder: str
    executor: str
    execution: dict  # the executor's config as plain data
    jobs: list[dict]  # [{job_id, task, folder, image}]
    created: float
    sweep_id: str | None = None
    extra: dict = field(default_factory=dict)


class Executor(ABC):
    """Subclass, set `name` and `config_class`, and register under the `launcher.executors` entry point."""

    name: ClassVar[str]
    config_class: ClassVar[type]  # frozen dataclass; its defaults become the `execution/<name>` option
    startup_wait: ClassVar[float] = 0.0  # seconds submit waits to see jobs really start (0: report at once)

    def __init__(self, config: Any):
        self.config = config

    def check_prerequisites(self, plan: Plan) -> None:  # noqa: B027 - optional hook
        """Raise LauncherError with a fix-it message when the work cannot start."""

    @abstractmethod
    def plan(self, spec: RunSpec, invocation_id: str, folder: str, created: float) -> Plan: ...

    @abstractmethod
    def start(self, record: InvocationRecord) -> str | None:
        """Start (or resume) the written plan without waiting; finished jobs must be skipped.

        May return one line for the user, e.g. the scheduler's job id."""

    @abstractmethod
    def status(self, record: InvocationRecord) -> list[JobStatus]: ...

    @abstractmethod
    def kill(self, record: InvocationRecord) -> None: ...

    @abstractmethod
    def logs(self, record: InvocationRecord, job_id: str, follow: bool) -> Iterator[str]: ...

    def describe(self) -> dict[str, Any]:
        """Extra lines for `info` (e.g. commands to run by hand)."""
        return {}
