"""The one strict boundary: composed plain data -> frozen typed objects, or one clear ConfigError.

Unknown keys, wrong types and missing values are rejected with the full key, what is allowed and how to
fix it. NeMo Evaluator Launcher 0.2.6 spellings are mapped by launcher.config.legacy, called from here.

What the Hydra front must call (in this order):
1. `refuse_env_interpolation(OmegaConf.to_container(cfg, resolve=False))` before resolving;
2. `to_run_spec(resolved, executor, config_class, missing_keys=user_missing_keys(user_file_tree, overrides))`
   where `user_file_tree` is the user's own primary config loaded alone (OmegaConf.load, unresolved) and
   `overrides` the command-line overrides: merging drops a user's `???` when a default exists.
"""

from __future__ import annotations

import dataclasses
import functools
import getpass
import math
import os
import re
import types
import typing
from collections.abc import Iterable
from typing import Any, Literal, Union

from launcher.config import legacy
from launcher.config.schema import (
    AuxiliaryDeployment,
    Deployment,
    Evaluation,
    Mounts,
    Pending,
    RunSpec,
    Target,
    task_ids,
)
from launcher.config.values import NOT_SHOWN, control_character, is_image_reference, looks_secret, show
from launcher.errors import ConfigError

MISSING = "???"
MAX_SHARDS = 1000  # below Slurm's default MaxArraySize (1001), and folders per task stay listable
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TOP_LEVEL = ("execution", "target", "evaluation", "deployment")
NEL_TOP_LEVEL = ("env_vars", "export", "auxiliary_deployments", "name")  # mapped or refused by legacy
# Free text written to its own file (a script or YAML), never into a line: newlines and tabs allowed.
FREE_TEXT = re.compile(
    r"(^|\.)(pre_cmd|post_cmd)$|nemo_evaluator_config|adapter_config|^deployment\.command$"
)


def refuse_env_interpolation(raw: dict) -> None:
    """`${oc.env:VAR}` in the UNRESOLVED config would copy a host value (often a secret) into scripts, the
    docker command line and .hydra/: refused with the by-name spelling. USER/LOGNAME/HOME are allowed."""
    found = legacy.env_interpolations(raw)
    if found:
        key, var = found[0]
        raise ConfigError(
            key,
            f"${{oc.env:{var}}} would write the value of {var} into the run files",
            f"Pass it by name: in env_vars write NAME: host:{var} (api_key: {var} for the endpoint key)",
        )


def user_missing_keys(user_tree: Any, overrides: Iterable[str] = ()) -> tuple[str, ...]:
    """Dotted keys the user wrote as `???` in their own config file and no command-line override sets."""
    found: list[str] = []

    def walk(node: Any, key: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k not in ("defaults", "hydra"):
                    walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{key}[{i}]")
        elif node == MISSING:
            found.append(key)

    walk(user_tree, "")
    # an override names a list item Hydra's way (evaluation.tasks.1.x): compare in the form found here
    overridden = {re.sub(r"\.(\d+)(?=\.|$)", r"[\1]", o.lstrip("+~").split("=", 1)[0]) for o in overrides}
    return tuple(k for k in found if k not in overridden)


def to_run_spec(
    data: dict, executor: str, execution_class: type, missing_keys: Iterable[str] = ()
) -> RunSpec:
    """Validate the whole composed tree (plain data, secrets absent) and freeze it."""
    if not isinstance(data, dict):
        raise ConfigError("", "the configuration must be a mapping")
    for key in missing_keys:
        spelled = re.sub(r"\[(\d+)\]", r".\1", key)  # as an override spells a list item
        raise ConfigError(
            key, "missing required value", f"Set it in your config or add {spelled}=... to the command"
        )
    unknown = sorted(set(data) - set(TOP_LEVEL) - set(NEL_TOP_LEVEL) - {"hydra"})
    if unknown:
        raise ConfigError(unknown[0], "unknown top-level key", f"Allowed: {', '.join(TOP_LEVEL)}")
    for key in TOP_LEVEL:
        if key in data and data[key] is None:
            fix = (
                "Use deployment=none for an existing endpoint"
                if key == "deployment"
                else (f"Choose one with {key}=<name> or define '{key}:' in your config")
            )
            raise ConfigError(key, "is null", fix)
    _check_text({k: v for k, v in data.items() if k != "hydra"}, "")
    execution_fields = {f.name for f in dataclasses.fields(execution_class)}
    ours, mounts, pending = legacy.to_ours(data, executor, execution_fields)
    base = legacy.relative_path_base(executor)
    if base and mounts:  # the saved config records the absolute paths the run uses
        mounts = legacy.absolute_mounts(mounts, base)
        data = {
            **data,
            "execution": {**data["execution"], "mounts": {**data["execution"]["mounts"], **mounts}},
        }
    for key in ("target", "evaluation"):
        if ours.get(key) in (None, MISSING):
            raise ConfigError(
                key, "missing", f"Choose one with {key}=<name> or define '{key}:' in your config"
            )
    spec = RunSpec(
        executor=executor,
        execution=build(execution_class, ours.get("execution") or {}, "execution"),
        target=build(Target, ours["target"], "target"),
        evaluation=build(Evaluation, ours["evaluation"], "evaluation"),
        deployment=build(Deployment, ours.get("deployment") or {}, "deployment"),
        config=data,
        mounts=build(Mounts, mounts, "execution.mounts"),
        pending=build(Pending, pending, "export"),
        auxiliary={
            name: build(AuxiliaryDeployment, d, f"auxiliary_deployments.{name}")
            for name, d in (ours.get("auxiliary_deployments") or {}).items()
        },
    )
    _check_semantics(spec)
    return spec


def _check_text(node: Any, key: str) -> None:
    """No character that could end a script line or an argument early, in any key or value."""
    if isinstance(node, dict):
        for k, v in node.items():
            name = str(k)
            bad = control_character(name)
            if bad:
                raise ConfigError(
                    f"{key}.{name!r}" if key else repr(name), f"a key contains {bad}", "Remove it"
                )
            _check_text(v, f"{key}.{name}" if key else name)
    elif isinstance(node, list | tuple):
        for i, v in enumerate(node):
            _check_text(v, f"{key}[{i}]")
    elif isinstance(node, str):
        bad = control_character(node, allow_newlines=bool(FREE_TEXT.search(key)))
        if bad:
            raise ConfigError(
                key,
                f"contains {bad}, which would end a line of the run scripts early",
                "Write the value on one line without control characters",
            )
        secret = embedded_secret(node, key)
        if secret:
            raise ConfigError(
                key,
                f"holds {secret}, which would be written into the run files {NOT_SHOWN}",
                "Export it on the host and pass it by name (env_vars NAME: host:VAR, api_key: VAR)",
            )
    elif isinstance(node, float) and not math.isfinite(node):
        raise ConfigError(key, f"{node} is not a finite number", "Give a finite number")


# Where a literal token lands in a script or a command line as it is: docker's extra arguments, the
# pre/post commands and a server's command, extra arguments and flags.
COMMAND_TEXT = re.compile(
    r"(^|\.)(extra_docker_args|pre_cmd|post_cmd|command|shell_command|extra_args|sbatch_extra_flags)(\[|\.|$)"
)
URL_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s@:]*:[^/\s@]+@")
ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=['\"]?([^\s'\"]+)")


def embedded_secret(text: str, key: str) -> str | None:
    """What in a config string looks like a literal credential, or None: a password in a URL (anywhere),
    and in command text (COMMAND_TEXT) a token that looks like one or a value assigned to a secret-named
    variable (`-e HF_TOKEN=...`, `export OPENAI_API_KEY=...`; a `$VAR` reference is fine)."""
    if URL_PASSWORD.search(text):
        return "a password in a URL (user:password@)"
    if not COMMAND_TEXT.search(key):
        return None
    for name, value in ASSIGNMENT.findall(text):
        if legacy.SECRET_WORDS & set(name.upper().split("_")) and not value.startswith("$"):
            return f"a literal value for {name}"
    if any(looks_secret(word) for word in re.split(r"[\s='\"]+", text)):
        return "a token that looks like a secret"
    return None


def build(cls: Any, value: Any, key: str) -> Any:
    """Convert plain data to `cls` (dataclasses, Literal, unions, tuples, dicts, scalars) strictly."""
    if value == MISSING:
        raise ConfigError(
            key, "missing required value", f"Set it in your config or add {key}=... to the command"
        )
    origin = typing.get_origin(cls)
    if dataclasses.is_dataclass(cls):
        return _build_dataclass(cls, value, key)
    if origin in (Union, types.UnionType):
        options = typing.get_args(cls)
        if value is None and type(None) in options:
            return None
        inner = [o for o in options if o is not type(None)]
        return build(inner[0], value, key) if len(inner) == 1 else value
    if origin is Literal:
        allowed = typing.get_args(cls)
        if value not in allowed:
            raise ConfigError(
                key, f"{show(value)} is not allowed", f"Allowed values: {', '.join(map(str, allowed))}"
            )
        return value
    if origin is tuple:
        (item,) = typing.get_args(cls)[:1]
        if isinstance(value, str):  # a single value where a list is expected: be forgiving
            value = [value]
        if not isinstance(value, list | tuple):
            raise ConfigError(key, f"expected a list, got {_describe(value)}")
        return tuple(build(item, v, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(key, f"expected a mapping, got {_describe(value)}")
        value_type = typing.get_args(cls)[1] if typing.get_args(cls) else Any
        return {str(k): build(value_type, v, f"{key}.{k}") for k, v in value.items()}
    return _scalar(cls, value, key)


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    # Evaluating string annotations costs 0.3 ms a class: once per class, not once per task entry.
    return typing.get_type_hints(cls)


def _build_dataclass(cls: type, value: Any, key: str) -> Any:
    if not isinstance(value, dict):
        raise ConfigError(key, f"expected a mapping, got {_describe(value)}")
    hints = _type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    for name in value:
        if name not in known:
            raise ConfigError(f"{key}.{name}", "unknown key", f"Allowed keys under {key}: {', '.join(known)}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in value:
            kwargs[f.name] = build(hints[f.name], value[f.name], f"{key}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(
                f"{key}.{f.name}",
                "missing required value",
                f"Add {key}.{f.name}=... or set it in your config",
            )
    return cls(**kwargs)


def _scalar(cls: type, value: Any, key: str) -> Any:
    if cls is Any:
        return value
    if cls is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if cls is float and isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(key, f"{value} is not a finite number", "Give a finite number")
    if cls is str and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, cls) and not (cls is int and isinstance(value, bool)):
        return value
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    raise ConfigError(key, f"expected {names.get(cls, cls.__name__)}, got {_describe(value)}")


def _describe(value: Any) -> str:
    return f"{show(value)} ({type(value).__name__})"


def _check_env_names(scope: str, env: dict[str, str]) -> None:
    for inner, host in env.items():
        if looks_secret(host):  # a pasted token can look like a variable name (hf_...)
            raise ConfigError(
                f"{scope}.{inner}",
                f"looks like a secret value, not the name of a host variable {NOT_SHOWN}",
                f"Export it on the host and map {inner}: <VARIABLE_NAME>",
            )
        for what, name in (("container variable", inner), ("host variable", host)):
            if not ENV_NAME.match(name):
                raise ConfigError(
                    f"{scope}.{inner}",
                    f"{what} name {show(name)} is not a valid environment variable name",
                    "Use letters, digits and _ (map CONTAINER_VAR: HOST_VAR_NAME)",
                )


def _check_literal_env(scope: str, env: dict[str, str]) -> None:
    for inner in env:
        if not ENV_NAME.match(inner):
            raise ConfigError(
                f"{scope}.{inner}", "is not a valid environment variable name", "Use letters, digits and _"
            )


def _check_image(key: str, image: str | None) -> None:
    if image is not None and not is_image_reference(image):
        raise ConfigError(
            key,
            f"{show(image)} is not an image reference",
            "Write [registry/]name[:tag][@digest], lowercase name, e.g. vllm/vllm-openai:v0.8.5",
        )


def _check_execution(execution: Any) -> None:
    """The executor's settings check themselves: its config class's `validate()` (optional for a plugin's)
    raises ConfigError naming the execution key."""
    validate = getattr(execution, "validate", None)
    if callable(validate):
        validate()


def check_machine(spec: RunSpec) -> None:
    """Checks that depend on who launches (kept out of to_run_spec, which is pure): call at preflight.

    The invocation folders are private (0700) to the launching user, so a container running as
    anyone else cannot write its results; only the launching user (name, uid or uid:gid) is accepted."""
    execution = spec.execution
    user = getattr(execution, "user", None)
    if user is not None and not _is_invoking_user(user, getattr(execution, "username", None)):
        raise ConfigError(
            "execution.user",
            f"{show(user)} is not you: the results folders are private (0700) to the user who launches, so "
            "another container user cannot write its results",
            "Remove execution.user (the container runs as you)",
        )


def _is_invoking_user(user: str, ssh_user: str | None) -> bool:
    uid = user.split(":", 1)[0]
    return uid in {str(os.getuid()), getpass.getuser()} | ({ssh_user} if ssh_user else set())


def _check_semantics(spec: RunSpec) -> None:
    endpoint = spec.target.api_endpoint
    if endpoint.api_key is not None and (
        not ENV_NAME.match(endpoint.api_key) or looks_secret(endpoint.api_key)
    ):
        raise ConfigError(
            "target.api_endpoint.api_key",
            f"must be the NAME of a host environment variable, not the key itself {NOT_SHOWN}",
            "Export the key, e.g. `export MY_API_KEY=...`, and set target.api_endpoint.api_key=MY_API_KEY",
        )
    if not endpoint.url.startswith(("http://", "https://")):
        raise ConfigError("target.api_endpoint.url", f"{show(endpoint.url)} is not an http(s) URL")
    _check_execution(spec.execution)
    if not spec.evaluation.tasks:
        raise ConfigError("evaluation.tasks", "is empty", "List at least one task (see `launcher ls tasks`)")
    names = [t.name for t in spec.evaluation.tasks]
    ids = _check_task_ids(names)
    if spec.evaluation.only is not None:
        known = {*names, *ids}
        missing = [n for n in spec.evaluation.only if n not in known]
        if missing:
            raise ConfigError(
                "evaluation.only",
                f"{show(missing[0])} is not a task of this evaluation",
                f"Tasks: {', '.join(_choices(names, ids))}",
            )
    if not spec.selected_tasks():
        raise ConfigError("evaluation.only", "selects no task", f"Tasks: {', '.join(_choices(names, ids))}")
    _check_deployment(spec.deployment, "deployment")
    for name, aux in spec.auxiliary.items():
        _check_deployment(aux, f"auxiliary_deployments.{name}")
    _check_env_names("evaluation.env_vars", spec.evaluation.env_vars)
    _check_literal_env("evaluation.env_vars", spec.evaluation.literal_env)
    for i, task in enumerate(spec.evaluation.tasks):
        _check_env_names(f"evaluation.tasks[{i}].env_vars", task.env_vars)
        _check_literal_env(f"evaluation.tasks[{i}].env_vars", task.literal_env)
        _check_image(f"evaluation.tasks[{i}].container", task.container)
        p = spec.params(task)
        for name, low in (
            ("parallelism", 1),
            ("max_retries", 0),
            ("limit_samples", 1),
            ("repeats", 1),
            ("shards", 1),
        ):
            value = getattr(p, name)
            if value is not None and value < low:
                raise ConfigError(
                    f"evaluation.tasks[{i}].params.{name}", f"must be at least {low}, got {value}"
                )
        if task.shards is not None and not 1 <= task.shards <= MAX_SHARDS:
            raise ConfigError(
                f"evaluation.tasks[{i}].shards",
                f"must be from 1 to {MAX_SHARDS}, got {task.shards}",
                "Give the number of containers to split the task's samples over",
            )
        if (p.shards or 1) > MAX_SHARDS:
            raise ConfigError(
                f"evaluation.tasks[{i}].params.shards", f"must be at most {MAX_SHARDS}, got {p.shards}"
            )
        if p.request_timeout is not None and p.request_timeout <= 0:
            raise ConfigError(
                f"evaluation.tasks[{i}].params.request_timeout",
                f"must be more than 0 seconds, got {p.request_timeout}",
            )
        if p.max_error_fraction is not None and not 0 <= p.max_error_fraction <= 1:
            raise ConfigError(
                f"evaluation.tasks[{i}].params.max_error_fraction",
                f"must be between 0 and 1, got {p.max_error_fraction}",
            )


def _check_task_ids(names: list[str]) -> list[str]:
    """A task listed more than once is told apart by its position (schema.task_ids, NEL's naming), so its
    id must not be another task's name: the two would share a folder and a results name."""
    ids, taken = task_ids(names), set(names)
    for i, (name, task_id) in enumerate(zip(names, ids, strict=True)):
        if task_id != name and task_id in taken:
            raise ConfigError(
                f"evaluation.tasks[{names.index(task_id)}].name",
                f"{show(task_id)} is also the id of the repeated task {show(name)} at position {i} (a task "
                "listed more than once is named <name>.<position>, as in NEL)",
                "Rename that task (a custom task's name is free) or move the repeated one",
            )
    return ids


def _choices(names: list[str], ids: list[str]) -> list[str]:
    """What evaluation.only accepts: each name once, and the id of each repeat."""
    return list(dict.fromkeys(names)) + [i for i, n in zip(ids, names, strict=True) if i != n]


def _check_deployment(deployment: Deployment, key: str) -> None:
    _check_env_names(f"{key}.env_vars", deployment.env_vars)
    _check_literal_env(f"{key}.env_vars", deployment.literal_env)
    _check_image(f"{key}.image", deployment.image)
    if deployment.type not in ("none",) and not deployment.image:
        raise ConfigError(f"{key}.image", "missing: a server deployment needs an image", f"Set {key}.image")
    if deployment.type in ("vllm", "sglang", "trtllm") and not (
        deployment.checkpoint_path or deployment.hf_model_handle
    ):
        raise ConfigError(
            f"{key}.checkpoint_path",
            f"missing: a {deployment.type} deployment serves a checkpoint or a Hugging Face model",
            f"Set {key}.checkpoint_path or {key}.hf_model_handle",
        )
    if not 0 < deployment.port < 65536:
        raise ConfigError(f"{key}.port", f"{deployment.port} is not a TCP port")
    for name in ("tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size", "startup_timeout"):
        if getattr(deployment, name) < 1:
            raise ConfigError(f"{key}.{name}", f"must be at least 1, got {getattr(deployment, name)}")
