"""The executor interface: plan (pure), start, then status, logs and kill by the run record.

The api layer writes the plan's files and the run record; `start` serves both submit and resume. Every
hook is abstract: an executor says what each does, even when that is nothing. The records (Plan,
PlannedJob, JobStatus, State, InvocationRecord) live in launcher.model and are re-exported here for
executor plugins.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar

from launcher.config.schema import RunSpec
from launcher.model import InvocationRecord, JobStatus, Plan, PlannedJob, State

__all__ = ["Executor", "InvocationRecord", "JobStatus", "Plan", "PlannedJob", "State"]


class Executor(ABC):
    """Subclass, set `name` and `config_class`, and register under the `launcher.executors` entry point.

    Errors: raise launcher.errors.ConfigError (a key, what is allowed, the fix) for a config the executor
    cannot run, LauncherError for anything else the user can act on; both become one line and an exit
    code. Any other exception is reported as an internal error.
    """

    name: ClassVar[str]
    # A frozen dataclass; its defaults become the `execution/<name>` option. It may define `validate(self)`,
    # raising ConfigError for what its field types do not say; the config boundary calls it.
    config_class: ClassVar[type]
    startup_wait: ClassVar[float] = 0.0  # seconds submit may wait to see the first jobs start (0: at once)

    def __init__(self, config: Any):
        self.config = config

    @abstractmethod
    def plan(self, spec: RunSpec, invocation_id: str, folder: str, created: float) -> Plan:
        """Everything the invocation will run, without touching anything (the dry run prints it).

        Args:
            spec: the validated run; `spec.execution` is an instance of `config_class`.
            invocation_id: the new invocation's id (hex); job ids are `<invocation_id>.<n>`.
            folder: the absolute invocation folder the api layer will write the plan's files into.
            created: the invocation's creation time (Unix seconds).

        Returns:
            The Plan: its jobs, its files (paths relative to `folder` -> text), the host variables the
            jobs read and the images they need besides the jobs' own.

        Raises:
            ConfigError: the config cannot run on this executor.
        """

    @abstractmethod
    def check_prerequisites(self, plan: Plan) -> None:
        """Check, before anything is written, that the plan can start here (tools, images, login node).

        Args:
            plan: what `plan` returned.

        Raises:
            LauncherError: something is missing; the message says how to get it.
        """

    @abstractmethod
    def start(self, record: InvocationRecord) -> str | None:
        """Start (or resume) the written plan without waiting for it to finish.

        Args:
            record: the run record the api layer wrote beside the plan's files.

        Returns:
            One line for the user (e.g. the scheduler's job id), or None.

        Raises:
            LauncherError: it cannot start (e.g. still running: resume is refused until it ends).
        """

    @abstractmethod
    def status(self, record: InvocationRecord) -> list[JobStatus]:
        """Each job's state now, in the record's job order.

        Args:
            record: the invocation's run record.

        Returns:
            One JobStatus per job of `record.jobs`.

        Raises:
            LauncherError: the scheduler cannot be asked now (better no answer than a wrong one).
        """

    @abstractmethod
    def kill(self, record: InvocationRecord) -> None:
        """Stop every job of the invocation that has not ended; ended jobs keep their state.

        Args:
            record: the invocation's run record.

        Raises:
            LauncherError: the scheduler or container engine refused.
        """

    @classmethod
    @abstractmethod
    def stop_orphan(cls, invocation_id: str) -> str | None:
        """Stop what an invocation may still run once its folder (and so its run record) is gone.

        Args:
            invocation_id: all that is left of it: the index's entry.

        Returns:
            One line for the user (what was stopped), or None when nothing can be found by the id alone.

        Raises:
            LauncherError: the scheduler or container engine refused.
        """

    @abstractmethod
    def logs(self, record: InvocationRecord, job_id: str, follow: bool) -> Iterator[str]:
        """A job's output from its start.

        Args:
            record: the invocation's run record.
            job_id: one of `record.jobs`' ids.
            follow: keep yielding until the job has ended.

        Returns:
            The output in chunks of text, as it is read.
        """

    @abstractmethod
    def proxy_stats(self, record: InvocationRecord) -> tuple[dict, bool] | None:
        """The counters of the invocation's endpoint proxy (launcher.proxy.stats), for `status --detail`.

        Args:
            record: the invocation's run record.

        Returns:
            (counters, read live from the running proxy?), or None when it has no proxy or none started.
        """

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Extra lines for `launcher info`, e.g. how to resume by hand.

        Returns:
            Label -> value, printed as `label: value`; {} for none.
        """
