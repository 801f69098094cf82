"""The proxy's configuration: frozen dataclasses, and the one mapping from NEL's `adapter_config` spellings.

NEL names (nemo-evaluator 0.2.8, nemo_evaluator/adapters/adapter_config.py `LegacyAdapterConfig`, as read
by NEL 0.2.6 from `target.api_endpoint.adapter_config`): use_caching, caching_dir, use_request_logging,
max_logged_requests, use_reasoning / process_reasoning_traces, start_reasoning_token, end_reasoning_token,
include_if_reasoning_not_finished, use_system_prompt, custom_system_prompt, params_to_add/remove/rename.
Defaults follow NEL where NEL has the feature (caching on, reasoning end token `</think>`, system prompt
strategy `prepend` and unfinished reasoning kept, as in nemo-evaluator 0.2.8's interceptors).
Our own names (no NEL equivalent) are listed in OWN_KEYS.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path


class ProxyConfigError(ValueError):
    """Bad proxy configuration: the message is one line naming the key, the allowed values and the fix."""


@dataclass(frozen=True)
class CacheSettings:
    enabled: bool = True
    cache_dir: str | None = None  # None: <state-dir>/cache (one invocation; resume reuses it)
    cache_sampled: bool = False  # also cache requests whose answer is a random draw (see transforms)


@dataclass(frozen=True)
class LogSettings:
    enabled: bool = False
    max_requests: int | None = None  # NEL max_logged_requests
    max_bytes: int = 64 * 1024 * 1024
    sample_rate: float = 1.0


@dataclass(frozen=True)
class ReasoningSettings:
    enabled: bool = False
    start_token: str | None = "<think>"
    end_token: str = "</think>"
    include_if_not_finished: bool = True


@dataclass(frozen=True)
class SystemPromptSettings:
    enabled: bool = False
    text: str | None = None
    strategy: str = "prepend"  # replace | prepend | append


@dataclass(frozen=True)
class PayloadSettings:
    add: dict = field(default_factory=dict)
    remove: tuple[str, ...] = ()
    rename: dict = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return bool(self.add or self.remove or self.rename)


@dataclass(frozen=True)
class BudgetSettings:
    max_concurrent: int = 64
    requests_per_second: float | None = None
    tokens_per_second: float | None = None


@dataclass(frozen=True)
class RetrySettings:
    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    request_timeout: float = 600.0
    connect_timeout: float = 10.0


@dataclass(frozen=True)
class ProxySettings:
    upstream: str
    api_key_env: str | None = None
    cache: CacheSettings = CacheSettings()
    log: LogSettings = LogSettings()
    reasoning: ReasoningSettings = ReasoningSettings()
    system_prompt: SystemPromptSettings = SystemPromptSettings()
    payload: PayloadSettings = PayloadSettings()
    budget: BudgetSettings = BudgetSettings()
    retry: RetrySettings = RetrySettings()
    stats_interval: float = 10.0
    max_response_bytes: int = 64 * 1024 * 1024  # an upstream body above this is a 502, not a memory blow-up


# NEL keys that only concern NEL's own in-container reports: accepted and ignored (nothing to do here).
NEL_IGNORED = frozenset(
    {
        "generate_html_report",
        "html_report_size",
        "tracking_requests_stats",
        "include_json",
        "mode",
        "endpoint_type",
        "logging_aggregated_stats_interval",
        "output_dir",
        "track_reasoning",
        "log_failed_requests",
        "use_progress_tracking",
        "progress_tracking_url",
        "progress_tracking_interval",
    }
)
NEL_KEYS = frozenset(
    {
        "use_caching",
        "caching_dir",
        "use_request_logging",
        "max_logged_requests",
        "use_reasoning",
        "process_reasoning_traces",
        "start_reasoning_token",
        "end_reasoning_token",
        "include_if_reasoning_not_finished",
        "use_system_prompt",
        "custom_system_prompt",
        "params_to_add",
        "params_to_remove",
        "params_to_rename",
    }
)
OWN_KEYS = frozenset(
    {
        "system_prompt_strategy",
        "log_max_bytes",
        "log_sample_rate",
        "max_concurrent",
        "requests_per_second",
        "tokens_per_second",
        "max_retries",
        "backoff_base",
        "backoff_max",
        "request_timeout",
        "stats_interval",
        "max_response_bytes",
        "cache_sampled",
    }
)
ALLOWED = NEL_KEYS | OWN_KEYS | NEL_IGNORED


def _fail(key: str, value, allowed: str, fix: str) -> None:
    raise ProxyConfigError(f"adapter_config.{key}={value!r} is not valid: {allowed}; {fix}")


def _bool(cfg: dict, key: str, default: bool) -> bool:
    value = cfg.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        _fail(key, value, "allowed: true or false", f"set {key}: true or {key}: false")
    return value


def _number(cfg: dict, key: str, default, *, minimum: float, integer: bool = False, optional: bool = False):
    value = cfg.get(key, default)
    if value is None and optional:
        return None
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or value < minimum or value != value:
        kind = "an integer" if integer else "a number"
        _fail(key, value, f"allowed: {kind} >= {minimum}", f"set {key} to {kind} >= {minimum}")
    return value


def _str(cfg: dict, key: str, default: str | None) -> str | None:
    value = cfg.get(key, default)
    if value is not None and not isinstance(value, str):
        _fail(key, value, "allowed: a string", f"quote the value of {key}")
    return value


# NEL's interceptor-list form (`adapter_config.interceptors: [{name, enabled, config}]`, nemo-evaluator
# 0.2.8 interceptors/*.py): name -> {interceptor config key: flat key}. With a list, a feature whose
# interceptor is absent is off (as in NEL).
INTERCEPTORS = {
    "caching": {"cache_dir": "caching_dir", "reuse_cached_responses": "use_caching"},
    "request_logging": {"max_requests": "max_logged_requests"},
    "reasoning": {
        "start_reasoning_token": "start_reasoning_token",
        "end_reasoning_token": "end_reasoning_token",
        "include_if_not_finished": "include_if_reasoning_not_finished",
    },
    "system_message": {"system_message": "custom_system_prompt", "strategy": "system_prompt_strategy"},
    "payload_modifier": {k: k for k in ("params_to_add", "params_to_remove", "params_to_rename")},
}
SWITCHES = {
    "caching": "use_caching",
    "request_logging": "use_request_logging",
    "reasoning": "use_reasoning",
    "system_message": "use_system_prompt",
}
# Interceptors for NEL's own in-container reports and transport: nothing to do at the proxy.
INTERCEPTORS_IGNORED = frozenset(
    {"endpoint", "response_logging", "progress_tracking", "response_stats", "raise_client_errors"}
)


def flatten_interceptors(cfg: dict) -> dict:
    """The flat (legacy) spelling of an adapter_config that lists interceptors; flat keys given next to
    the list win."""
    items = cfg.get("interceptors")
    flat = {k: v for k, v in cfg.items() if k not in ("interceptors", "post_eval_hooks")}
    if items is None:
        return flat
    if not isinstance(items, list):
        _fail("interceptors", items, "allowed: a list of {name, enabled, config}", "write it as a list")
    out: dict = {"use_caching": False}
    for item in items:
        name = item.get("name") if isinstance(item, dict) else None
        if name in INTERCEPTORS_IGNORED or (isinstance(item, dict) and item.get("enabled") is False):
            continue
        if name not in INTERCEPTORS:
            known = ", ".join(sorted(INTERCEPTORS.keys() | INTERCEPTORS_IGNORED))
            _fail("interceptors", name, f"allowed names: {known}", "remove that interceptor")
        config = item.get("config") or {}
        extra = sorted(
            set(config) - set(INTERCEPTORS[name]) - {"output_dir", "cache_dir", "save_individuals"}
        )
        if extra and name != "reasoning":
            allowed = ", ".join(sorted(INTERCEPTORS[name]))
            _fail(f"interceptors.{name}.{extra[0]}", config[extra[0]], f"allowed: {allowed}", "remove it")
        if name in SWITCHES:
            out[SWITCHES[name]] = True
        for key, flat_key in INTERCEPTORS[name].items():
            if key in config:
                out[flat_key] = config[key]
    return {**out, **flat}


def from_adapter_config(cfg: dict, *, upstream: str, api_key_env: str | None = None) -> ProxySettings:
    """ProxySettings from a `target.api_endpoint.adapter_config` mapping (NEL spellings, flat or as an
    interceptor list, + OWN_KEYS)."""
    cfg = flatten_interceptors(dict(cfg or {}))
    unknown = sorted(set(cfg) - ALLOWED)
    if unknown:
        _fail(
            unknown[0],
            cfg[unknown[0]],
            f"allowed keys: {', '.join(sorted(NEL_KEYS | OWN_KEYS))}",
            "remove it",
        )
    reasoning_on = _bool(cfg, "use_reasoning", False) or _bool(cfg, "process_reasoning_traces", False)
    strategy = _str(cfg, "system_prompt_strategy", "prepend")
    if strategy not in ("replace", "prepend", "append"):
        _fail("system_prompt_strategy", strategy, "allowed: replace, prepend, append", "pick one of them")
    prompt_on = _bool(cfg, "use_system_prompt", False)
    prompt = _str(cfg, "custom_system_prompt", None)
    if prompt_on and prompt is None:
        _fail("custom_system_prompt", None, "a string is required when use_system_prompt is true", "set it")
    add = cfg.get("params_to_add") or {}
    remove = cfg.get("params_to_remove") or []
    rename = cfg.get("params_to_rename") or {}
    if not isinstance(add, dict):
        _fail("params_to_add", add, "allowed: a mapping param -> value", "write it as a mapping")
    if not isinstance(remove, (list, tuple)) or not all(isinstance(x, str) for x in remove):
        _fail("params_to_remove", remove, "allowed: a list of parameter names", "write it as a list")
    if not isinstance(rename, dict) or not all(isinstance(v, str) for v in rename.values()):
        _fail("params_to_rename", rename, "allowed: a mapping old name -> new name", "write it as a mapping")
    return ProxySettings(
        upstream=upstream,
        api_key_env=api_key_env,
        cache=CacheSettings(
            enabled=_bool(cfg, "use_caching", True),
            cache_dir=_str(cfg, "caching_dir", None),
            cache_sampled=_bool(cfg, "cache_sampled", False),
        ),
        log=LogSettings(
            enabled=_bool(cfg, "use_request_logging", False),
            max_requests=_number(cfg, "max_logged_requests", None, minimum=0, integer=True, optional=True),
            max_bytes=_number(cfg, "log_max_bytes", LogSettings.max_bytes, minimum=0, integer=True),
            sample_rate=_number(cfg, "log_sample_rate", 1.0, minimum=0.0),
        ),
        reasoning=ReasoningSettings(
            enabled=reasoning_on,
            start_token=_str(cfg, "start_reasoning_token", "<think>"),  # null: all before the end token
            end_token=_str(cfg, "end_reasoning_token", "</think>") or "</think>",
            include_if_not_finished=_bool(cfg, "include_if_reasoning_not_finished", True),
        ),
        system_prompt=SystemPromptSettings(enabled=prompt_on, text=prompt, strategy=strategy),
        payload=PayloadSettings(add=dict(add), remove=tuple(remove), rename=dict(rename)),
        budget=BudgetSettings(
            max_concurrent=_number(cfg, "max_concurrent", 64, minimum=1, integer=True),
            requests_per_second=_number(cfg, "requests_per_second", None, minimum=0.001, optional=True),
            tokens_per_second=_number(cfg, "tokens_per_second", None, minimum=1, optional=True),
        ),
        retry=RetrySettings(
            max_retries=_number(cfg, "max_retries", 3, minimum=0, integer=True),
            backoff_base=_number(cfg, "backoff_base", 0.5, minimum=0.0),
            backoff_max=_number(cfg, "backoff_max", 30.0, minimum=0.0),
            request_timeout=_number(cfg, "request_timeout", 600.0, minimum=0.001),
        ),
        stats_interval=_number(cfg, "stats_interval", 10.0, minimum=0.1),
        max_response_bytes=_number(
            cfg, "max_response_bytes", ProxySettings.max_response_bytes, minimum=1, integer=True
        ),
    )


def load(path: str | Path) -> ProxySettings:
    """The proxy's config file: {"upstream": URL, "api_key_env": NAME or null, "adapter_config": {...}}."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise ProxyConfigError(f"cannot read proxy config {path}: {err}; write it as a JSON object") from None
    if not isinstance(data, dict) or not isinstance(data.get("upstream"), str):
        raise ProxyConfigError(f"proxy config {path}: 'upstream' (the endpoint URL) is required; add it")
    extra = sorted(set(data) - {"upstream", "api_key_env", "adapter_config"})
    if extra:
        raise ProxyConfigError(
            f"proxy config {path}: unknown key {extra[0]!r}; allowed: upstream, api_key_env, adapter_config"
        )
    return from_adapter_config(
        data.get("adapter_config") or {}, upstream=data["upstream"], api_key_env=data.get("api_key_env")
    )


def to_json(settings: ProxySettings) -> dict:
    return dataclasses.asdict(settings)
