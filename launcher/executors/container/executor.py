"""What local and Slurm share once the scripts are written: status, kill and logs, shaped once.

A subclass says only what differs: one `look` per refresh (a Look: for each job what its scheduler says
and whether a started job still runs); how it stops the scheduler's work (`cancel`) and the containers
(`stop_containers`), where stage records are written (`mark`) and how the folder is brought back
(`read_back`, for a remote cluster).
"""

from __future__ import annotations

import codecs
import os
import stat
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

from launcher.executors.base import Executor
from launcher.executors.status import SchedulerView, Verdict, combine, derive_status
from launcher.model import InvocationRecord, JobStatus, PlannedJob, State
from launcher.store import events, results
from launcher.store.layout import EVENTS, OUTPUT_LOG


class Look(ABC):
    """What the scheduler says in one status refresh: read once, then asked about each job."""

    @abstractmethod
    def view(self, n: int | None, job: PlannedJob) -> SchedulerView:
        """What the scheduler says about one job.

        Args:
            n: the job's position in model.elements (its array index on Slurm); None for a sharded
                task's merge step, which runs after its shards.
            job: the job (or one shard of a sharded task).

        Returns:
            The scheduler's view (launcher.executors.status.Scheduled is the plain one).
        """

    @abstractmethod
    def running(self, n: int | None, job: PlannedJob, start: events.Event) -> tuple[State, str] | None:
        """Whether a job whose stage records say it started (and not yet ended) still runs.

        Args:
            n: as for `view`.
            job: the job.
            start: its open `started` stage record (the pid of its run.sh, the host).

        Returns:
            (RUNNING or PENDING, a reason) while something still runs it, None if nothing does.
        """


class ContainerExecutor(Executor):
    poll_interval = 0.3  # seconds between looks when following logs

    def __init__(self, config, docker=None):
        super().__init__(config)
        self._docker = docker

    @property
    def docker(self):
        if self._docker is None:
            from launcher.executors.container.docker_client import Docker

            self._docker = Docker()
        return self._docker

    # ---- what differs ----------------------------------------------------------------------------

    @abstractmethod
    def look(self, record: InvocationRecord) -> Look:
        """Read what the scheduler says, once per refresh of every job's status.

        Raises:
            LauncherError: the scheduler cannot be asked now (better no answer than a wrong one).
        """

    @abstractmethod
    def cancel(self, record: InvocationRecord, statuses: list[JobStatus]) -> None:
        """Stop the scheduler's work (no further task starts), before the containers are stopped.

        Args:
            record: the invocation's run record.
            statuses: each job's status, read just before (the kill's own view of what runs).
        """

    def stop_containers(self, record: InvocationRecord) -> None:
        self.docker.stop(record.invocation_id, self.config.stop_grace)

    def mark(self, record: InvocationRecord, rel_folder: str, kind: str) -> None:
        """Append a stage record to <invocation>/<rel_folder>/events.log where the jobs write theirs."""
        events.append(Path(record.folder) / rel_folder / EVENTS, kind)

    def read_back(self, record: InvocationRecord) -> None:
        """Bring the invocation folder up to date (a remote cluster's copy); nothing to do here."""

    # ---- status ----------------------------------------------------------------------------------

    def status(self, record: InvocationRecord) -> list[JobStatus]:
        self.read_back(record)
        look = self.look(record)
        firsts = element_indices(record.jobs)
        seen = [self._judge(record, m, job, look) for m, job in zip(firsts, record.jobs, strict=True)]
        if any(v.state == State.LOST for v, _, _ in seen):
            # A script may have written its exit record and ended between our reading the records and
            # checking its process: read once more, now that it is surely gone.
            self.read_back(record)
            look = self.look(record)
            seen = [
                self._judge(record, m, job, look) if judged[0].state == State.LOST else judged
                for m, job, judged in zip(firsts, record.jobs, seen, strict=True)
            ]
        return [
            self._status(record, job, v, ran, parts)
            for job, (v, ran, parts) in zip(record.jobs, seen, strict=True)
        ]

    def _judge(
        self, record: InvocationRecord, m: int, job: PlannedJob, look: Look
    ) -> tuple[Verdict, bool, tuple[JobStatus, ...]]:
        """A job's verdict, whether it ever ran, and a sharded task's shards (its verdict combines them).
        `m`: the element index of the job or of its first shard."""
        verdict, ran = self._verdict(record, None if job.parts else m, job, look)
        if not job.parts:
            return verdict, ran, ()
        judged = [self._verdict(record, m + k, part, look) for k, part in enumerate(job.parts)]
        parts = tuple(self._status(record, p, v, r) for p, (v, r) in zip(job.parts, judged, strict=True))
        combined = combine(job.job_id, verdict, [v for v, _ in judged])
        return combined, ran or any(r for _, r in judged), parts

    @staticmethod
    def _verdict(
        record: InvocationRecord, n: int | None, job: PlannedJob, look: Look
    ) -> tuple[Verdict, bool]:
        """The job's verdict, and whether it ever started (only then can it have results or progress)."""
        task_dir = os.path.join(record.folder, job.folder)  # strings: pathlib costs 0.1 s per 1,000 tasks
        found = events.read(os.path.join(task_dir, EVENTS))
        verdict = derive_status(
            events.History.of(found),
            look.view(n, job),
            lambda start: look.running(n, job, start),
            lambda: last_line(Path(task_dir) / OUTPUT_LOG),
        )
        return verdict, any(e.kind == events.STARTED for e in found)

    @staticmethod
    def _status(
        record: InvocationRecord, job: PlannedJob, v: Verdict, ran: bool, parts: tuple[JobStatus, ...] = ()
    ) -> JobStatus:
        task_dir = os.path.join(record.folder, job.folder)
        # Never started, not even before a resume: no result or progress file to read.
        done, total = results.progress(task_dir) if ran else (None, None)
        if parts:  # a sharded task's progress is its shards' together
            counted = [(p.done, p.total) for p in parts if p.total is not None]
            done, total = (
                (sum(d or 0 for d, _ in counted), sum(t for _, t in counted)) if counted else (None, None)
            )
        return JobStatus(
            job_id=job.job_id,
            task=job.task,
            state=v.state,
            folder=str(task_dir),
            done=done,
            total=total,
            exit_code=v.exit_code,
            reason=v.reason,
            started=v.started,
            ended=v.ended,
            score=results.headline(task_dir) if ran else "",
            benchmark=job.benchmark,
            shards=parts,
        )

    # ---- proxy counters ----------------------------------------------------------------------------

    def proxy_stats(self, record: InvocationRecord) -> tuple[dict, bool] | None:
        """(the invocation's endpoint-proxy counters, live?), or None when it has none (proxy off, or not
        started yet). Here: what the proxies last wrote (status reads a remote copy back first)."""
        from launcher.proxy.wiring import read_stats  # loads the proxy's settings: only when asked

        found = read_stats(record.folder, self.proxy_folders(record))
        return (found[0], False) if found else None

    def proxy_folders(self, record: InvocationRecord) -> list[Path]:
        """Task folders that hold a proxy's own counters: none here, where one proxy serves the invocation;
        an executor with a proxy per task (Slurm's array elements) names them."""
        return []

    # ---- kill and logs ---------------------------------------------------------------------------

    def kill(self, record: InvocationRecord) -> None:
        statuses = self.status(record)
        self.mark(record, "", events.KILLED)
        for job, status in zip(record.jobs, statuses, strict=True):
            for part, part_status in zip((job, *job.parts), (status, *status.shards), strict=True):
                if not part_status.state.terminal:
                    self.mark(record, part.folder, events.KILLED)
        # The scheduler first so no further task starts, then the containers (SIGTERM reaches the
        # harness through --init; SIGKILL after the grace period).
        self.cancel(record, statuses)
        self.stop_containers(record)
        self.read_back(record)

    def logs(self, record: InvocationRecord, job_id: str, follow: bool) -> Iterator[str]:
        """The job's output.log from the start; with `follow`, until the job ends."""
        path = Path(record.folder) / record.job(job_id).folder / OUTPUT_LOG
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        offset = 0
        while True:
            finished = not follow or self.job_finished(record, job_id)  # reads back a remote copy first
            while True:
                data = _read_at(path, offset)
                if not data:
                    break
                offset += len(data)
                yield decoder.decode(data)
            if finished:
                return
            time.sleep(self.poll_interval)

    def job_finished(self, record: InvocationRecord, job_id: str) -> bool:
        statuses = [x for s in self.status(record) for x in (s, *s.shards)]
        return next(s for s in statuses if s.job_id == job_id).state.terminal


def element_indices(jobs: tuple[PlannedJob, ...]) -> list[int]:
    """Each job's first position in model.elements."""
    out, m = [], 0
    for job in jobs:
        out.append(m)
        m += len(job.parts) or 1
    return out


def _read_at(path: Path, offset: int, size: int = 1 << 20) -> bytes:
    """Up to `size` bytes of a regular file from `offset` (b"" if absent; never blocks on a FIFO)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return b""
    try:
        return os.pread(fd, size, offset) if stat.S_ISREG(os.fstat(fd).st_mode) else b""
    finally:
        os.close(fd)


def last_line(path: Path) -> str:
    """The last non-empty line of a regular file's last 4 KiB (never blocks on a FIFO)."""
    try:
        size = path.stat().st_size
    except OSError:
        return ""
    tail = _read_at(path, max(0, size - 4096), 4096).decode("utf-8", "replace")
    lines = [ln.strip() for ln in tail.splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""
