"""Hydra's and OmegaConf's exceptions as the launcher's one-line errors (pinned by tests/unit/test_cli.py)."""

from __future__ import annotations

import re

from omegaconf.errors import OmegaConfBaseException

from launcher.config.values import NOT_SHOWN, looks_secret
from launcher.errors import ConfigError, LauncherError
from launcher.executors import registry


def schema_types(parts: list[str], executor: str | None = None) -> list:
    """The schema types a dotted key can have (several executors may share a field); [] if unknown."""
    import dataclasses
    import typing

    from launcher.config.schema import Deployment, Evaluation, Target

    roots = {
        "target": [Target],
        "evaluation": [Evaluation],
        "deployment": [Deployment],
        "execution": [
            cls.config_class for name, cls in registry.executors().items() if executor in (None, name)
        ],
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


def translate(err: Exception, executor: str | None = None) -> LauncherError:
    """One line for a Hydra/OmegaConf/YAML error; `executor`: the chosen one, whose keys are allowed."""
    from hydra.errors import OverrideParseException

    text = str(err)
    mark = getattr(err, "problem_mark", None)
    if mark is not None:  # a YAML syntax error in a config file
        return LauncherError(
            f"invalid YAML in {mark.name} line {mark.line + 1}, column {mark.column + 1}: {err.problem}"
        )
    if isinstance(err, OverrideParseException):
        override = err.override.lstrip("+")
        key, _, value = override.partition("=")
        if any(looks_secret(w) for w in re.split(r"[\s,=\[\]'\"]+", value)):  # echoed nowhere
            return ConfigError(key, f"cannot parse the override {NOT_SHOWN}", "Check brackets and quotes")
        return ConfigError(
            key,
            f"cannot parse the override {override!r} ({first_line(err)})",
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
        key = full_key(cause)
        detail = first_line(cause)
        if "not in struct" in detail or "Key '" in detail and "not" in detail:
            import dataclasses

            parent = key.rpartition(".")[0]
            allowed = sorted(
                {
                    f.name
                    for cls in schema_types(parent.split("."), executor)
                    if dataclasses.is_dataclass(cls)
                    for f in dataclasses.fields(cls)
                }
            )
            listing = (
                f"Allowed keys under {parent}: {', '.join(allowed)}" if allowed else "Check the spelling"
            )
            return ConfigError(key, "unknown key", listing)
        return resolution_error(cause)
    first = first_line(err)
    hint = (
        "Run with HYDRA_FULL_ERROR=1 for the full trace" if type(err).__module__.startswith("hydra") else ""
    )
    return LauncherError(f"{first}{'. ' + hint if hint else ''}")


def resolution_error(err: OmegaConfBaseException) -> ConfigError:
    """An error resolving a value as one line naming its key; `${oc.env:VAR}` with VAR unset (NEL's Slurm
    configs write `username: ${oc.env:USER}`; USER is unset in many containers and cron jobs) names the
    variable and both fixes."""
    key, detail = full_key(err), first_line(err)
    unset = re.search(r"Environment variable '([^']+)' not found", detail)
    if not unset:
        return ConfigError(key, detail)
    var = unset.group(1)
    interpolation = f"${{oc.env:{var}}}"
    if not key:  # Hydra does not say which override held it
        return ConfigError(
            interpolation,
            f"reads the environment variable {var}, which is not set",
            f"Set {var} (e.g. export {var}=$(id -un)) or write the value in its place",
        )
    return ConfigError(
        key,
        f"{interpolation} reads the environment variable {var}, which is not set",
        f"Set {var} (e.g. export {var}=$(id -un)) or write the value: -o {key}=<value>",
    )


def full_key(err: OmegaConfBaseException) -> str:
    return str(getattr(err, "full_key", "") or "")


def first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0].rstrip(".") if text else type(err).__name__


def from_hydra(err: Exception) -> bool:
    """An error of Hydra, OmegaConf or YAML (translated to one line), not one of ours or a bug."""
    return type(err).__module__.startswith(("hydra", "omegaconf", "yaml"))
