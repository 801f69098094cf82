"""The Hydra path: compose config groups + overrides (and -m sweeps); each Hydra job launches one invocation.

Imported only for `run`; the verbs and `--help` never import Hydra.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from launcher.errors import ConfigError, LauncherError
from launcher.executors import registry


@dataclass
class RunOptions:
    dry_run: bool = False
    wait: bool = False
    validate_only: bool = False  # first pass of a sweep: every job's config is checked before any starts
    exit_codes: list[int] = field(default_factory=list)
    errors: list[Exception] = field(default_factory=list)
    sweep_id: str | None = None


OPTIONS = RunOptions()

# The launcher writes its own invocation folders (with .hydra/ inside); Hydra itself must write nothing,
# whatever primary config the user gives. Given first, so a user's own hydra.* overrides still win.
HYDRA_WRITES_NOTHING = [
    "hydra.output_subdir=null",
    "hydra.run.dir=.",
    "hydra.sweep.subdir=.",
    "hydra.job.chdir=false",
    "hydra/job_logging=none",
    "hydra/hydra_logging=none",
    "hydra.help.app_name=launcher",
]


def register_executors() -> None:
    """Each executor's config dataclass defaults become the `execution/<name>` option (plain data, so the
    strict boundary, not Hydra, judges types and keys and every mistake gets the same one-line error)."""
    import dataclasses

    store = ConfigStore.instance()
    for name, cls in registry.executors().items():
        store.store(group="execution", name=name, node=dataclasses.asdict(cls.config_class()))


@hydra.main(version_base=None, config_path="pkg://launcher.conf", config_name="config")
def hydra_job(cfg: DictConfig) -> None:
    # Errors are kept, not raised: Hydra would print its own multi-line report around them.
    if OPTIONS.errors:
        return
    try:
        _job(cfg)
    except Exception as err:
        OPTIONS.errors.append(err)


def _job(cfg: DictConfig) -> None:
    from launcher.config.boundary import to_run_spec
    from launcher.launch import launch
    from launcher.state import new_id

    hc = HydraConfig.get()
    executor = hc.runtime.choices.get("execution")
    if not executor:
        available = ", ".join(registry.executors())
        raise ConfigError("execution", "no executor chosen", f"Add execution=<name> (available: {available})")
    try:
        data = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as err:
        raise ConfigError(_full_key(err), _first_line(err)) from None
    spec = to_run_spec(data, executor, registry.get(executor).config_class)
    if hc.mode == RunMode.MULTIRUN and OPTIONS.sweep_id is None:
        OPTIONS.sweep_id = new_id()
    if OPTIONS.validate_only:
        launch(spec, [], dry_run=True, wait=False, sweep_id=OPTIONS.sweep_id, quiet=True)
        return
    overrides = list(hc.overrides.task)
    code = launch(spec, overrides, dry_run=OPTIONS.dry_run, wait=OPTIONS.wait, sweep_id=OPTIONS.sweep_id)
    OPTIONS.exit_codes.append(code)


def run(hydra_argv: list[str], dry_run: bool, wait: bool) -> int:
    """Run Hydra with `hydra_argv`; Hydra's own errors become one-line ConfigErrors."""
    import logging

    OPTIONS.dry_run, OPTIONS.wait = dry_run, wait
    logging.getLogger("hydra").addHandler(logging.NullHandler())  # we report errors ourselves, once
    register_executors()
    user_wants_traceback = bool(os.environ.get("HYDRA_FULL_ERROR"))
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let errors reach us instead of Hydra's multi-line report
    import shutil
    import tempfile

    flags, overrides = _split_flags(hydra_argv)
    # Hydra's multirun saves multirun.yaml in its sweep dir: give it a scratch folder we delete.
    scratch = tempfile.mkdtemp(prefix="launcher-hydra-")
    argv = [*flags, *HYDRA_WRITES_NOTHING, f"hydra.sweep.dir={scratch}"]
    argv += [_force_schema_key(_group_plus("execution", a)) for a in overrides]
    multirun = "-m" in flags or "--multirun" in flags
    try:
        for attempt in (argv, [_group_plus("execution", a, add=True) for a in argv]):
            try:
                if multirun and not dry_run:
                    OPTIONS.validate_only = True
                    try:
                        _call_hydra(attempt)
                    finally:
                        OPTIONS.validate_only = False
                return _call_hydra(attempt)
            except Exception as err:
                no_slot = "Could not override 'execution'. No match in the defaults list" in str(err)
                if not no_slot or attempt is not argv:
                    raise
        raise AssertionError("unreachable")
    except LauncherError:
        raise
    except Exception as err:
        if user_wants_traceback or not type(err).__module__.startswith(("hydra", "omegaconf", "yaml")):
            raise
        raise _translate(err) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if not user_wants_traceback:
            os.environ.pop("HYDRA_FULL_ERROR", None)


VALUE_FLAGS = {
    "-cd",
    "--config-dir",
    "-cp",
    "--config-path",
    "-cn",
    "--config-name",
    "-p",
    "--package",
    "-sc",
    "--shell-completion",
    "-c",
    "--cfg",
    "--experimental-rerun",
}


def _split_flags(argv: list[str]) -> tuple[list[str], list[str]]:
    """Hydra wants its overrides in one run; `-o` may have put them between flags."""
    flags, overrides = [], []
    after_value_flag = False
    for arg in argv:
        is_override = "=" in arg and not arg.startswith("-") and not after_value_flag
        (overrides if is_override else flags).append(arg)
        after_value_flag = arg in VALUE_FLAGS
    return flags, overrides


def _call_hydra(argv: list[str]) -> int:
    saved = sys.argv
    sys.argv = [saved[0] if saved else "launcher", *argv]
    OPTIONS.exit_codes.clear()
    OPTIONS.errors.clear()
    try:
        hydra_job()
    finally:
        sys.argv = saved
    if OPTIONS.errors:
        raise OPTIONS.errors[0]
    return max(OPTIONS.exit_codes, default=0)


def _group_plus(group: str, arg: str, add: bool = False) -> str:
    """`+execution=x` and `execution=x` both work: the packaged config has an `execution` slot, a user's
    primary config may not; we try the slot first and the `+` form if Hydra finds no slot."""
    bare = re.match(rf"^\+{{0,2}}{group}=", arg)
    if not bare:
        return arg
    value = arg[bare.end() :]
    return f"+{group}={value}" if add else f"{group}={value}"


def _force_schema_key(arg: str) -> str:
    """`evaluation.only=x` works even when the chosen preset does not mention `only`: a key our schema
    knows is overridden with Hydra's `++` (add or replace). Unknown keys still reach Hydra's check."""
    match = re.match(r"^([A-Za-z_][\w.]*)=", arg)
    if match and "." in match.group(1) and _schema_types(match.group(1).split(".")):
        return "++" + arg
    return arg


def _schema_types(parts: list[str]) -> list:
    """The schema types a dotted key can have (several executors may share a field); [] if unknown."""
    import dataclasses
    import typing

    from launcher.config.schema import Deployment, Evaluation, Target

    roots = {
        "target": [Target],
        "evaluation": [Evaluation],
        "deployment": [Deployment],
        "execution": [cls.config_class for cls in registry.executors().values()],
    }
    candidates = roots.get(parts[0], [])
    for part in parts[1:]:
        following = []
        for cls in candidates:
            hints = typing.get_type_hints(cls) if dataclasses.is_dataclass(cls) else {}
            if part in hints:
                following.append(hints[part])
        candidates = following
    return candidates


def _translate(err: Exception) -> LauncherError:
    from hydra.errors import OverrideParseException

    text = str(err)
    mark = getattr(err, "problem_mark", None)
    if mark is not None:  # a YAML syntax error in a config file
        return LauncherError(
            f"invalid YAML in {mark.name} line {mark.line + 1}, column {mark.column + 1}: {err.problem}"
        )
    if isinstance(err, OverrideParseException):
        override = err.override.lstrip("+")
        return ConfigError(
            override.split("=", 1)[0],
            f"cannot parse the override {override!r} ({_first_line(err)})",
            "Check brackets and quotes, e.g. 'evaluation.tasks=[gsm8k,humaneval]'",
        )
    option = re.search(
        r"Could not find '([^'/]+)/([^']+)'\s*\nAvailable options in '[^']+':\n(.*?)(\n\S|$)", text, re.S
    )
    if option:
        group, name = option.group(1), option.group(2)
        available = ", ".join(o.strip() for o in option.group(3).split() if o.strip())
        return ConfigError(group, f"no option {name!r}", f"Available: {available}")
    missing = re.search(r"You must specify '([^']+)', e\.g, \S+\nAvailable options:\n(.*)", text, re.S)
    if missing:
        group = missing.group(1)
        options = ", ".join(o.strip() for o in missing.group(2).split() if o.strip())
        return ConfigError(group, "not chosen", f"Add {group}=<name> (available: {options})")
    cause = err.__cause__ if isinstance(err.__cause__, OmegaConfBaseException) else err
    if isinstance(cause, OmegaConfBaseException):
        key = _full_key(cause)
        detail = _first_line(cause)
        if "not in struct" in detail or "Key '" in detail and "not" in detail:
            import dataclasses

            parent = key.rpartition(".")[0]
            allowed = sorted(
                {
                    f.name
                    for cls in _schema_types(parent.split("."))
                    if dataclasses.is_dataclass(cls)
                    for f in dataclasses.fields(cls)
                }
            )
            listing = (
                f"Allowed keys under {parent}: {', '.join(allowed)}" if allowed else "Check the spelling"
            )
            return ConfigError(key, "unknown key", listing)
        return ConfigError(key, detail)
    first = _first_line(err)
    hint = (
        "Run with HYDRA_FULL_ERROR=1 for the full trace" if type(err).__module__.startswith("hydra") else ""
    )
    return LauncherError(f"{first}{'. ' + hint if hint else ''}")


def _full_key(err: OmegaConfBaseException) -> str:
    return str(getattr(err, "full_key", "") or "")


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0].rstrip(".") if text else type(err).__name__
