"""From a RunSpec to a started invocation: plan, (dry run), preflight, write, start, report."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

from launcher import state
from launcher.config.schema import RunSpec
from launcher.errors import LauncherError
from launcher.executors import registry
from launcher.executors.base import InvocationRecord, Plan, State


def launch(
    spec: RunSpec, overrides: list[str], dry_run: bool, wait: bool, sweep_id: str | None, quiet: bool = False
) -> int:
    # Resolved once here, so the record (and every later command, from any directory) holds the same path.
    output_dir = Path(os.path.abspath(os.path.expanduser(spec.execution.output_dir)))
    spec = replace(spec, execution=replace(spec.execution, output_dir=str(output_dir)))
    executor = registry.get(spec.executor)(spec.execution)
    created = time.time()
    invocation_id = state.new_id()
    parent = output_dir / f"sweep-{sweep_id}" if sweep_id else output_dir
    folder = parent / f"{state.stamp(created)}-{invocation_id}"
    plan = executor.plan(spec, invocation_id, str(folder), created)
    if dry_run:
        if not quiet:
            print(render_dry_run(spec, plan))
        return 0
    missing = [name for name in plan.host_env if name not in os.environ]
    if missing:
        raise LauncherError(
            f"host environment variable {missing[0]} is not set (named in the config to pass to the "
            f"container); export {missing[0]}=... and run again"
        )
    executor.check_prerequisites(plan)
    record = InvocationRecord(
        invocation_id=invocation_id,
        folder=str(folder),
        executor=spec.executor,
        execution=_plain(spec.execution),
        jobs=[{"job_id": j.job_id, "task": j.task, "folder": j.folder, "image": j.image} for j in plan.jobs],
        created=created,
        sweep_id=sweep_id,
        extra={
            "model_id": spec.target.api_endpoint.model_id,
            "url": spec.target.api_endpoint.url,
            "host_env": list(plan.host_env),  # names only: an executor may have to forward the values
        },
    )
    state.create_invocation(plan, record, hydra_files(spec, overrides))
    from launcher import logsetup

    logsetup.configure(str(folder / state.LAUNCHER_LOG), secrets=[os.environ[n] for n in plan.host_env])
    log = logsetup.get()
    log.info("invocation created", invocation=invocation_id, folder=str(folder), tasks=len(plan.jobs))
    note = executor.start(record)
    statuses = wait_for_start(executor, record, executor.startup_wait)
    log.info("invocation started", states={s.job_id: s.state.value for s in statuses})
    print(start_report(record, statuses, note))
    failed = [s for s in statuses if s.state in (State.FAILED, State.LOST)]
    if wait:
        from launcher.commands.status import watch

        return watch([record], until_done=True)
    return 1 if failed else 0


def wait_for_start(executor, record: InvocationRecord, timeout: float):
    """Return once every job has started running or ended, or no job is still starting."""
    deadline = time.monotonic() + timeout
    while True:
        statuses = executor.status(record)
        if timeout <= 0:
            return statuses
        starting = [s for s in statuses if s.state == State.PENDING and s.started is not None]
        first_wave = any(s.state != State.PENDING for s in statuses)
        if (first_wave and not starting) or time.monotonic() > deadline:
            return statuses
        time.sleep(0.1)


def start_report(record: InvocationRecord, statuses, note: str | None = None) -> str:
    counts: dict[str, int] = {}
    for s in statuses:
        counts[s.state.value] = counts.get(s.state.value, 0) + 1
    summary = ", ".join(f"{n} {state.lower()}" for state, n in counts.items())
    lines = [f"invocation {record.invocation_id}: {len(statuses)} task(s): {summary}"]
    if note:
        lines.append(f"  {note}")
    for s in statuses:
        if s.state in (State.FAILED, State.LOST):
            lines.append(f"  {s.job_id} {s.task}: {s.state.value} (exit {s.exit_code}): {s.reason}")
    lines += [
        f"  folder:  {record.folder}",
        f"  status:  launcher status {record.invocation_id}",
        f"  logs:    launcher logs {record.invocation_id}.0 -f",
        f"  kill:    launcher kill {record.invocation_id}",
    ]
    if record.sweep_id:
        lines.append(f"  sweep:   launcher status {record.sweep_id}")
    return "\n".join(lines)


def hydra_files(spec: RunSpec, overrides: list[str]) -> dict[str, str]:
    from omegaconf import OmegaConf

    return {
        f"{state.HYDRA_DIR}/config.yaml": OmegaConf.to_yaml(OmegaConf.create(spec.config)),
        f"{state.HYDRA_DIR}/overrides.yaml": OmegaConf.to_yaml(OmegaConf.create(overrides)),
    }


def render_dry_run(spec: RunSpec, plan: Plan) -> str:
    from omegaconf import OmegaConf

    parts = [
        "# dry run: nothing was written or started",
        "# resolved config",
        OmegaConf.to_yaml(OmegaConf.create(spec.config)).rstrip(),
        f"# invocation folder: {plan.folder}",
    ]
    if plan.host_env:
        parts.append(f"# host variables read at run time: {', '.join(plan.host_env)}")
    for rel, content in plan.files.items():
        parts += [f"# ---- {rel}", content.rstrip()]
    return "\n".join(parts)


def _plain(obj) -> dict:
    from dataclasses import asdict

    return asdict(obj)
