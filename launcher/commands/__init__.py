"""The verbs: status, logs, kill, resume, ls, info. They read invocation folders; Hydra is never imported."""

from __future__ import annotations

import argparse
import json
import os
import sys

from launcher.errors import LauncherError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="launcher", description="Follow and manage launched evaluations.")
    sub = p.add_subparsers(dest="verb", required=True)
    ids_help = "invocation id, job id <inv>.<n>, or sweep id; any unique prefix"

    s = sub.add_parser("status", help="state and progress of jobs")
    s.add_argument("ids", nargs="*", help=f"{ids_help}; none: the 10 most recent invocations")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--watch", action="store_true", help="refresh until every job has ended")

    s = sub.add_parser("logs", help="a job's container output")
    s.add_argument("id", help="job id <inv>.<n> (or an invocation with one task)")
    s.add_argument("-f", "--follow", action="store_true", help="follow until the job ends")

    s = sub.add_parser("kill", help="stop the containers and scripts of invocations or jobs")
    s.add_argument("ids", nargs="+", help=ids_help)

    s = sub.add_parser("resume", help="re-run unfinished tasks; succeeded ones are skipped")
    s.add_argument("ids", nargs="+", help=ids_help)
    s.add_argument("--wait", action="store_true", help="block with live progress until done")

    s = sub.add_parser("ls", help="list runs, the task registry or the installed executors")
    s.add_argument("what", choices=("runs", "tasks", "executors"))
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("-n", "--limit", type=int, default=50, help="runs: show the N most recent (default 50)")

    s = sub.add_parser("info", help="paths, resolved config and commands of an invocation")
    s.add_argument("id", help=ids_help)
    return p


def dispatch(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    return globals()[f"cmd_{args.verb}"](args)


def cmd_status(args) -> int:
    from launcher import state
    from launcher.commands.status import print_status, watch

    if args.ids:
        records = [rec for ident in args.ids for rec, _ in state.resolve(ident)]
        jobs = {job for ident in args.ids for _, job in state.resolve(ident) if job}
    else:
        entries = state.index_entries()[-10:]
        records = [_record_or_none(e["folder"]) for e in entries]
        records, jobs = [r for r in records if r], set()
    if args.watch:
        return watch(records, until_done=True, only_jobs=jobs)
    return print_status(records, as_json=args.json, only_jobs=jobs)


def cmd_logs(args) -> int:
    from launcher import state

    (record, job_id), *_ = state.resolve(args.id)
    if job_id is None:
        if len(record.jobs) != 1:
            jobs = ", ".join(j["job_id"] for j in record.jobs)
            raise LauncherError(f"{args.id} has {len(record.jobs)} jobs; name one: {jobs}")
        job_id = record.jobs[0]["job_id"]
    if job_id not in {j["job_id"] for j in record.jobs}:
        raise LauncherError(f"invocation {record.invocation_id} has no job {job_id}")
    wrote = False
    for chunk in _executor(record).logs(record, job_id, follow=args.follow):
        sys.stdout.write(chunk)
        sys.stdout.flush()
        wrote = True
    if not wrote:
        print(f"job {job_id} has no output yet", file=sys.stderr)
    return 0


def cmd_kill(args) -> int:
    from launcher import state

    for ident in args.ids:
        for record, job_id in state.resolve(ident):
            if job_id:
                raise LauncherError(f"kill stops whole invocations; use {record.invocation_id}")
            _executor(record).kill(record)
            print(f"killed invocation {record.invocation_id}")
    return 0


def cmd_resume(args) -> int:
    from launcher import launch, state
    from launcher.commands.status import watch

    records = [rec for ident in args.ids for rec, _ in state.resolve(ident)]
    for record in records:
        missing = [name for name in record.extra.get("host_env", []) if name not in os.environ]
        if missing:
            raise LauncherError(
                f"host environment variable {missing[0]} is not set; export it and resume again"
            )
    for record in records:
        executor = _executor(record)
        state.append_event(f"{record.folder}/{state.EVENTS}", "resumed")
        note = executor.start(record)
        print(
            launch.start_report(record, launch.wait_for_start(executor, record, executor.startup_wait), note)
        )
    return watch(records, until_done=True) if args.wait else 0


def cmd_ls(args) -> int:
    if args.what == "executors":
        import dataclasses

        from launcher.executors.registry import executors

        rows = [
            {
                "name": name,
                "class": f"{cls.__module__}.{cls.__qualname__}",
                "keys": ", ".join(f.name for f in dataclasses.fields(cls.config_class)),
            }
            for name, cls in executors().items()
        ]
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        from launcher.commands.status import table

        print(table(["NAME", "CLASS", "EXECUTION KEYS"], [list(r.values()) for r in rows]))
        return 0
    if args.what == "tasks":
        from launcher.tasks import TASKS

        rows = [
            {"name": t.name, "samples": t.samples, "image": t.image, "description": t.description}
            for t in TASKS.values()
        ]
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        from launcher.commands.status import table

        print(table(["NAME", "SAMPLES", "IMAGE", "DESCRIPTION"], [list(r.values()) for r in rows]))
        return 0
    from launcher.commands.status import runs_rows, table

    rows = runs_rows(limit=args.limit)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    headers = ["INVOCATION", "SWEEP", "CREATED", "EXECUTOR", "TASKS", "STATE", "FOLDER"]
    print(table(headers, [[r[h.lower()] for h in headers] for r in rows]))
    return 0


def cmd_info(args) -> int:
    from pathlib import Path

    from launcher import state

    for record, _ in state.resolve(args.id):
        folder = Path(record.folder)
        print(f"invocation: {record.invocation_id}")
        print(f"executor:   {record.executor}")
        print(f"folder:     {folder}")
        if record.sweep_id:
            print(f"sweep:      {record.sweep_id}")
        for key, value in record.extra.items():
            print(f"{key + ':':<11} {value}")
        for key, value in _executor(record).describe().items():
            print(f"{key + ':':<11} {value}")
        print("jobs:")
        for job in record.jobs:
            print(f"  {job['job_id']}  {job['task']}  {folder / job['folder']}  image {job['image']}")
        config = folder / state.HYDRA_DIR / "config.yaml"
        if config.exists():
            print("resolved config:")
            print("  " + config.read_text().rstrip().replace("\n", "\n  "))
    return 0


def _record_or_none(folder: str):
    from launcher import state

    try:
        return state.read_record(folder)
    except LauncherError:
        return None


def _executor(record):
    from launcher.config.boundary import build
    from launcher.executors import registry

    cls = registry.get(record.executor)
    return cls(build(cls.config_class, record.execution, "execution"))
