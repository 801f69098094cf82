"""The Python API: launch, resume, status, kill, logs and results, returning data and raising typed
errors (launcher.errors). The CLI is one client of it; scripts are another:

    from launcher import api
    prepared = api.prepare(spec)                     # spec: config.boundary.to_run_spec(...); .plan
    api.preflight_all([prepared])                    # checks the machine; writes nothing
    launched = api.start(prepared)
    for inv in api.status([launched.record.invocation_id]):
        print([(j.task, j.state.value) for j in inv.jobs])

Nothing here prints but a one-line warning on stderr for a record it has to skip.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from launcher.config.schema import RunSpec
from launcher.errors import LauncherError, MissingHostVariable, NotFound
from launcher.executors import registry
from launcher.executors.base import Executor
from launcher.model import InvocationRecord, JobStatus, Plan, State
from launcher.store import events, index, layout
from launcher.store import results as results_store


@dataclass(frozen=True)
class Prepared:
    """An invocation planned and ready to write: what the dry run prints and what `start` starts."""

    spec: RunSpec
    executor: Executor
    plan: Plan
    record: InvocationRecord
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class Launched:
    record: InvocationRecord
    statuses: list[JobStatus]
    note: str | None = None  # one line from the executor, e.g. the scheduler's job id

    @property
    def failed(self) -> list[JobStatus]:
        return [s for s in self.statuses if s.state in (State.FAILED, State.LOST)]


@dataclass(frozen=True)
class InvocationStatus:
    record: InvocationRecord
    jobs: list[JobStatus] = field(default_factory=list)
    error: str = ""  # why the jobs could not be read (e.g. the cluster is unreachable)
    proxy: dict | None = None  # the endpoint proxy's counters (launcher.proxy.stats' format), if any
    proxy_live: bool = False  # read from the running proxy, not from the file it last wrote


# ---- launch ---------------------------------------------------------------------------------------------


def prepare(
    spec: RunSpec, overrides: Iterable[str] = (), sweep_id: str | None = None, created: float | None = None
) -> Prepared:
    """Plan an invocation (pure apart from reading the clock and drawing an id)."""
    # Resolved once here, so the record (and every later command, from any directory) holds the same path.
    output_dir = Path(os.path.abspath(os.path.expanduser(spec.execution.output_dir)))
    spec = replace(spec, execution=replace(spec.execution, output_dir=str(output_dir)))
    executor = registry.get(spec.executor)(spec.execution)
    created = time.time() if created is None else created
    invocation_id = layout.new_id()
    parent = output_dir / f"sweep-{sweep_id}" if sweep_id else output_dir
    folder = parent / f"{layout.stamp(created)}-{invocation_id}"
    plan = executor.plan(spec, invocation_id, str(folder), created)
    record = InvocationRecord(
        invocation_id=invocation_id,
        folder=str(folder),
        executor=spec.executor,
        execution=asdict(spec.execution),
        jobs=plan.jobs,
        created=created,
        sweep_id=sweep_id,
        host_env=plan.host_env,  # names only: an executor may have to forward the values
        model_id=spec.target.api_endpoint.model_id,
        url=spec.target.api_endpoint.url,
    )
    return Prepared(spec, executor, plan, record, tuple(overrides))


def preflight_all(prepared: list[Prepared]) -> None:
    """Everything that can be checked before anything is written, for every invocation before any starts
    (a sweep starts all or none): the machine and host variables first (no engine needed), then images
    and schedulers."""
    from launcher.config.boundary import check_machine

    for one in prepared:
        check_machine(one.spec)  # the container user must be able to write the private folders
        check_host_env(one.plan.host_env)
    for one in prepared:
        one.executor.check_prerequisites(one.plan)


def start(prepared: Prepared, startup_wait: float | None = None) -> Launched:
    """Write the invocation folder and the index entry, then start it."""
    from launcher import logsetup

    record, folder = prepared.record, Path(prepared.record.folder)
    layout.create_invocation(prepared.plan, record, hydra_files(prepared.spec, list(prepared.overrides)))
    index.append(record)
    logsetup.configure(
        str(folder / layout.LAUNCHER_LOG), secrets=[os.environ.get(n, "") for n in record.host_env]
    )
    log = logsetup.get()
    log.info(
        "invocation created", invocation=record.invocation_id, folder=str(folder), tasks=len(record.jobs)
    )
    launched = _start(prepared.executor, record, startup_wait)
    log.info("invocation started", states={s.job_id: s.state.value for s in launched.statuses})
    return launched


# Seconds from the command's start until which a submit may wait for the first wave: the goal is a
# prompt back within 2 s; the last look, the report and the exit take 0.2-0.4 s on this
# 2-core machine when it runs slow (the same submit varies by a third from hour to hour).
SUBMIT_BUDGET = 1.5


def _start(executor: Executor, record: InvocationRecord, startup_wait: float | None) -> Launched:
    """Start, then wait for the first wave at most the executor's startup_wait, and by default no longer
    than SUBMIT_BUDGET after this process started: a big invocation that took long to compose and write
    returns at once with what it sees ("pending"), and `status`/`--wait` tell the rest. An explicit
    `startup_wait` is honoured as given (a long-lived process calling the API)."""
    with layout.invocation_lock(record.folder, record.invocation_id):
        note = executor.start(record)
        if startup_wait is None:
            from launcher.executors.container.process import age

            spent = age(os.getpid()) or 0.0
            startup_wait = min(executor.startup_wait, max(0.0, SUBMIT_BUDGET - spent))
        return Launched(record, wait_for_start(executor, record, startup_wait), note)


def wait_for_start(executor: Executor, record: InvocationRecord, timeout: float) -> list[JobStatus]:
    """Return once the first wave has started or ended and none of it is still starting, or when another
    look would end past `timeout` (a look at 1,000 tasks is not free). One look always."""
    deadline = time.monotonic() + timeout
    while True:
        began = time.monotonic()
        statuses = executor.status(record)
        took = time.monotonic() - began
        starting = [s for s in statuses if s.state == State.PENDING and s.started is not None]
        first_wave = any(s.state != State.PENDING for s in statuses)
        if (first_wave and not starting) or time.monotonic() + 0.1 + took > deadline:
            return statuses
        time.sleep(0.1)


def check_host_env(names: Iterable[str], action: str = "run") -> None:
    missing = [name for name in names if name not in os.environ]
    if missing:
        raise MissingHostVariable(missing[0], action)


def hydra_files(spec: RunSpec, overrides: list[str]) -> dict[str, str]:
    return {
        f"{layout.HYDRA_DIR}/config.yaml": layout.to_yaml(spec.config),
        layout.HYDRA_OVERRIDES: layout.to_yaml(list(overrides)),
    }


# ---- follow and manage ----------------------------------------------------------------------------------


def executor_for(record: InvocationRecord) -> Executor:
    """The executor that runs a recorded invocation, rebuilt from the record's config."""
    from launcher.config.boundary import build

    cls = registry.get(record.executor)
    return cls(build(cls.config_class, record.execution, "execution"))


def find(idents: Iterable[str]) -> list[tuple[InvocationRecord, str | None]]:
    """Invocation ids, job ids `<inv>.<n>`, sweep ids or unique prefixes -> (record, job id or None)."""
    return [pair for ident in idents for pair in index.resolve(ident)]


def resolved_config(record: InvocationRecord) -> str | None:
    """The invocation's composed config as written at submit (.hydra/config.yaml), or None."""
    return layout.read_regular(Path(record.folder) / layout.HYDRA_DIR / "config.yaml")


def recent(limit: int = 10) -> list[InvocationRecord]:
    """The most recent invocations whose records can be read, oldest first."""
    out = []
    for entry in index.recent(limit):
        try:
            out.append(layout.read_record(entry.folder))
        except LauncherError as err:
            print(f"warning: skipped invocation {entry.id}: {err}", file=sys.stderr)
    return out


@dataclass(frozen=True)
class Run:
    """One line of the invocation index and, when its run record can still be read, its status."""

    entry: index.Entry
    status: InvocationStatus | None = None  # None: its folder or run record is gone


def tasks(filter: str | None = None) -> list[dict]:
    """`launcher ls tasks`: built-ins and the catalogue; catalogue rows say whether a local image of ours
    runs them offline here (`offline`: built, buildable: <how>, no: <reason>; one Docker query)."""
    from launcher.executors.container.local_images import task_rows

    return task_rows(filter)


def runs(limit: int = 50) -> list[Run]:
    """The `limit` most recent invocations of the index, newest first; a missing one is kept (status None)."""
    out = []
    for entry in reversed(index.recent(limit)):
        try:
            record = layout.read_record(entry.folder)
        except LauncherError:
            out.append(Run(entry))
            continue
        out.append(Run(entry, status_of(record)))
    return out


def status(idents: Iterable[str] = (), limit: int = 10) -> list[InvocationStatus]:
    """Each matched invocation's jobs (only the named jobs for `<inv>.<n>`); none: the recent ones."""
    idents = list(idents)
    if idents:
        wanted: dict[str, tuple[InvocationRecord, set[str]]] = {}
        for record, job_id in find(idents):
            _, jobs = wanted.setdefault(record.invocation_id, (record, set()))
            if job_id:
                jobs.add(job_id)
        pairs = list(wanted.values())
    else:
        pairs = [(record, set()) for record in recent(limit)]
    return [status_of(record, only) for record, only in pairs]


def status_of(
    record: InvocationRecord, only_jobs: set[str] | frozenset[str] = frozenset()
) -> InvocationStatus:
    """One invocation's jobs; a failure to read them is its own error, not the caller's."""
    try:
        executor = executor_for(record)
        jobs = executor.status(record)
    except LauncherError as err:
        return InvocationStatus(record, [], str(err))
    if only_jobs:
        # a shard's id (<job>.<k>) selects its task's row
        jobs = [s for s in jobs if s.job_id in only_jobs or any(x.job_id in only_jobs for x in s.shards)]
    proxy = executor.proxy_stats(record)
    return InvocationStatus(
        record, jobs, proxy=proxy[0] if proxy else None, proxy_live=bool(proxy and proxy[1])
    )


def kill(idents: Iterable[str]) -> list[str]:
    """Stop the invocations; returns one line for each. An invocation whose folder is gone is left to its
    executor's stop_orphan (local: its labelled containers are stopped)."""
    matched = [pair for ident in idents for pair in index.match(ident)]
    for entry, job_id in matched:
        if job_id:
            raise LauncherError(f"kill stops whole invocations; use {entry.id}")
    lines = []
    for entry, _ in matched:
        try:
            record = layout.read_record(entry.folder)
        except NotFound:
            line = registry.get(entry.executor).stop_orphan(entry.id)
            if line is None:
                raise
            lines.append(f"invocation {entry.id}: {line}")
            continue
        executor_for(record).kill(record)
        lines.append(f"killed invocation {record.invocation_id}")
    return lines


def resume(idents: Iterable[str]) -> list[Launched]:
    """Start again every unfinished task of the invocations (succeeded ones are skipped)."""
    records = []
    for record, job_id in find(idents):
        if job_id:
            raise LauncherError(f"resume restarts whole invocations; use {record.invocation_id}")
        records.append(record)
    for record in records:
        check_host_env(record.host_env, "resume")
    out = []
    for record in records:
        executor = executor_for(record)
        events.append(Path(record.folder) / layout.EVENTS, events.RESUMED)
        out.append(_start(executor, record, None))
    return out


def logs(ident: str, follow: bool = False) -> Iterator[str]:
    (record, job_id), *_ = find([ident])
    if job_id is None:
        if len(record.jobs) != 1:
            jobs = ", ".join(j.job_id for j in record.jobs)
            raise LauncherError(f"{ident} has {len(record.jobs)} jobs; name one: {jobs}")
        job_id = record.jobs[0].job_id
    return executor_for(record).logs(record, job_id, follow=follow)


def results(ident: str) -> list[results_store.Score]:
    """Every score of the matched invocations' tasks, from their results.json."""
    out = []
    for record, job_id in find([ident]):
        for job in record.jobs:
            if job_id is None or job.job_id == job_id:
                out += results_store.scores(Path(record.folder) / job.folder)
    return out


# ---- compare and gate -----------------------------------------------------------------------------------


def compare(base: str | list[str], cand: str | list[str], task: str | None = None, metric: str | None = None):
    """Per task, the paired comparison of two runs (invocations, jobs or sweep cells `SWEEP:key=value`) on
    `metric` (default: each task's headline) -> launcher.paired.compare.Comparison; raises NotPaired (a
    LauncherError) for runs that cannot be paired item by item."""
    from launcher.paired import sweep
    from launcher.paired.compare import compare_runs

    base_ids, cand_ids = _ids(base), _ids(cand)
    return compare_runs(
        sweep.load(base_ids), sweep.load(cand_ids), task, metric, (tuple(base_ids), tuple(cand_ids))
    )


def _ids(ident: str | list[str]) -> list[str]:
    return [ident] if isinstance(ident, str) else list(ident)


def gate(base: str | list[str], cand: str | list[str], policy):
    """The release gate: `policy` a path to a NeMo Evaluator 0.3 gate policy YAML (or a parsed
    launcher.paired.policy.Policy) -> launcher.paired.gate.GateReport (.verdict GO / NO-GO / INCONCLUSIVE,
    .exit_code 0 / 1 / 3); raises PolicyError or NotPaired (LauncherErrors) for bad input."""
    from launcher.paired import policy as policies
    from launcher.paired import sweep
    from launcher.paired.gate import gate_runs

    rules = policy if isinstance(policy, policies.Policy) else policies.load(policy)
    base_ids, cand_ids = _ids(base), _ids(cand)
    return gate_runs(sweep.load(base_ids), sweep.load(cand_ids), rules, (tuple(base_ids), tuple(cand_ids)))


# ---- catalogue harness images built here (launcher.catalog.recipes) -------------------------------------


def build_images(harnesses: list[str], force: bool = False, say=print) -> None:
    """Build each named recipe's image and data caches (`all`: every recipe); a no-op for what is current."""
    from launcher.executors.container import images

    images.build_named(harnesses, force, say)


def images() -> list[dict]:
    """Per recipe: harness, image, built (bool; None without a docker CLI), data {cache: ready}, offline
    (how many tasks it runs)."""
    from launcher.executors.container import images as built

    return built.listing()
