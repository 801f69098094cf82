"""Entry point of `launcher` and `python -m launcher`.

Verbs are dispatched before Hydra sees argv; everything else is the Hydra `run` path. The classic form
`launcher run ... -o key=value` is rewritten to plain Hydra overrides, so multirun keeps working.
Keep this module's imports light: `--help` and the verbs must start instantly.
"""

from __future__ import annotations

import sys

VERBS = ("status", "logs", "kill", "resume", "ls", "info")
RUN_FLAGS = {"--dry-run": "dry_run", "-n": "dry_run", "--wait": "wait"}


def split_run_argv(argv: list[str]) -> tuple[list[str], dict[str, bool]]:
    """`-o X`/`--override X` -> `X`; our flags are removed; the rest goes to Hydra untouched."""
    hydra_argv: list[str] = []
    flags = {"dry_run": False, "wait": False}
    args = iter(argv)
    for arg in args:
        if arg in ("-o", "--override"):
            value = next(args, None)
            if value is None:
                from launcher.errors import LauncherError

                raise LauncherError(f"{arg} needs a value, e.g. {arg} target.api_endpoint.api_key=MY_KEY_VAR")
            hydra_argv.append(value)
        elif arg.startswith("--override="):
            hydra_argv.append(arg.split("=", 1)[1])
        elif arg in RUN_FLAGS:
            flags[RUN_FLAGS[arg]] = True
        else:
            hydra_argv.append(arg)
    return hydra_argv, flags


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
        if {"-h", "--help"} & set(argv) and not any("execution=" in a for a in argv):
            from launcher.cli.help import print_help  # Hydra's help needs an executor chosen

            print_help()
            return 0
        hydra_argv, flags = split_run_argv(argv)
        from launcher.cli.hydra_front import run

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


if __name__ == "__main__":
    sys.exit(main())
