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

from launcher import api
from launcher.cli.hydra_errors import first_line, full_key, schema_types, translate
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
    from launcher.store.layout import new_id

    hc = HydraConfig.get()
    executor = hc.runtime.choices.get("execution")
    if not executor:
        available = ", ".join(registry.executors())
        raise ConfigError("execution", "no executor chosen", f"Add execution=<name> (available: {available})")
    try:
        data = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as err:
        raise ConfigError(full_key(err), first_line(err)) from None
    spec = to_run_spec(data, executor, registry.get(executor).config_class)
    if hc.mode == RunMode.MULTIRUN and OPTIONS.sweep_id is None:
        OPTIONS.sweep_id = new_id()
    if OPTIONS.validate_only:
        api.prepare(spec, sweep_id=OPTIONS.sweep_id)
        return
    overrides = list(hc.overrides.task)
    OPTIONS.exit_codes.append(_launch(spec, overrides, OPTIONS.dry_run, OPTIONS.wait, OPTIONS.sweep_id))


def _launch(spec, overrides: list[str], dry_run: bool, wait: bool, sweep_id: str | None) -> int:
    from launcher.cli.render import render_dry_run, start_report, watch

    prepared = api.prepare(spec, overrides, sweep_id)
    if dry_run:
        print(render_dry_run(prepared.spec, prepared.plan))
        return 0
    api.preflight(prepared)
    launched = api.start(prepared)
    print(start_report(launched.record, launched.statuses, launched.note))
    if wait:
        ident = launched.record.invocation_id
        return watch(lambda: api.status([ident]), until_done=True)
    return 1 if launched.failed else 0


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
        raise translate(err) from None
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
    if match and "." in match.group(1) and schema_types(match.group(1).split(".")):
        return "++" + arg
    return arg
