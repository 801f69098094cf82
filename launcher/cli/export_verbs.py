"""`launcher export`, `launcher results`, `launcher report`: argparse parsers and their commands.

launcher.cli adds these parsers to its own and these verbs to its table (COMMANDS).
"""

from __future__ import annotations

import argparse
import sys

from launcher.errors import LauncherError

IDS_HELP = "invocation id, job id <inv>.<n>, sweep id (any unique prefix) or an invocation folder"


def add_parsers(sub) -> None:
    s = sub.add_parser("export", help="export results to a local table, MLflow or W&B (idempotent)")
    s.add_argument("ids", nargs="+", help=IDS_HELP)
    s.add_argument("--dest", default="local", help="local (default), mlflow or wandb")
    s.add_argument("--format", default=None, help="--dest local: csv (default) or json")
    s.add_argument("-o", "--output", default=None, help="--dest local: the table file (appended to by key)")
    s.add_argument("--experiment", default=None, help="MLflow experiment / W&B project (default: launcher)")
    s.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI)")
    s.add_argument("--entity", default=None, help="W&B entity")
    s.add_argument("--samples", action="store_true", help="also upload each task's samples.jsonl")

    s = sub.add_parser(
        "results", help="runs x tasks (or any two axes of a sweep): score ± stderr, best marked"
    )
    s.add_argument("ids", nargs="+", help=IDS_HELP)
    s.add_argument("--format", default="table", help="table (default), markdown, csv or json")
    axes = "model, task, metric, invocation or a swept key (e.g. evaluation.tasks.0.params.temperature)"
    s.add_argument("--rows", default="model", help=f"the rows axis (default: model): {axes}")
    s.add_argument("--cols", default="task", help="the columns axis (default: task), as --rows")
    s.add_argument(
        "--baseline",
        default=None,
        help="a sweep cell (invocation id, or key=value[,key=value]): paired deltas of every other cell",
    )

    s = sub.add_parser("report", help="one self-contained HTML report with a per-sample browser")
    s.add_argument("ids", nargs="+", help=IDS_HELP)
    s.add_argument("-o", "--output", default="report.html", help="the HTML file (default: report.html)")


def _choice(flag: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise LauncherError(f"{flag} {value!r} is not allowed; allowed: {', '.join(allowed)}")
    return value


def cmd_export(args: argparse.Namespace) -> int:
    from launcher.export import run, source

    dest = _choice("--dest", args.dest, run.DESTINATIONS)
    if args.format is not None:
        if dest != "local":
            raise LauncherError(f"--format applies to --dest local only (got --dest {dest}); drop --format")
        _choice("--format", args.format, run.FORMATS)
    settings = {
        "local": {"format": args.format or "csv", "path": args.output},
        "mlflow": {
            "tracking_uri": args.tracking_uri,
            "experiment": args.experiment,
            "log_samples": args.samples,
        },
        "wandb": {"project": args.experiment, "entity": args.entity, "log_samples": args.samples},
    }[dest]
    return run.export_runs(source.load(args.ids), dest, settings)


def cmd_results(args: argparse.Namespace) -> int:
    from launcher.export import compare, source

    fmt = _choice("--format", args.format, ("table", "markdown", "csv", "json"))
    runs = source.load(args.ids)
    if not any(r.has_results for r in runs):
        raise LauncherError("none of the given jobs has results yet; `launcher status ID` shows their state")
    if args.baseline is not None:
        from launcher.paired import render, sweep

        fmt = _choice("--format with --baseline", args.format, ("table", "markdown", "json"))
        rows = sweep.against(runs, args.baseline)
        print(render.render_sweep(rows, args.baseline, "text" if fmt == "table" else fmt))
        return 0
    rows, cols = compare.axis("--rows", args.rows, runs), compare.axis("--cols", args.cols, runs)
    if rows == cols:
        raise LauncherError(f"--rows and --cols both name {rows}; give two different axes")
    from launcher.config.values import terminal_safe

    # names and labels come from the runs' results files: nothing in them may drive the terminal
    print(terminal_safe(compare.render(compare.grid(runs, rows, cols), fmt), keep="\n"))
    missing = [r.job_id for r in runs if not r.has_results]
    if missing:
        print(f"no results yet: {', '.join(missing)}", file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from launcher.export import source
    from launcher.report.html import write_report

    runs = source.load(args.ids)
    path = Path(args.output)
    try:
        n = write_report(runs, path)
    except OSError as err:
        raise LauncherError(
            f"cannot write the report {path}: {err.strerror}; give another path with -o"
        ) from None
    print(f"report of {len(runs)} jobs ({n} samples) written to {path}")
    return 0


COMMANDS = {"export": cmd_export, "results": cmd_results, "report": cmd_report}
