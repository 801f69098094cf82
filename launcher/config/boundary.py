"""The one strict boundary: composed plain data -> frozen typed objects, or one clear ConfigError.

Unknown keys, wrong types and missing values are rejected with the full key, what is allowed and how to
fix it. Spellings of NeMo Evaluator Launcher 0.2.x are mapped here and nowhere else.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any, Literal, Union

from launcher.config.schema import (
    Deployment,
    Evaluation,
    Params,
    RunSpec,
    Target,
)
from launcher.errors import ConfigError

MISSING = "???"
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TOP_LEVEL = ("execution", "target", "evaluation", "deployment")

# NeMo Evaluator Launcher 0.2.x: nemo_evaluator_config.config.params.<old> -> params.<new>
LEGACY_PARAMS = {
    "parallelism": "parallelism",
    "limit_samples": "limit_samples",
    "request_timeout": "request_timeout",
    "max_retries": "max_retries",
    "temperature": "temperature",
    "top_p": "top_p",
    "max_new_tokens": "max_tokens",
}


def to_run_spec(data: dict, executor: str, execution_class: type) -> RunSpec:
    """Validate the whole composed tree (plain data, secrets absent) and freeze it."""
    if not isinstance(data, dict):
        raise ConfigError("", "the configuration must be a mapping")
    unknown = sorted(set(data) - set(TOP_LEVEL) - {"hydra"})
    if unknown:
        raise ConfigError(unknown[0], "unknown top-level key", f"Allowed: {', '.join(TOP_LEVEL)}")
    data = _map_legacy(data)
    for key in ("target", "evaluation"):
        if data.get(key) in (None, MISSING):
            raise ConfigError(
                key, "missing", f"Choose one with {key}=<name> or define '{key}:' in your config"
            )
    spec = RunSpec(
        executor=executor,
        execution=build(execution_class, data.get("execution") or {}, "execution"),
        target=build(Target, data["target"], "target"),
        evaluation=build(Evaluation, data["evaluation"], "evaluation"),
        deployment=build(Deployment, data.get("deployment") or {}, "deployment"),
        config=data,
    )
    _check_semantics(spec)
    return spec


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
                key, f"{value!r} is not allowed", f"Allowed values: {', '.join(map(str, allowed))}"
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
        return {str(k): build(str, v, f"{key}.{k}") for k, v in value.items()}
    return _scalar(cls, value, key)


def _build_dataclass(cls: type, value: Any, key: str) -> Any:
    if not isinstance(value, dict):
        raise ConfigError(key, f"expected a mapping, got {_describe(value)}")
    hints = typing.get_type_hints(cls)
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
    if cls is str and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, cls) and not (cls is int and isinstance(value, bool)):
        return value
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    raise ConfigError(key, f"expected {names.get(cls, cls.__name__)}, got {_describe(value)}")


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{text[:60]}{'...' if len(text) > 60 else ''} ({type(value).__name__})"


def _map_legacy(data: dict) -> dict:
    """Accept NeMo Evaluator Launcher 0.2.x spellings by rewriting them to ours."""
    data = dict(data)
    target = data.get("target")
    if isinstance(target, dict) and isinstance(target.get("api_endpoint"), dict):
        endpoint = dict(target["api_endpoint"])
        if "api_key_name" in endpoint:
            old = endpoint.pop("api_key_name")
            if endpoint.get("api_key") not in (None, old):
                raise ConfigError(
                    "target.api_endpoint.api_key_name",
                    "conflicts with target.api_endpoint.api_key",
                    "Keep only api_key (the name of the host variable holding the key)",
                )
            endpoint["api_key"] = old
        data["target"] = {**target, "api_endpoint": endpoint}
    evaluation = data.get("evaluation")
    if isinstance(data.get("deployment"), dict):
        data["deployment"] = _map_legacy_block(data["deployment"], "deployment")
    if isinstance(evaluation, dict):
        evaluation = _map_legacy_block(evaluation, "evaluation")
        tasks = evaluation.get("tasks")
        if isinstance(tasks, list):
            evaluation["tasks"] = [
                _map_legacy_block({"name": t} if isinstance(t, str) else t, f"evaluation.tasks[{i}]")
                for i, t in enumerate(tasks)
            ]
        data["evaluation"] = evaluation
    return data


def _map_legacy_block(block: Any, key: str) -> Any:
    if not isinstance(block, dict):
        return block
    block = dict(block)
    if isinstance(block.get("env_vars"), dict):
        block["env_vars"] = {
            k: _host_var_name(v, f"{key}.env_vars.{k}") for k, v in block["env_vars"].items()
        }
    legacy = block.pop("nemo_evaluator_config", None)
    if legacy is None:
        return block
    old = (legacy.get("config") or {}).get("params") if isinstance(legacy, dict) else None
    extra = set(legacy) - {"config"} if isinstance(legacy, dict) else {"?"}
    if not isinstance(old, dict) or extra or set(legacy["config"]) - {"params"}:
        raise ConfigError(
            f"{key}.nemo_evaluator_config",
            "only config.params is understood",
            f"Write the parameters as {key}.params.<name> ({', '.join(Params.__dataclass_fields__)})",
        )
    params = dict(block.get("params") or {})
    for name, v in old.items():
        if name not in LEGACY_PARAMS:
            raise ConfigError(
                f"{key}.nemo_evaluator_config.config.params.{name}",
                "not supported",
                f"Supported: {', '.join(LEGACY_PARAMS)}; new spelling is {key}.params.<name>",
            )
        params.setdefault(LEGACY_PARAMS[name], v)
    block["params"] = params
    return block


def _host_var_name(value: Any, key: str) -> Any:
    if isinstance(value, str) and value.startswith("host:"):
        return value[len("host:") :]
    if isinstance(value, str) and value.startswith("lit:"):
        raise ConfigError(
            key,
            "literal values ('lit:...') would be written into the run scripts",
            "Put the value in a host environment variable and give its name instead",
        )
    return value


def _check_env_names(scope: str, env: dict[str, str]) -> None:
    for inner, host in env.items():
        for what, name in (("container variable", inner), ("host variable", host)):
            if not ENV_NAME.match(name):
                raise ConfigError(
                    f"{scope}.{inner}",
                    f"{what} name {name!r} is not a valid environment variable name",
                    "Use letters, digits and _ (map CONTAINER_VAR: HOST_VAR_NAME)",
                )


def _check_semantics(spec: RunSpec) -> None:
    endpoint = spec.target.api_endpoint
    if endpoint.api_key is not None and not ENV_NAME.match(endpoint.api_key):
        raise ConfigError(
            "target.api_endpoint.api_key",
            "must be the NAME of a host environment variable, not the key itself (value not shown)",
            "Export the key, e.g. `export MY_API_KEY=...`, and set target.api_endpoint.api_key=MY_API_KEY",
        )
    if not endpoint.url.startswith(("http://", "https://")):
        raise ConfigError("target.api_endpoint.url", f"{endpoint.url!r} is not an http(s) URL")
    if not spec.evaluation.tasks:
        raise ConfigError("evaluation.tasks", "is empty", "List at least one task (see `launcher ls tasks`)")
    names = [t.name for t in spec.evaluation.tasks]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(
            "evaluation.tasks", f"task {duplicates[0]!r} is listed twice", "Give each task once"
        )
    if spec.evaluation.only is not None:
        missing = [n for n in spec.evaluation.only if n not in names]
        if missing:
            raise ConfigError(
                "evaluation.only",
                f"{missing[0]!r} is not a task of this evaluation",
                f"Tasks: {', '.join(names)}",
            )
    if not spec.selected_tasks():
        raise ConfigError("evaluation.only", "selects no task", f"Tasks: {', '.join(names)}")
    deployment = spec.deployment
    _check_env_names("deployment.env_vars", deployment.env_vars)
    if deployment.type == "server" and not deployment.image:
        raise ConfigError(
            "deployment.image", "missing: a server deployment needs an image", "Set deployment.image"
        )
    if not 0 < deployment.port < 65536:
        raise ConfigError("deployment.port", f"{deployment.port} is not a TCP port")
    for i, task in enumerate(spec.evaluation.tasks):
        _check_env_names(f"evaluation.tasks[{i}].env_vars", task.env_vars)
        _check_env_names("evaluation.env_vars", spec.evaluation.env_vars)
        p = spec.params(task)
        for name, low in (("parallelism", 1), ("max_retries", 0), ("limit_samples", 1)):
            value = getattr(p, name)
            if value is not None and value < low:
                raise ConfigError(
                    f"evaluation.tasks[{i}].params.{name}", f"must be at least {low}, got {value}"
                )
