"""NeMo Evaluator Launcher (NEL) 0.2.6's task catalogue: names, images, and the run config its images read.

Facts come from NEL 0.2.6 (read in its source, Apache-2.0):
- the table `nel_tasks.json` is generated from its packaged `resources/all_tasks_irs.yaml` by
  scripts/gen-nel-catalog.py (`make catalog`);
- names resolve as its `common/mapping.py:get_task_from_mapping` does: `harness.task` exactly, a bare
  `task` when exactly one harness has it, else an error listing the qualified names;
- a task runs as its `common/helpers.py:get_eval_factory_command` renders it: a `config_ef.yaml`
  (`config: {type, output_dir: /results, params}`, `target.api_endpoint: {url, model_id, type,
  api_key_name}`, `metadata`) read by `nemo-evaluator run_eval` (`eval-factory` in older images) inside
  the harness image, which merges its own defaults and renders the harness command.

Ours differs where it is safer: the key only ever travels by name (no `.secrets.env`), the image's
telemetry is off, and a `harness.task` the catalogue does not list is refused instead of trusted.
Two more differences are opt-in arguments of `render_task` (the parity test renders with them and takes
exactly them out before comparing), both for how our containers run (host network, several at once):
- `adapter_host`: the container gets ADAPTER_HOST, a loopback address of its own (see adapter_host()),
  and ADAPTER_SERVER_THREADS sized by its parallelism (see adapter_threads());
- `progress_url`: config_ef.yaml turns on nemo-evaluator's progress_tracking interceptor (see
  with_progress()), whose count `status` shows.
"""

from __future__ import annotations

import copy
import difflib
import functools
import hashlib
import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from launcher.errors import ConfigError

TABLE = Path(__file__).with_name("nel_tasks.json")
RESULTS_DIR = "/results"  # NEL's CONTAINER_RESULTS_DIR; the task's results folder is mounted there
CONFIG_FILE = "config_ef.yaml"  # NEL's name for the run config the image reads
BUILTIN_PREFIX = "launcher"  # built-ins are always reachable as launcher.<name>
# nemo-evaluator inside the images posts telemetry unless told not to; we never let it leave the host.
CONTAINER_ENV = {"NEMO_EVALUATOR_TELEMETRY_LEVEL": "0"}
# nemo-evaluator 0.2.8 (adapters/server.py, AdapterServerProcess) starts its adapter server on the address
# in ADAPTER_HOST (default localhost) and the first port from 3825 that it can bind, then closes the probe
# socket and binds again in a child process. On a shared network (docker --network host, Slurm) two
# containers starting together both pick 3825: one server fails ("Address already in use") and its harness
# silently talks to the other task's server (its cache, logs and lifetime). ADAPTER_PORT would pin one port
# (taken: the run fails); a distinct ADAPTER_HOST keeps nemo-evaluator's own free-port search, on an address
# no other task uses.
ADAPTER_HOST_VAR = "ADAPTER_HOST"
# The same server runs waitress with ADAPTER_SERVER_THREADS threads (2048 by default), all started at once:
# ten catalogue containers on one host reach Linux's default pid_max (32768) and fail with "can't start new
# thread". Ours starts what the task's parallelism can use, with room to spare.
ADAPTER_THREADS_VAR = "ADAPTER_SERVER_THREADS"
ADAPTER_THREADS_MIN = 128


def adapter_threads(cfg: Mapping) -> str:
    """The adapter server's thread count for a merged run config: its parallelism + 16, at least 128."""
    parallelism = ((cfg.get("config") or {}).get("params") or {}).get("parallelism")
    extra = int(parallelism) + 16 if isinstance(parallelism, int) else 0
    return str(max(ADAPTER_THREADS_MIN, extra))


@dataclass(frozen=True)
class NelTask:
    harness: str
    task: str
    endpoint_types: tuple[str, ...]
    image: str  # the catalogue's image for the harness (nvcr.io/nvidia/eval-factory/<harness>:26.03)
    description: str = ""

    @property
    def name(self) -> str:
        return f"{self.harness}.{self.task}"

    @property
    def endpoint_type(self) -> str:
        return self.endpoint_types[0]  # NEL runs the first supported type unless the task sets one


@dataclass(frozen=True)
class Catalogue:
    version: str
    harness_images: dict[str, str]
    tasks: dict[tuple[str, str], NelTask]  # (harness, task) -> task

    def by_task(self, task: str) -> list[NelTask]:
        return list(self._by_name.get(task, ()))

    @functools.cached_property
    def _by_name(self) -> dict[str, list[NelTask]]:  # one pass, not one per task of a big invocation
        out: dict[str, list[NelTask]] = {}
        for (_, name), t in self.tasks.items():
            out.setdefault(name, []).append(t)
        return out


@functools.cache
def catalogue() -> Catalogue:
    data = json.loads(TABLE.read_text())
    images = {name: h["image"] for name, h in data["harnesses"].items()}
    tasks = {
        (t["harness"], t["task"]): NelTask(
            t["harness"], t["task"], tuple(t["endpoint_types"]), images[t["harness"]], t["description"]
        )
        for t in data["tasks"]
    }
    return Catalogue(data["source"]["version"], images, tasks)


def resolve_nel(name: str, key: str = "task") -> NelTask | None:
    """The catalogue task `name` means, as NEL 0.2.6 resolves it; None when NEL has no such name.

    Ambiguous bare names and unknown tasks of a known harness are errors naming the choices (`key` is the
    config key to name in them).
    """
    cat = catalogue()
    if name.count(".") == 0:
        found = cat.by_task(name)
        if len(found) > 1:
            choices = ", ".join(t.name for t in found)
            raise ConfigError(
                key, f"{name!r} is a task of {len(found)} harnesses", f"Write one of: {choices}"
            )
        return found[0] if found else None
    if name.count(".") == 1:
        harness, task = name.split(".")
        if (harness, task) in cat.tasks:
            return cat.tasks[harness, task]
        if harness in cat.harness_images:
            # NEL would run it "unlisted" behind NEMO_EVALUATOR_TRUST_UNLISTED_TASKS=1; a typo must not
            # start a container, so we refuse and point at the spellings that exist.
            names = [t for (h, t) in cat.tasks if h == harness]
            close = difflib.get_close_matches(task, names, n=3)
            hint = f"Did you mean {', '.join(f'{harness}.{c}' for c in close)}? " if close else ""
            raise ConfigError(
                key,
                f"{name!r} is not in NEL {cat.version}'s catalogue of {harness} ({len(names)} tasks)",
                f"{hint}`launcher ls tasks {harness}` lists them",
            )
    return None


@dataclass(frozen=True)
class Resolved:
    name: str  # the qualified name: launcher.<task> or <harness>.<task>
    source: Literal["builtin", "catalogue"]
    builtin: Any = None  # the value from `builtins` for a built-in
    nel: NelTask | None = None


def resolve_task(name: str, builtins: Mapping[str, Any], key: str = "task") -> Resolved | None:
    """One name -> one benchmark, or an error; None for a name neither we nor NEL know (a custom task).

    Rules (no name ever silently means a different benchmark):
    - `launcher.<name>` is our built-in <name>; our built-ins are always written so;
    - every other name (`<harness>.<task>` or bare) resolves exactly as NEL 0.2.6 resolves it, so a NEL
      config runs the benchmark it ran under NEL (a bare `hellaswag` is lm-evaluation-harness's);
    - a bare name NEL does not know but we have as a built-in is an error pointing at `launcher.<name>`.
    """
    prefix = BUILTIN_PREFIX + "."
    if name.startswith(prefix):
        bare = name[len(prefix) :]
        if bare not in builtins:
            raise ConfigError(key, f"no built-in task {bare!r}", f"Built-ins: {', '.join(sorted(builtins))}")
        return Resolved(name, "builtin", builtin=builtins[bare])
    task = resolve_nel(name, key)
    if task is not None:
        return Resolved(task.name, "catalogue", nel=task)
    if name in builtins:
        raise ConfigError(
            key,
            f"{name!r} is not in NEL {catalogue().version}'s catalogue",
            f"Our built-in is written {prefix}{name}",
        )
    return None


def merge_config(*layers: Mapping | None) -> dict:
    """Deep-merge `nemo_evaluator_config` layers (evaluation level, then task level: last wins).

    Mappings merge key by key, anything else (lists included) is replaced, as OmegaConf.merge does in
    NEL's `get_eval_factory_config`.
    """
    out: dict = {}
    for layer in layers:
        for k, v in (layer or {}).items():
            if isinstance(v, Mapping) and isinstance(out.get(k), dict):
                out[k] = merge_config(out[k], v)
            else:
                out[k] = copy.deepcopy(dict(v) if isinstance(v, Mapping) else v)
    return out


# Our typed params -> nemo-evaluator's config.params names (NEL 0.2.6 docs and the harness definitions).
NEL_PARAM_NAMES = {
    "temperature": "temperature",
    "top_p": "top_p",
    "max_tokens": "max_new_tokens",
    "parallelism": "parallelism",
    "limit_samples": "limit_samples",
    "request_timeout": "request_timeout",
    "max_retries": "max_retries",
}


def nel_params(params: Mapping[str, Any], key: str = "params") -> dict:
    """The `config.params` a catalogue task gets from our typed params that are set (None: not set).

    Ours without a nemo-evaluator equivalent (seed, stop, max_error_fraction) are refused by name rather
    than dropped: the harness in the image would not see them.
    """
    out = {}
    for name, value in params.items():
        if value is None:
            continue
        if name not in NEL_PARAM_NAMES:
            raise ConfigError(
                f"{key}.{name}",
                "has no equivalent in catalogue (NEL) tasks",
                f"Set it under nemo_evaluator_config.config.params if the harness has one; "
                f"known: {', '.join(NEL_PARAM_NAMES)}",
            )
        out[NEL_PARAM_NAMES[name]] = value
    return out


# 127.a.b.c with a in 1..254, b in 0..255, c in 1..254: on Linux the whole 127.0.0.0/8 is local on lo, in
# any network namespace; 127.0.0.x is left to other programs and .0/.255 endings are avoided.
_HOSTS = 254 * 256 * 254


def adapter_host(invocation_id: str, index: int) -> str:
    """The loopback address task `index` of an invocation gives nemo-evaluator's adapter server. Pure: the
    tasks of one invocation get distinct addresses (consecutive from a point drawn from the invocation id,
    so a resume gets the same ones); two running invocations of n and m tasks overlap with a chance of
    about (n + m - 1) in 16.5 million (1.2e-4 for two of 1,000 tasks)."""
    start = int.from_bytes(hashlib.sha256(invocation_id.encode()).digest()[:4], "big")
    n = (start + index) % _HOSTS
    return f"127.{1 + n // (256 * 254)}.{n // 254 % 256}.{1 + n % 254}"


def with_progress(cfg: dict, url: str) -> None:
    """Turn on nemo-evaluator 0.2.8's progress_tracking interceptor in a config_ef.yaml (in place): it
    counts answered requests (status 200, not from its cache) and writes the count to
    `<output_dir>/progress`, the file NEL 0.2.6's local executor reads too. It also POSTs each count to
    `url` (it cannot be told not to), so `url` must be a sink (the endpoint proxy's). The flat (legacy)
    keys keep nemo-evaluator's default interceptors; a config that lists its own interceptors, or sets
    use_progress_tracking, is left as the user wrote it."""
    adapter = cfg.setdefault("target", {}).setdefault("api_endpoint", {}).setdefault("adapter_config", {})
    if adapter.get("interceptors") or "use_progress_tracking" in adapter:
        return
    adapter["use_progress_tracking"] = True
    adapter.setdefault("progress_tracking_url", url)


@dataclass(frozen=True)
class Rendered:
    image: str
    argv: tuple[str, ...]  # the in-container command
    files: dict[str, str]  # file name in the task's results folder (mounted at /results) -> text
    env_names: tuple[str, ...]  # host variables passed by name (`-e NAME`): values are never written
    env: dict[str, str] = field(default_factory=lambda: dict(CONTAINER_ENV))  # literal, not secret


def image_for(
    task: NelTask, container: str | None = None, harness_images: Mapping[str, str] | None = None
) -> str:
    """Task-level `container` > config-level harness -> image map (mirrors, air-gapped registries) > table."""
    return container or (harness_images or {}).get(task.harness) or task.image


def render_task(
    task: NelTask,
    nemo_evaluator_config: Mapping | None,
    *,
    url: str,
    model_id: str,
    api_key_name: str | None = None,
    endpoint_type: str | None = None,
    env_names: tuple[str, ...] = (),
    container: str | None = None,
    harness_images: Mapping[str, str] | None = None,
    metadata: Mapping | None = None,
    pre_cmd: str = "",
    post_cmd: str = "",
    adapter_host: str | None = None,
    progress_url: str | None = None,
) -> Rendered:
    """The image, command and files that run `task` as NEL 0.2.6 runs it. Pure.

    `nemo_evaluator_config` is the merged user config (see merge_config): what it sets wins, as in NEL;
    the launcher fills only what is missing. `endpoint_type` is the task's `endpoint_type` override;
    `env_names` the container variables the config passes (env_vars at every level); `metadata` is
    recorded in the config for humans and ignored by the harness. Ours only (see the module docstring):
    `adapter_host` sets ADAPTER_HOST in the container, `progress_url` turns on progress tracking.
    """
    cfg = merge_config(nemo_evaluator_config)
    if progress_url:
        with_progress(cfg, progress_url)
    api = cfg.setdefault("target", {}).setdefault("api_endpoint", {})
    api.setdefault("url", url)
    api.setdefault("model_id", model_id)
    api.setdefault("type", endpoint_type or task.endpoint_type)
    run = cfg.setdefault("config", {})
    run.setdefault("type", task.task)  # NEL writes the bare task name for catalogue tasks
    run.setdefault("output_dir", RESULTS_DIR)
    if api_key_name:
        api.setdefault("api_key_name", api_key_name)
    meta = cfg.setdefault("metadata", {})
    for k, v in (metadata or {}).items():
        meta.setdefault(k, copy.deepcopy(v))
    files = {CONFIG_FILE: yaml.safe_dump(cfg)}

    config_path = f"{RESULTS_DIR}/{CONFIG_FILE}"
    # NEL's own choice of entry point: nemo-evaluator, or eval-factory in images that predate it.
    pick = "cmd=$(command -v nemo-evaluator >/dev/null 2>&1 && echo nemo-evaluator || echo eval-factory)"
    run_eval = f"$cmd run_eval --run_config {shlex.quote(config_path)}"
    if pre_cmd or post_cmd:
        meta.update({k: v for k, v in (("pre_cmd", pre_cmd), ("post_cmd", post_cmd)) if v})
        files = {CONFIG_FILE: yaml.safe_dump(cfg), "pre_cmd.sh": pre_cmd, "post_cmd.sh": post_cmd}
        pre, post = f"{RESULTS_DIR}/pre_cmd.sh", f"{RESULTS_DIR}/post_cmd.sh"
        # as NEL: pre_cmd sourced in the same shell; post_cmd always runs and the exit code is kept
        script = f"{pick} && source {pre} && (trap 'code=$?; source {post}; exit $code' EXIT; {run_eval})"
    else:
        script = f"{pick} && exec {run_eval}"
    names = tuple(dict.fromkeys([*env_names, *([api_key_name] if api_key_name else [])]))
    env = dict(CONTAINER_ENV)
    if adapter_host and ADAPTER_HOST_VAR not in names:  # a user's own ADAPTER_HOST wins
        env[ADAPTER_HOST_VAR] = adapter_host
    if adapter_host and ADAPTER_THREADS_VAR not in names:  # and their own thread count
        env[ADAPTER_THREADS_VAR] = adapter_threads(cfg)
    return Rendered(
        image=image_for(task, container, harness_images),
        argv=("bash", "-c", script),
        files=files,
        env_names=names,
        env=env,
    )


def catalogue_rows(filter: str | None = None, builtins: Mapping[str, Any] | None = None) -> list[dict]:
    """Rows for `launcher ls tasks`: built-ins first (as launcher.<name>), then the NEL catalogue.

    `filter` keeps rows whose name, harness, image or endpoint types contain it (case-insensitive).
    A built-in's image/endpoint types are read from its `image`/`endpoint_types` attributes when present.
    """
    rows = [
        {
            "name": f"{BUILTIN_PREFIX}.{name}",
            "harness": BUILTIN_PREFIX,
            "image": getattr(info, "image", ""),
            "endpoint_types": list(getattr(info, "endpoint_types", ("chat", "completions"))),
            "source": "built-in",
            "description": getattr(info, "description", ""),
        }
        for name, info in sorted((builtins or {}).items())
    ]
    rows += [
        {
            "name": t.name,
            "harness": t.harness,
            "image": t.image,
            "endpoint_types": list(t.endpoint_types),
            "source": "catalogue",
            "description": t.description,
        }
        for t in catalogue().tasks.values()
    ]
    if filter:
        needle = filter.lower()
        rows = [
            r
            for r in rows
            if any(needle in str(r[k]).lower() for k in ("name", "harness", "image", "endpoint_types"))
        ]
    return rows
