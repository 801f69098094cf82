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
    cli.add_parsers(parser.add_subparsers(dest="verb", required=True))
    args = parser.parse_args(argv)
    try:
        return getattr(cli, f"cmd_{args.verb}")(args)
    except LauncherError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    sys.exit(main())
