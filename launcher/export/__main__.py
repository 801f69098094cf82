"""`python -m launcher.export {export,results,report} ...`: these verbs without the main CLI dispatcher.

The main CLI routes the same verbs through launcher.export.cli; this entry keeps them runnable (and
testable) on their own, with the CLI's error contract: one line, exit 2 for bad input, no traceback.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from launcher.errors import LauncherError
    from launcher.export import cli

    parser = argparse.ArgumentParser(prog="launcher")
    sub = parser.add_subparsers(dest="verb", required=True)
    cli.add_parsers(sub)
    auto = sub.add_parser("auto", help="run_all.sh's last step: export by the invocation's auto_export.json")
    auto.add_argument("folder")
    args = parser.parse_args(argv)
    if args.verb == "auto":
        return auto_from_file(args.folder)
    try:
        return getattr(cli, f"cmd_{args.verb}")(args)
    except LauncherError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code


def auto_from_file(folder: str) -> int:
    """Export a finished invocation to the destinations its auto_export.json names; never fails the run
    (problems are printed with the retry command, and the exit code is 0)."""
    import json
    from pathlib import Path

    from launcher.export.run import auto_export

    try:
        spec = json.loads((Path(folder) / "auto_export.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        print(f"warning: auto-export skipped: cannot read {folder}/auto_export.json ({err})", file=sys.stderr)
        return 0
    problems = auto_export(folder, list(spec.get("destinations") or []), dict(spec.get("settings") or {}))
    if not problems:
        print(f"auto-exported to {', '.join(spec.get('destinations') or [])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
