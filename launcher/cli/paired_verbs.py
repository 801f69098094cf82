"""`launcher compare` and `launcher gate`: argparse parsers and their commands (the logic is in
launcher.paired, called through launcher.api). launcher.cli adds these parsers to its own and these verbs
to its table (COMMANDS)."""

from __future__ import annotations

import argparse

from launcher.errors import LauncherError
from launcher.paired.render import FORMATS

IDS_HELP = "invocation id, job id <inv>.<n>, sweep cell (its invocation id, or SWEEP:key=value) or folder"


def add_parsers(sub) -> None:
    s = sub.add_parser(
        "compare", help="paired per-item comparison of two runs: deltas, 95% intervals, p, MDE"
    )
    s.add_argument("base", help=f"the baseline: {IDS_HELP}")
    s.add_argument("cand", help="the candidate, as BASE")
    s.add_argument("--task", default=None, help="only this task")
    s.add_argument("--metric", default=None, help="the metric to compare (default: each task's headline)")
    s.add_argument("--format", default="text", help="text (default), json or markdown")
    s.add_argument(
        "--html", default=None, metavar="FILE", help="also write the comparison page with its flip browser"
    )
    add_gate_parser(sub)


def _format(value: str) -> str:
    if value not in FORMATS:
        raise LauncherError(f"--format {value!r} is not allowed; allowed: {', '.join(FORMATS)}")
    return value


def cmd_compare(args: argparse.Namespace) -> int:
    from launcher import api
    from launcher.paired.render import render_comparison

    fmt = _format(args.format)
    compared = api.compare(args.base, args.cand, args.task, args.metric)
    print(render_comparison(compared, fmt))
    if args.html:
        from pathlib import Path

        from launcher.paired import sweep
        from launcher.report.comparison import write_comparison

        path = Path(args.html)
        try:
            n = write_comparison(compared, sweep.load([args.base]), sweep.load([args.cand]), path)
        except OSError as err:
            raise LauncherError(
                f"cannot write {path}: {err.strerror}; give another path with --html"
            ) from None
        print(f"comparison page ({n} flips) written to {path}")
    return 0


def add_gate_parser(sub) -> None:
    s = sub.add_parser(
        "gate",
        help="release gate over a NeMo Evaluator 0.3 policy: exit 0 GO, 1 NO-GO, 3 INCONCLUSIVE, 2 bad input",
        description="Per task PASS / BREACH / INSUFFICIENT_EVIDENCE from the 95% interval on the paired "
        "per-item drop; overall GO (exit 0), NO-GO (exit 1) or INCONCLUSIVE (exit 3: more items or repeats "
        "would decide). Bad input (policy, ids, runs that do not pair) exits 2 with one line on stderr; "
        "nel gate 0.3.0 uses 2 for INCONCLUSIVE.",
    )
    s.add_argument("base", help=f"the baseline: {IDS_HELP}")
    s.add_argument("cand", help="the candidate, as BASE")
    s.add_argument("--policy", required=True, help="the gate policy YAML (NeMo Evaluator 0.3.0's format)")
    s.add_argument("--verbose", action="store_true", help="the reasons behind each task's verdict")
    s.add_argument("--format", default="text", help="text (default), json or markdown")


def cmd_gate(args: argparse.Namespace) -> int:
    from launcher import api
    from launcher.paired.render import render_gate

    fmt = _format(args.format)
    report = api.gate(args.base, args.cand, args.policy)
    print(render_gate(report, fmt, args.verbose))
    return report.exit_code


COMMANDS = {"compare": cmd_compare, "gate": cmd_gate}
