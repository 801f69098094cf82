"""The core records: a plan, a job, an invocation's run record and a job's status. Plain data, no I/O.

Every layer above imports these; this module imports nothing of the launcher's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from enum import Enum


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
    """One task of an invocation: the same record in the plan, in invocation.json and for status."""

    job_id: str  # "<invocation id>.<n>"
    task: str  # the task id: its configured name, or <name>.<position> when listed twice (schema.task_ids)
    folder: str  # the task's folder, relative to the invocation folder
    image: str
    command: tuple[str, ...] = ()  # () in records written before 0.2: not needed after the plan
    benchmark: str = ""  # the qualified name it resolved to (launcher.<x>, <harness>.<x>); "" for custom
    shards: int = 0  # >1: the task runs as this many shard jobs (`parts`), then merges in `folder`
    image_why: str = ""  # why this image (catalogue tasks: catalog.image_choice), for the dry run and status

    @property
    def parts(self) -> tuple[PlannedJob, ...]:
        """The shard jobs of a sharded task: job `<job id>.<k>` in `<folder>/shards/<k>`."""
        return tuple(
            PlannedJob(
                f"{self.job_id}.{k}",
                self.task,
                f"{self.folder}/shards/{k}",
                self.image,
                self.command,
                self.benchmark,
            )
            for k in range(self.shards if self.shards > 1 else 0)
        )

    def __getitem__(self, key: str):
        """`job["folder"]`: executor plugins written for launcher 0.1 read jobs as dicts."""
        return getattr(self, key)

    @classmethod
    def from_dict(cls, data: dict) -> PlannedJob:
        return cls(
            job_id=str(data["job_id"]),
            task=str(data["task"]),
            folder=str(data["folder"]),
            image=str(data.get("image", "")),
            command=tuple(data.get("command") or ()),
            benchmark=str(data.get("benchmark") or ""),
            shards=int(data.get("shards") or 0),
            image_why=str(data.get("image_why") or ""),
        )


def elements(jobs: tuple[PlannedJob, ...] | list[PlannedJob]) -> list[PlannedJob]:
    """What a scheduler runs, in order: each task, or each shard of a sharded task (a Slurm array index
    is a position here)."""
    return [part for job in jobs for part in job.parts or (job,)]


@dataclass(frozen=True)
class Plan:
    """Everything submit would do, as data: printable by --dry-run, checkable by golden tests."""

    invocation_id: str
    folder: str  # absolute invocation folder
    jobs: tuple[PlannedJob, ...]
    files: dict[str, str]  # relative path -> content; scripts end in .sh and are made executable
    host_env: tuple[str, ...] = ()  # host variables that must be set when the work runs
    images: tuple[str, ...] = ()  # images needed besides the jobs' own (e.g. a model server)
    checks: tuple[str, ...] = ()  # what submit checks where the jobs run (the dry run contacts nothing)


@dataclass(frozen=True)
class JobStatus:
    job_id: str
    task: str
    state: State
    folder: str  # absolute task folder
    done: int | None = None  # samples finished, from the harness's progress file
    total: int | None = None
    exit_code: int | None = None
    reason: str = ""
    started: float | None = None
    ended: float | None = None
    score: str = ""  # headline metric from the task's results, e.g. "exact_match=0.8125"
    benchmark: str = ""  # PlannedJob.benchmark
    shards: tuple[JobStatus, ...] = ()  # a sharded task's shards (done/total above are their sums)


@dataclass(frozen=True)
class InvocationRecord:
    """The run record (invocation.json): what is known of an invocation, whatever the executor.

    No secret values, ever: `host_env` holds variable names only.
    """

    invocation_id: str
    folder: str
    executor: str
    execution: dict  # the executor's config as plain data
    jobs: tuple[PlannedJob, ...]
    created: float
    sweep_id: str | None = None
    host_env: tuple[str, ...] = ()  # host variables the jobs read when they run (names)
    model_id: str = ""
    url: str = ""
    extra: dict = field(default_factory=dict)  # informative only (`info` prints it); nothing reads it

    def job(self, job_id: str) -> PlannedJob:
        """A job, or a shard of one (`<job id>.<k>`)."""
        for job in self.jobs:
            if job.job_id == job_id:
                return job
            for part in job.parts if job_id.startswith(f"{job.job_id}.") else ():
                if part.job_id == job_id:
                    return part
        raise KeyError(job_id)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> InvocationRecord:
        """Also reads records of launcher 0.1 (jobs as dicts, host_env/model_id/url inside `extra`)."""
        if not isinstance(data, dict):
            raise ValueError(f"a run record is a JSON object, not {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        extra = dict(data.get("extra") or {})
        values = {k: v for k, v in data.items() if k in known}
        for key in ("host_env", "model_id", "url"):
            if key not in values and key in extra:
                values[key] = extra.pop(key)
        values["jobs"] = tuple(PlannedJob.from_dict(j) for j in values.get("jobs") or ())
        values["host_env"] = tuple(values.get("host_env") or ())
        values["extra"] = extra
        for key in ("invocation_id", "folder", "executor"):
            if not isinstance(values.get(key), str):
                raise ValueError(f"{key} is missing or not a string")
        if not isinstance(values.get("execution"), dict):
            raise ValueError("execution is missing or not an object")
        values["created"] = float(values.get("created", 0.0))
        return cls(**values)
