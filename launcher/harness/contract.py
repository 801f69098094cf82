"""What the host and the harness agree on, standard library only (the host imports it without aiohttp):
the run config (`/results/run_config.json`), the phases a task runs in, and the sandbox container argv.

The host writes a RunConfig with `to_json()`; the harness reads it with `from_json()`, which also accepts
a file of only task, model_id, url, endpoint_type, api_key_env and params (every other key has a default).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

RUN_CONFIG = "run_config.json"  # in the results folder (/results in the task container)
SAMPLES = "samples.jsonl"  # the checkpoint: one line per finished sample, written by the harness only
VERDICTS = "verdicts.jsonl"  # the sandbox's verdicts, its stdout redirected there by run.sh
SANDBOX_UID = 65534  # generated programs run as this uid (nobody) inside the sandbox container
# A shard's exit code when some of its samples errored: it ended (the merge may run and judges
# max_error_fraction on the whole task), but a resume runs it again to retry those samples.
EXIT_SHARD_ERRORS = 3

GENERATION_KEYS = ("temperature", "top_p", "max_tokens", "seed", "stop")
RUNNER_DEFAULTS: Mapping[str, Any] = {
    "parallelism": 16,
    "limit_samples": None,
    "request_timeout": 120.0,
    "max_retries": 5,
    "max_error_fraction": 0.05,
    "score_timeout": 10.0,  # seconds one sample's scoring may take (it runs in a worker process)
}


class ConfigError(Exception):
    """One line naming the key, what is allowed and the fix."""


@dataclass(frozen=True)
class RunConfig:
    task: str
    model_id: str
    url: str
    endpoint_type: str = "chat"  # "chat" or "completions"
    api_key_env: str | None = None  # NAME of the container variable holding the key, never the key
    params: Mapping[str, Any] = field(default_factory=dict)  # evaluation/task params (None = inherit)
    target_params: Mapping[str, Any] = field(default_factory=dict)  # the target's generation defaults
    repeats: int | None = None  # samples per item; None = the task's default
    redact_env: tuple[str, ...] = ()  # variables whose values are never stored or printed
    # (index, count): run only this shard's samples (launcher.harness.shards); None: the whole task
    shard: tuple[int, int] | None = None
    # `url` is the launcher's endpoint proxy, which times each request upstream from when it sends it
    # (launcher.harness.client: time queued there is not spent against request_timeout)
    proxied: bool = False

    def to_json(self) -> str:
        data = {f.name: getattr(self, f.name) for f in fields(self)}  # flat values: no asdict deep copies
        data["redact_env"] = list(self.redact_env)
        if self.shard is None:  # absent, so a whole task's file (and its results' config) is as before
            del data["shard"]
        else:
            data["shard"] = {"index": self.shard[0], "count": self.shard[1]}
        if not self.proxied:  # absent: a file without the proxy reads as before
            del data["proxied"]
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as err:
            raise ConfigError(
                f"run config is not valid JSON ({err}); the launcher writes it, re-run it"
            ) from None
        if not isinstance(data, dict):
            raise ConfigError("run config must be a JSON object; the launcher writes it, re-run it")
        for key in ("task", "model_id", "url"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise ConfigError(f"run config key '{key}' must be a non-empty string")
        if data.get("endpoint_type", "chat") not in ("chat", "completions"):
            raise ConfigError("run config key 'endpoint_type' must be 'chat' or 'completions'")
        for key in ("params", "target_params"):
            if not isinstance(data.get(key) or {}, dict):
                raise ConfigError(f"run config key '{key}' must be a mapping")
        repeats = data.get("repeats")
        if repeats is not None and (type(repeats) is not int or repeats < 1):
            raise ConfigError(f"run config key 'repeats' must be an integer >= 1, got {repeats!r}")
        redact = data.get("redact_env") or []
        if not isinstance(redact, list) or not all(isinstance(x, str) for x in redact):
            raise ConfigError("run config key 'redact_env' must be a list of variable names")
        config = cls(
            shard=_shard(data.get("shard")),
            task=data["task"],
            model_id=data["model_id"],
            url=data["url"],
            endpoint_type=data.get("endpoint_type", "chat"),
            api_key_env=data.get("api_key_env") or None,
            params=dict(data.get("params") or {}),
            target_params=dict(data.get("target_params") or {}),
            repeats=repeats,
            redact_env=tuple(redact),
            proxied=data.get("proxied") is True,
        )
        config.effective_params({})  # validates the values now: one line, before any request
        return config

    def effective_params(self, task_defaults: Mapping[str, Any]) -> dict[str, Any]:
        """run config params > task defaults > target params > built-in; None means 'not set here'."""
        merged: dict[str, Any] = {**RUNNER_DEFAULTS, **dict.fromkeys(GENERATION_KEYS)}
        for layer in (self.target_params, task_defaults, self.params):
            merged.update({k: v for k, v in layer.items() if v is not None})
        if self.repeats is not None:
            merged["repeats"] = self.repeats
        check_params(merged)
        return merged

    def secret_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*([self.api_key_env] if self.api_key_env else []), *self.redact_env]))


def _shard(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    index, count = (value.get("index"), value.get("count")) if isinstance(value, dict) else (None, None)
    if type(index) is not int or type(count) is not int or not 0 <= index < count:
        raise ConfigError(
            f"run config key 'shard' must be {{'index': k, 'count': N}} with 0 <= k < N, got {value!r}; "
            "the launcher writes it, re-run it"
        )
    return index, count


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


_CHECKS: Mapping[str, tuple[Any, str]] = {
    "parallelism": (lambda v: type(v) is int and v >= 1, "an integer >= 1"),
    "limit_samples": (lambda v: v is None or (type(v) is int and v >= 1), "an integer >= 1 or null"),
    "request_timeout": (lambda v: _number(v) and v > 0, "a number of seconds > 0"),
    "max_retries": (lambda v: type(v) is int and v >= 0, "an integer >= 0"),
    "max_error_fraction": (lambda v: _number(v) and 0 <= v <= 1, "a number from 0 to 1"),
    "repeats": (lambda v: type(v) is int and v >= 1, "an integer >= 1"),
    "score_timeout": (lambda v: _number(v) and v > 0, "a number of seconds > 0"),
    "temperature": (lambda v: v is None or (_number(v) and v >= 0), "a finite number >= 0 or null"),
    "top_p": (lambda v: v is None or (_number(v) and 0 < v <= 1), "a number in (0, 1] or null"),
    "max_tokens": (lambda v: v is None or (type(v) is int and v >= 1), "an integer >= 1 or null"),
    "seed": (lambda v: v is None or type(v) is int, "an integer or null"),
    "stop": (
        lambda v: (
            v is None or isinstance(v, str) or (isinstance(v, list) and all(isinstance(s, str) for s in v))
        ),
        "a string, a list of strings or null",
    ),
}


def check_params(params: Mapping[str, Any]) -> None:
    for key, (ok, allowed) in _CHECKS.items():
        if key in params and not ok(params[key]):
            raise ConfigError(
                f"params.{key} is {params[key]!r}; allowed: {allowed}; fix it in the evaluation or task "
                "params"
            )


# ---- phases and the sandbox container -------------------------------------------------------------------


@dataclass(frozen=True)
class Phase:
    name: str
    container: str  # "task": the task's container (network, the key); "sandbox": sandbox_argv, nothing else
    argv: tuple[str, ...]  # the command inside that container
    stdout: str | None = None  # file in the results folder that receives the command's stdout


def phases(code: bool) -> tuple[Phase, ...]:
    """The commands one task runs, in order; a task with generated code adds the sandbox and a scoring
    phase. Every phase continues from the checkpoint, so run.sh reruns them all on resume."""
    run = Phase(
        "run", "task", ("python3", "-m", "launcher.harness", "run", "--config", f"/results/{RUN_CONFIG}")
    )
    if not code:
        return (run,)
    return (
        run,
        Phase("execute", "sandbox", ("python3", "-m", "launcher.harness", "execute", "/results"), VERDICTS),
        Phase("score", "task", ("python3", "-m", "launcher.harness", "score", "/results")),
    )


def sandbox_argv(image: str, results_dir: str) -> list[str]:
    """`docker run` of the execute phase: no network, no variables, a read-only root and /results, no
    capabilities but those needed to read /results, drop to SANDBOX_UID and kill its processes (a program
    keeps none of them: changing to a non-root uid clears them), bounded pids and memory. run.sh appends
    its stdout to <results>/verdicts.jsonl (the driver skips programs already judged there)."""
    return [
        "docker", "run", "--rm", "--init",
        "--network", "none",
        "--read-only",
        "--cap-drop", "ALL", "--cap-add", "SETUID", "--cap-add", "SETGID", "--cap-add", "KILL",
        "--cap-add", "DAC_READ_SEARCH",  # reads /results (0700, the user's); dropped once read (sandbox.py)
        "--security-opt", "no-new-privileges",
        "--pids-limit", "128",
        "--memory", "1g",
        "--tmpfs", "/tmp:size=256m",
        "--user", "0",
        "-v", f"{results_dir}:/results:ro",
        image,
        *phases(True)[1].argv,
    ]  # fmt: skip
