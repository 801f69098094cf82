"""The executor interface: plan (pure), start, then status, logs and kill by the run record.

The api layer writes the plan's files and the run record; `start` serves both submit and resume.
The records (Plan, PlannedJob, JobStatus, State, InvocationRecord) live in launcher.model and are
re-exported here for executor plugins.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar

from launcher.config.schema import RunSpec
from launcher.model import InvocationRecord, JobStatus, Plan, PlannedJob, State

__all__ = ["Executor", "InvocationRecord", "JobStatus", "Plan", "PlannedJob", "State"]


class Executor(ABC):
    """Subclass, set `name` and `config_class`, and register under the `launcher.executors` entry point."""

    name: ClassVar[str]
    config_class: ClassVar[type]  # frozen dataclass; its defaults become the `execution/<name>` option
    startup_wait: ClassVar[float] = 0.0  # seconds submit may wait to see the first jobs start (0: at once)

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
