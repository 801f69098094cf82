"""The release-gate policy: NeMo Evaluator 0.3.0's gate policy YAML read as is, so a team's existing file
works unchanged (nemo_evaluator/config/gate_policy.py, version 0.3.0: the keys, their defaults and ranges
below; unknown keys are refused there too).

    version: 1                      # the only version
    defaults:                       # every benchmark (here: task) not listed, and what a listed one omits
      tier: supporting              # critical | supporting | advisory (advisory never decides)
      max_drop: 0.015               # the largest tolerated damage (absolute, in metric units), >= 0
      max_relative_drop: null       # damage / baseline, >= 0; checked on the point estimate
      relative_guard_below: null    # [0, 1]: apply max_relative_drop only below this baseline score
      metric: null                  # null: the task's headline metric (ours; NEL requires a name)
      direction: higher_is_better   # or lower_is_better
    benchmarks:
      <task name>: {tier: critical, max_drop: 0.02, ...}   # null or absent: inherit from defaults

A listed task whose tier is not advisory is required: missing from either run, the gate says NO-GO.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from launcher.errors import LauncherError

TIERS = ("critical", "supporting", "advisory")
DIRECTIONS = ("higher_is_better", "lower_is_better")
KEYS = ("tier", "max_drop", "max_relative_drop", "relative_guard_below", "metric", "direction")
TOP = ("version", "defaults", "benchmarks")


class PolicyError(LauncherError):
    """A policy file that cannot be used as written."""


@dataclass(frozen=True)
class Rule:
    """One task's resolved policy."""

    tier: str = "supporting"
    max_drop: float = 0.015
    max_relative_drop: float | None = None
    relative_guard_below: float | None = None
    metric: str | None = None
    direction: str = "higher_is_better"


@dataclass(frozen=True)
class Policy:
    defaults: Rule = field(default_factory=Rule)
    benchmarks: dict[str, dict] = field(default_factory=dict)  # task -> the keys it sets
    source: str = ""

    def rule(self, task: str) -> Rule:
        return replace(self.defaults, **self.benchmarks.get(task, {}))

    def required(self) -> list[str]:
        return [t for t in self.benchmarks if self.rule(t).tier != "advisory"]


def load(path: str | Path) -> Policy:
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise PolicyError(
            f"--policy {path}: cannot read it ({err.strerror}); give a policy YAML file"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise PolicyError(f"--policy {path}: not YAML: {' '.join(str(err).split())}") from None
    return parse(data, str(path))


def parse(data, source: str = "policy") -> Policy:
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: a gate policy is a mapping with keys {', '.join(TOP)}")
    _known(source, "", data, TOP)
    version = data.get("version", 1)
    if isinstance(version, bool) or version not in (1, "1"):
        raise PolicyError(
            f"{source}: version {version!r} is not supported; this launcher reads gate policy version 1"
        )
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise PolicyError(f"{source}: defaults must be a mapping of {', '.join(KEYS)}")
    for key in ("tier", "max_drop", "direction"):
        if key in defaults and defaults[key] is None:
            raise PolicyError(
                f"{source}: defaults.{key} cannot be null; remove it to use {getattr(Rule(), key)!r}"
            )
    rule = Rule(**_fields(source, "defaults", defaults))
    benchmarks = data.get("benchmarks", {})
    if not isinstance(benchmarks, dict):
        raise PolicyError(f"{source}: benchmarks must map task names to their settings ({', '.join(KEYS)})")
    tasks = {}
    for name, entry in benchmarks.items():
        if entry is None:
            entry = {}
        if not isinstance(entry, dict):
            raise PolicyError(f"{source}: benchmarks.{name} must be a mapping of {', '.join(KEYS)}")
        tasks[str(name)] = {
            k: v for k, v in _fields(source, f"benchmarks.{name}", entry).items() if v is not None
        }
    return Policy(rule, tasks, source)


def _known(source: str, where: str, data: dict, allowed: tuple[str, ...]) -> None:
    for key in data:
        if key not in allowed:
            place = f"{where}.{key}" if where else str(key)
            raise PolicyError(f"{source}: unknown key {place!r}; allowed: {', '.join(allowed)}")


def _fields(source: str, where: str, entry: dict) -> dict:
    _known(source, where, entry, KEYS)
    out = dict(entry)
    for key in ("max_drop", "max_relative_drop", "relative_guard_below"):
        value = entry.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PolicyError(f"{source}: {where}.{key} must be a number, got {value!r}")
        if value < 0 or (key == "relative_guard_below" and value > 1):
            allowed = "between 0 and 1" if key == "relative_guard_below" else ">= 0"
            raise PolicyError(f"{source}: {where}.{key} must be {allowed}, got {value!r}")
        out[key] = float(value)
    for key, allowed in (("tier", TIERS), ("direction", DIRECTIONS)):
        if entry.get(key) is not None and entry[key] not in allowed:
            raise PolicyError(
                f"{source}: {where}.{key} {entry[key]!r} is not allowed; allowed: {', '.join(allowed)}"
            )
    if entry.get("metric") is not None and not isinstance(entry["metric"], str):
        raise PolicyError(f"{source}: {where}.metric must be a metric name, got {entry['metric']!r}")
    return out
