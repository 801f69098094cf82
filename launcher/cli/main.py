"""The front door of `launcher` and `python -m launcher` (launcher/__main__.py calls `main`).

Verbs (launcher.cli.COMMANDS) are dispatched before Hydra sees argv; everything else is the Hydra `run`
path, its own flags parsed out first (launcher.cli.argv). Every error ends here as one line on stderr.
"""

from __future__ import annotations

import sys

from launcher.cli.argv import VERBS, split_run_argv, unknown_command


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from launcher.errors import LauncherError

    try:
        if argv and argv[0] in VERBS:
            from launcher.cli import dispatch

            return dispatch(argv)
        if not argv or argv[0] in ("-h", "--help", "help"):
            from launcher.cli.help import print_help

            print_help()
            return 0 if argv else 2
        if argv[0] == "--version":
            from launcher import __version__

            print(f"launcher {__version__}")
            return 0
        if argv[0] == "run":
            argv = argv[1:]
        elif argv[0][:1].isalpha() and argv[0].replace("_", "").replace("-", "").isalnum():
            raise LauncherError(unknown_command(argv[0]))  # a word that is no override: a mistyped verb
        if {"-h", "--help"} & set(argv) and not any("execution=" in a for a in argv):
            from launcher.cli.help import print_help  # Hydra's help needs an executor chosen

            print_help()
            return 0
        hydra_argv, flags = split_run_argv(argv)
        from launcher.cli import hydra_front

        run = hydra_front.run_raw if flags.pop("config_mode") == "raw" else hydra_front.run
        return run(hydra_argv, **flags)
    except LauncherError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except Exception as err:  # a bug: one line by default, the traceback on request
        import os

        if os.environ.get("LAUNCHER_DEBUG"):
            raise
        print(
            f"error: internal error: {type(err).__name__}: {err} (LAUNCHER_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return 1
