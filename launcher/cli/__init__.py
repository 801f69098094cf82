"""The verbs status, logs, kill, resume, ls, info (export, results, report: launcher.cli.export_verbs;
compare, gate: launcher.cli.paired_verbs):
parse argv, call launcher.api, render. No Hydra here."""

from __future__ import annotations

import argparse
import json
import sys

from launcher.cli import export_verbs, image_verbs, paired_verbs


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="launcher", description="Follow and manage launched evaluations.")
    sub = p.add_subparsers(dest="verb", required=True)
    ids_help = "invocation id, job id <inv>.<n>, or sweep id; any unique prefix"

    s = sub.add_parser("status", help="state and progress of jobs")
    s.add_argument("ids", nargs="*", help=f"{ids_help}; none: the 10 most recent invocations")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--watch", action="store_true", help="refresh until every job has ended")
    s.add_argument("--all", action="store_true", help="--watch: a row per job even for big invocations")
    s.add_argument(
        "--detail",
        action="store_true",
        help="also a row per shard of a sharded task, and the endpoint proxy's counters: requests, errors, "
        "cache hits, tokens in/out, p50/p95",
    )

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
    s.add_argument("filter", nargs="?", help="tasks: keep names, harnesses or images containing this")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("-n", "--limit", type=int, default=50, help="runs: show the N most recent (default 50)")
    s.add_argument(
        "--offline",
        action="store_true",
        help="tasks: only catalogue tasks a local image of ours runs offline here (built or buildable)",
    )

    s = sub.add_parser("info", help="paths, resolved config and commands of an invocation")
    s.add_argument("id", help=ids_help)

    export_verbs.add_parsers(sub)  # export, results, report
    paired_verbs.add_parsers(sub)  # compare, gate
    image_verbs.add_parsers(sub)  # images build|ls
    return p


def dispatch(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    return COMMANDS[args.verb](args)


def cmd_status(args) -> int:
    from launcher import api
    from launcher.cli.render import render, render_json, watch

    if args.watch:
        return watch(lambda: api.status(args.ids), until_done=True, all_rows=args.all, detail=args.detail)
    collected = api.status(args.ids)
    print(render_json(collected) if args.json else render(collected, args.detail))
    return 0


def cmd_logs(args) -> int:
    from launcher import api

    wrote = False
    from launcher.config.values import terminal_safe

    for chunk in api.logs(args.id, follow=args.follow):
        sys.stdout.write(
            terminal_safe(chunk, keep="\n\t")
        )  # the task's output: no escape reaches the terminal
        sys.stdout.flush()
        wrote = True
    if not wrote:
        print(f"job {args.id} has no output yet", file=sys.stderr)
    return 0


def cmd_kill(args) -> int:
    from launcher import api

    for line in api.kill(args.ids):
        print(line)
    return 0


def cmd_resume(args) -> int:
    from launcher import api
    from launcher.cli.render import start_report, watch

    launched = api.resume(args.ids)
    for one in launched:
        print(start_report(one.record, one.statuses, one.note))
    if not args.wait:
        return 0
    ids = [one.record.invocation_id for one in launched]
    return watch(lambda: api.status(ids), until_done=True)


def cmd_ls(args) -> int:
    from launcher.cli.render import table

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
        print(table(["NAME", "CLASS", "EXECUTION KEYS"], [list(r.values()) for r in rows]))
        return 0
    if args.what == "tasks":
        from launcher import api

        rows = api.tasks(args.filter)
        if args.offline:
            rows = [r for r in rows if r.get("offline", "").startswith(("built", "buildable"))]
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        cells = [
            [
                r["name"],
                r["source"],
                ",".join(r["endpoint_types"]),
                r["image"],
                r.get("offline", ""),
                r.get("protocol") or r["description"][:80],
            ]
            for r in rows
        ]
        headers = ["NAME", "SOURCE", "ENDPOINTS", "IMAGE", "OFFLINE HERE", "PROTOCOL / DESCRIPTION"]
        print(table(headers, cells))
        return 0
    from launcher import api
    from launcher.cli.render import runs_rows

    rows = runs_rows(api.runs(limit=args.limit))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    headers = ["INVOCATION", "SWEEP", "CREATED", "EXECUTOR", "TASKS", "STATE", "FOLDER"]
    print(table(headers, [[r[h.lower()] for h in headers] for r in rows]))
    return 0


def cmd_info(args) -> int:
    from pathlib import Path

    from launcher import api

    for record, _ in api.find([args.id]):
        folder = Path(record.folder)
        print(f"invocation: {record.invocation_id}")
        print(f"executor:   {record.executor}")
        print(f"folder:     {folder}")
        if record.sweep_id:
            print(f"sweep:      {record.sweep_id}")
        for key, value in (
            ("model_id", record.model_id),
            ("url", record.url),
            ("host_env", list(record.host_env)),
        ):
            print(f"{key + ':':<11} {value}")
        for key, value in {**record.extra, **api.executor_for(record).describe()}.items():
            print(f"{key + ':':<11} {value}")
        print("jobs:")
        for job in record.jobs:
            why = f" ({job.image_why})" if job.image_why else ""
            print(f"  {job.job_id}  {job.task}  {folder / job.folder}  image {job.image}{why}")
        config = api.resolved_config(record)
        if config is not None:
            print("resolved config:")
            print("  " + config.rstrip().replace("\n", "\n  "))
    return 0


# verb -> its command: the one table `launcher VERB` is routed by (launcher.cli.argv, dispatch).
COMMANDS = {
    "status": cmd_status,
    "logs": cmd_logs,
    "kill": cmd_kill,
    "resume": cmd_resume,
    "ls": cmd_ls,
    "info": cmd_info,
    **export_verbs.COMMANDS,
    **paired_verbs.COMMANDS,
    **image_verbs.COMMANDS,
}
