"""`python -m launcher.export auto FOLDER`: auto-export, the last step of run_all.sh and the Slurm export job.

The verbs export, results and report are `launcher VERB` (launcher.cli.export_verbs).
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m launcher.export")
    sub = parser.add_subparsers(dest="verb", required=True)
    auto = sub.add_parser("auto", help="run_all.sh's last step: export by the invocation's auto_export.json")
    auto.add_argument("folder")
    return auto_from_file(parser.parse_args(argv).folder)


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
