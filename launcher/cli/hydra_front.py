"""The Hydra path: compose config groups + overrides (and -m sweeps) once, collecting each job's typed
spec into an explicit RunContext; after Hydra returns, validate all, preflight all, then launch.

Imported only for `run`; the verbs and `--help` never import Hydra.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from omegaconf.errors import OmegaConfBaseException

from launcher import api
from launcher.cli.hydra_errors import (
    first_line,
    from_hydra,
    resolution_error,
    schema_types,
    translate,
)
from launcher.config.schema import RunSpec
from launcher.errors import ConfigError, LauncherError
from launcher.executors import registry

CONFIG_PATH = "pkg://launcher.conf"
CONFIG_NAME = "config"

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


@dataclass
class RunContext:
    """What one `run` collects from Hydra: each job's spec and overrides, in order. Nothing starts while
    Hydra runs."""

    jobs: list[tuple[RunSpec, list[str]]] = field(default_factory=list)
    error: Exception | None = None
    sweep_id: str | None = None

    def collect(self, cfg: DictConfig) -> None:
        # Errors are kept, not raised: Hydra would print its own multi-line report around them.
        if self.error is not None:
            return
        try:
            spec, overrides, multirun = job_spec(cfg)
        except Exception as err:
            self.error = err
            return
        if multirun and self.sweep_id is None:
            from launcher.store.layout import new_id

            self.sweep_id = new_id()
        self.jobs.append((spec, overrides))


def register_executors() -> None:
    """Each executor's config dataclass defaults become the `execution/<name>` option (plain data, so the
    strict boundary, not Hydra, judges types and keys and every mistake gets the same one-line error)."""
    import dataclasses

    store = ConfigStore.instance()
    for name, cls in registry.executors().items():
        store.store(group="execution", name=name, node=dataclasses.asdict(cls.config_class()))


def job_spec(cfg: DictConfig) -> tuple[RunSpec, list[str], bool]:
    """One Hydra job's composed config -> (typed spec, its overrides, multirun?): the config boundary."""
    from launcher.config import boundary, legacy

    hc = HydraConfig.get()
    executor = legacy.executor_name(hc.runtime.choices.get("execution"))  # slurm/default -> slurm
    if not executor:
        available = ", ".join(registry.executors())
        raise ConfigError("execution", "no executor chosen", f"Add execution=<name> (available: {available})")
    # Merging drops a user's `???` where a default exists: the user's own file says what is missing.
    missing = boundary.user_missing_keys(_user_primary_tree(hc), hc.overrides.task)
    spec = spec_of(OmegaConf.to_container(cfg, resolve=False), executor, missing)
    return spec, list(hc.overrides.task), hc.mode == RunMode.MULTIRUN


def spec_of(raw: dict, executor: str, missing: tuple[str, ...]) -> RunSpec:
    """An unresolved config tree -> the typed spec: no `${oc.env:...}`, interpolations resolved, validated."""
    from launcher.config import boundary

    boundary.refuse_env_interpolation(raw)  # no secret value into any file
    raw.pop("hydra", None)  # a user's hydra.* settings are Hydra's, not the run's
    # NEL 0.2.6 sets `user_config_path` to the --config file it composed (api/types.py RunConfig.from_hydra,
    # replacing any value the file has) only to copy that file into the results (common/helpers.py): a
    # record, not a setting, and our .hydra/ is that record. Both modes drop it, as NEL overwrites it.
    raw.pop("user_config_path", None)
    execution = raw.get("execution")
    if isinstance(execution, dict) and "type" not in execution:
        # The saved .hydra/config.yaml names its executor, so `--config-mode raw` reruns it (raw mode takes
        # the executor from execution.type, as NEL 0.2.6's saved configs have it).
        raw["execution"] = {"type": executor, **execution}
    data = raw
    if _interpolates(raw):  # else resolving changes nothing: skip OmegaConf (1.5 s for 1,000 tasks)
        try:
            data = OmegaConf.to_container(OmegaConf.create(raw), resolve=True)
        except OmegaConfBaseException as err:
            raise resolution_error(err) from None
    return boundary.to_run_spec(data, executor, registry.get(executor).config_class, missing_keys=missing)


def _interpolates(node) -> bool:
    """Whether any string of the tree holds `${`: an interpolation (or an escaped one) to resolve."""
    if isinstance(node, dict):
        return any(_interpolates(v) for v in node.values())
    if isinstance(node, list):
        return any(_interpolates(v) for v in node)
    return isinstance(node, str) and "${" in node


def compose_raw(path: str, tasks: tuple[str, ...] = ()) -> RunContext:
    """NEL 0.2.6's `run --config FILE --config-mode raw` (cli/run.py): the file is loaded as the whole
    config, nothing composed (no defaults list, no packaged groups), no overrides; `-t` still selects
    tasks. The executor is the one the file names in `execution.type`, as NEL's saved configs do."""
    import yaml

    from launcher.cli.argv import config_file_args
    from launcher.cli.omegaconf_yaml import use_libyaml
    from launcher.config import boundary, legacy

    config_file_args(path, raw=True)  # the same checks (and messages) as --config in Hydra mode
    use_libyaml()
    try:
        tree = OmegaConf.to_container(OmegaConf.load(os.path.expanduser(path)), resolve=False)
    except (OmegaConfBaseException, ValueError, yaml.YAMLError) as err:  # invalid YAML
        raise LauncherError(f"--config: {path} is not valid YAML: {first_line(err)}") from None
    if not isinstance(tree, dict):
        raise ConfigError("", f"{path} must be a mapping of config keys")
    if "defaults" in tree:
        raise ConfigError(
            "defaults",
            "--config-mode raw composes nothing: the file must be the whole config",
            "Remove `defaults` (write out what it selected) or run without --config-mode raw",
        )
    execution = tree.get("execution")
    choice = execution.get("type") if isinstance(execution, dict) else None
    executor = legacy.executor_name(choice) if isinstance(choice, str) else None
    available = ", ".join(registry.executors())
    if executor not in registry.executors():
        problem = f"{choice!r} is not an executor" if choice is not None else "is missing"
        raise ConfigError(
            "execution.type",
            f"{problem} (--config-mode raw takes the executor from the file)",
            f"Set it to one of: {available}",
        )
    if tasks:
        evaluation = tree.get("evaluation")
        if isinstance(evaluation, dict):
            evaluation["only"] = list(tasks)
    legacy.register_resolvers()
    ctx = RunContext()
    ctx.jobs.append((spec_of(tree, executor, boundary.user_missing_keys(tree)), []))
    return ctx


def _user_primary_tree(hc) -> dict:
    """The user's own primary config file (`--config FILE` / --config-dir), loaded alone and unresolved;
    the packaged config is not the user's and gives {}."""
    for source in hc.runtime.config_sources:
        if source.schema != "file" or source.provider != "command-line":
            continue
        path = os.path.join(source.path, f"{hc.job.config_name}.yaml")
        if os.path.isfile(path):  # Hydra loaded it already (valid YAML); PyYAML's C loader is 20x faster
            import yaml

            with open(path, encoding="utf-8") as f:
                tree = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            return tree if isinstance(tree, dict) else {}
    return {}


def compose(hydra_argv: list[str]) -> RunContext:
    """Run Hydra once over the argv; every job's spec is collected (or Hydra printed --cfg/--info/--help)."""
    import logging
    import shutil
    import tempfile

    from hydra._internal.utils import get_args_parser

    logging.getLogger("hydra").addHandler(logging.NullHandler())  # we report errors ourselves, once
    from launcher.cli.omegaconf_yaml import use_libyaml
    from launcher.config import legacy

    use_libyaml()

    register_executors()
    legacy.register_resolvers()
    legacy.store_nel_groups(ConfigStore.instance())
    parser = get_args_parser()
    parser.error = _parse_error  # type: ignore[method-assign]  # one line, exit 2, not argparse's usage
    args = parser.parse_intermixed_args(hydra_argv)
    _refuse_null_groups(args.overrides)
    # Hydra's multirun saves multirun.yaml in its sweep dir: give it a scratch folder we delete.
    scratch = tempfile.mkdtemp(prefix="launcher-hydra-")
    first = [*HYDRA_WRITES_NOTHING, f"hydra.sweep.dir={scratch}"]
    first += [_force_schema_key(_group_plus("execution", a)) for a in args.overrides]
    user_wants_traceback = bool(os.environ.get("HYDRA_FULL_ERROR"))
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let errors reach us instead of Hydra's multi-line report
    try:
        # `execution=x` needs an `execution` slot in the primary config; a user's config may have none,
        # then the `+execution=x` form is the one that works.
        for attempt in (first, [_group_plus("execution", a, add=True) for a in first]):
            ctx = RunContext()
            args.overrides = attempt
            try:
                _run(args, parser, ctx.collect)
                break
            except Exception as err:
                if attempt is not first or not _no_execution_slot(err):
                    raise
    except LauncherError:
        raise
    except Exception as err:
        if user_wants_traceback or not from_hydra(err):
            raise
        raise translate(err, _chosen_executor(args.overrides)) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if not user_wants_traceback:
            os.environ.pop("HYDRA_FULL_ERROR", None)
    if ctx.error is not None:
        if from_hydra(ctx.error) and not user_wants_traceback:
            raise translate(ctx.error, _chosen_executor(args.overrides)) from None
        raise ctx.error
    return ctx


CONFIG_GROUPS = ("target", "execution", "evaluation", "deployment")


def _refuse_null_groups(overrides: list[str]) -> None:
    """`target=null` chooses no option of a config group: Hydra raises a bare ValueError ("Config group
    override must be a string or a list") that names no key; said here in one line (L1)."""
    for override in overrides:
        key, eq, value = override.lstrip("+~").partition("=")
        if eq and key in CONFIG_GROUPS and value.strip().lower() in ("null", "~", ""):
            if key == "execution":
                options = list(registry.executors())
            else:
                options = sorted(
                    p.stem for p in Path(__file__).parents[1].joinpath("conf", key).glob("*.yaml")
                )
            raise ConfigError(
                key,
                f"{value.strip() or 'an empty value'} is not an option of the {key} group",
                f"Choose one of: {', '.join(options)}",
            )


def _run(args, parser, collect) -> None:
    """Hydra over parsed args. `@hydra.main` would read sys.argv and compose twice (once only to learn the
    run mode); with `-m` or not we know the mode, so we compose once (Hydra 1.3.x internals, as
    hydra/_internal/utils.py:_run_hydra uses them). --cfg, --info, --help and the like go Hydra's way."""
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import _run_hydra, create_automatic_config_search_path
    from hydra.core.config_search_path import SearchPathQuery
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import SearchPathException

    special = (
        args.help,
        args.hydra_help,
        args.cfg,
        args.info,
        args.shell_completion,
        args.experimental_rerun,
    )
    if any(special) or any(o.lstrip("+").startswith("hydra.mode=") for o in args.overrides):
        _run_hydra(args, parser, collect, CONFIG_PATH, CONFIG_NAME)
        return
    search_path = create_automatic_config_search_path(None, __name__, args.config_path or CONFIG_PATH)
    if args.config_dir is not None:
        config_dir = os.path.abspath(args.config_dir)
        if not os.path.isdir(config_dir):
            raise SearchPathException(f"Additional config directory '{config_dir}' not found")
        search_path.prepend("command-line", f"file://{config_dir}", anchor=SearchPathQuery(provider="schema"))
    hydra = Hydra.create_main_hydra2(task_name="launcher", config_search_path=search_path)
    try:
        # The mode is an override as Hydra's _run_app gives it (the job reads it back in HydraConfig).
        mode = "MULTIRUN" if args.multirun else "RUN"
        overrides = [*args.overrides, f"hydra.mode={mode}"]
        if args.multirun:
            hydra.multirun(args.config_name or CONFIG_NAME, collect, overrides)
            return
        cfg = hydra.compose_config(args.config_name or CONFIG_NAME, overrides, run_mode=RunMode.RUN)
        job = cfg.hydra.job
        if cfg.hydra.callbacks or job.env_set or job.env_copy or job.chdir or cfg.hydra.output_subdir:
            hydra.run(args.config_name or CONFIG_NAME, collect, overrides)  # the user's Hydra settings act
            return
        # Hydra's run_job would deep-copy the whole tree for the job (0.2 s for 1,000 tasks) and do nothing
        # else here: the job only reads the tree, and HydraConfig as run_job sets it (its output dir too,
        # for `${hydra:runtime.output_dir}`).
        with read_write(cfg.hydra.runtime), open_dict(cfg.hydra.runtime):
            cfg.hydra.runtime.output_dir = os.path.abspath(str(OmegaConf.select(cfg, "hydra.run.dir")))
        HydraConfig.instance().set_config(cfg)
        collect(cfg)
    finally:
        GlobalHydra.instance().clear()


def launch_all(ctx: RunContext, dry_run: bool, wait: bool) -> int:
    """Validate every job (its plan), then every job's preflight, then start them: all or none start."""
    from launcher.cli.render import render_dry_run, start_report, watch

    prepared = [api.prepare(spec, overrides, ctx.sweep_id) for spec, overrides in ctx.jobs]
    for line in dict.fromkeys(
        line for one in prepared for line in one.spec.pending.report(one.spec.executor)
    ):
        print(f"note: {line}", file=sys.stderr)  # accepted but not acted on yet: said, never dropped
    if dry_run:
        from launcher.config.boundary import check_machine

        for one in prepared:  # what launch would refuse for who you are (L3) is refused here too
            check_machine(one.spec)
        for one in prepared:
            print(render_dry_run(one.spec, one.plan))
        return 0
    api.preflight_all(prepared)
    launched = []
    for one in prepared:
        started = api.start(one)
        print(start_report(started.record, started.statuses, started.note), flush=True)
        launched.append(started)
    if wait:
        ids = [one.record.invocation_id for one in launched]
        return watch(lambda: api.status(ids), until_done=True)
    return 1 if any(one.failed for one in launched) else 0


def run(hydra_argv: list[str], dry_run: bool, wait: bool) -> int:
    return launch_all(compose(hydra_argv), dry_run, wait)


def run_raw(
    hydra_argv: list[str], dry_run: bool, wait: bool, config: str | None, tasks: tuple[str, ...] = ()
) -> int:
    """`run --config FILE --config-mode raw`: NEL refuses it without --config and with any override."""
    if config is None:
        raise LauncherError("--config-mode raw needs --config FILE: raw mode runs that file as it is")
    if hydra_argv:
        raise LauncherError(
            f"--config-mode raw runs {config} as it is, without overrides or Hydra options: "
            f"{hydra_argv[0]!r} cannot apply; edit the file, or drop --config-mode raw"
        )
    return launch_all(compose_raw(config, tasks), dry_run, wait)


def _chosen_executor(overrides: list[str]) -> str | None:
    chosen = [m.group(1) for o in overrides if (m := re.match(r"^\+{0,2}execution=(\w+)$", o))]
    return chosen[-1] if chosen else None


def _parse_error(message: str):
    raise LauncherError(f"cannot parse the command line: {message}; see `launcher --help`")


def _no_execution_slot(err: Exception) -> bool:
    from hydra.errors import ConfigCompositionException

    return isinstance(err, ConfigCompositionException) and "Could not override 'execution'" in str(err)


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
