"""The run path's own flags, parsed out of argv before Hydra sees the rest (launcher.cli.main routes).

The classic form `launcher run ... -o key=value` (and NEL 0.2's `--config FILE`, `-t NAME`) is rewritten
to plain Hydra arguments, so multirun keeps working. Keep this module's imports light: `--help` and the
verbs must start instantly.
"""

from __future__ import annotations

from launcher.cli import COMMANDS as VERB_COMMANDS

VERBS = tuple(VERB_COMMANDS)
COMMANDS = ("run", *VERBS)
RUN_FLAGS = {"--dry-run": "dry_run", "-n": "dry_run", "--wait": "wait"}
VALUE_FLAGS = ("-o", "--override", "--config", "-t", "--task", "--env-file", "--config-mode")
CONFIG_MODES = ("hydra", "raw")  # NEL 0.2.6's `run --config-mode`


def split_run_argv(argv: list[str]) -> tuple[list[str], dict]:
    """Our run flags out of argv; `-o X` -> `X`, `--config F` -> `--config-dir D --config-name N`,
    `-t A -t B` -> `evaluation.only=[A,B]`, `--env-file F` loaded into this process's environment,
    `--config-mode M` into the flags; with `raw` the file and tasks stay in the flags for
    launcher.cli.hydra_front.run_raw, which takes no Hydra arguments."""
    from launcher.errors import LauncherError

    hydra_argv: list[str] = []
    flags: dict = {"dry_run": False, "wait": False, "config_mode": "hydra"}
    tasks: list[str] = []
    config: str | None = None
    args = iter(argv)

    def value_of(flag: str, example: str) -> str:
        value = next(args, None)
        if value is None:
            raise LauncherError(f"{flag} needs a value, e.g. {flag} {example}")
        return value

    for arg in args:
        flag, eq, inline = arg.partition("=")
        if flag in VALUE_FLAGS and eq and flag.startswith("--"):
            value = inline
        elif arg in VALUE_FLAGS:
            flag, value = arg, None
        else:
            flag = value = None
        if flag in ("-o", "--override"):
            hydra_argv.append(
                value if value is not None else value_of(flag, "target.api_endpoint.api_key=KEY_VAR")
            )
        elif flag == "--config":
            config = value if value is not None else value_of(flag, "my_run.yaml")
        elif flag in ("-t", "--task"):
            tasks.append(value if value is not None else value_of(flag, "gsm8k"))
        elif flag == "--config-mode":
            mode = value if value is not None else value_of(flag, "raw")
            if mode not in CONFIG_MODES:
                raise LauncherError(f"--config-mode: {mode!r} is not one of {', '.join(CONFIG_MODES)}")
            flags["config_mode"] = mode
        elif flag == "--env-file":
            load_env_file(value if value is not None else value_of(flag, ".env"))
        elif arg in RUN_FLAGS:
            flags[RUN_FLAGS[arg]] = True
        else:
            hydra_argv.append(arg)
    if flags["config_mode"] == "raw":
        flags.update(config=config, tasks=tuple(tasks))
        return hydra_argv, flags
    if config is not None:
        hydra_argv += config_file_args(config)
    if tasks:
        hydra_argv.append(f"evaluation.only=[{','.join(tasks)}]")
    return hydra_argv, flags


def config_file_args(path: str, raw: bool = False) -> list[str]:
    """NEL 0.2's `--config FILE`: the file is the primary config (its folder is searched for groups too).
    With `raw` (`--config-mode raw`, the file loaded alone) only the checks apply: .yml is fine there."""
    import os

    from launcher.errors import LauncherError

    full = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(full):
        raise LauncherError(f"--config: {path} is not a file; give the path of a YAML config")
    stem, ext = os.path.splitext(os.path.basename(full))
    if ext == ".yml" and not raw:  # Hydra looks only for NAME.yaml; a file NEL saved after a run is whole
        raise LauncherError(
            f"--config: Hydra reads only .yaml files; rename {path} to {stem}.yaml, or run a config NEL saved"
            " as it is with --config-mode raw"
        )
    if ext not in (".yaml", ".yml"):
        raise LauncherError(f"--config: {path} is not a .yaml file")
    return ["--config-dir", os.path.dirname(full), "--config-name", stem]


def load_env_file(path: str) -> None:
    """A dotenv file into this process's environment, so the config can name its values as host
    variables; parsed by python-dotenv (quotes, `export`, `# comments`, as NEL users write them), values
    taken literally (no ${VAR} expansion). Variables already set win. Names that change how programs
    load or where they connect (config.values.changes_how_programs_run) are refused, before any is set:
    the launcher, run_all.sh, the proxy and the exporters all inherit this environment."""
    import io
    import os
    import re

    from dotenv import dotenv_values

    from launcher.config.values import changes_how_programs_run
    from launcher.errors import ConfigError, LauncherError
    from launcher.store.layout import read_regular

    text = read_regular(path, whole=True)  # a FIFO or device would block or never end
    if text is None:
        raise LauncherError(f"--env-file: cannot read {path}: not a regular file of at most 16 MiB")
    values = dotenv_values(stream=io.StringIO(text), interpolate=False)
    for name, value in values.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or value is None:
            raise LauncherError(f"--env-file: {path}: {name!r} is not a NAME=VALUE line")
        if changes_how_programs_run(name):
            raise ConfigError(
                f"--env-file {path}: {name}",
                "changes how programs load or where they connect (PATH, LD_*, PYTHON*, BASH_ENV, "
                "DOCKER_*, *_proxy, ...): the launcher and every script it starts would inherit it",
                "Remove it from the file; set it in your shell if you really mean it",
            )
    for name, value in values.items():
        os.environ.setdefault(name, value)


def unknown_command(word: str) -> str:
    import difflib

    close = difflib.get_close_matches(word, COMMANDS, n=1)
    hint = f"; did you mean `launcher {close[0]}`?" if close else ""
    return f"unknown command {word!r} (commands: {', '.join(COMMANDS)}){hint} `launcher --help` shows usage"
