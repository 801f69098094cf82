"""The typed, frozen run specification: what every executor receives. No OmegaConf here.

Field comments are the config reference: README.md repeats them.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

ENDPOINT_TYPES = ("chat", "completions")
NEL_SERVERS = ("vllm", "sglang", "nim", "trtllm", "generic")  # NEL 0.2.6 deployment types we keep


@dataclass(frozen=True)
class Mounts:
    """Extra bind mounts (NEL 0.2.6 `execution.mounts`): host path -> container path[:ro]."""

    deployment: dict[str, str] = field(default_factory=dict)  # into the model server container
    evaluation: dict[str, str] = field(default_factory=dict)  # into every task container
    mount_home: bool = False  # NEL's Slurm default is true: $HOME mounted into the containers
    auxiliary: dict[str, dict[str, str]] = field(default_factory=dict)  # per auxiliary deployment name


@dataclass(frozen=True)
class Pending:
    """Accepted settings the launcher does not act on yet, reported at launch (never silently dropped)."""

    export: dict[str, Any] = field(default_factory=dict)  # NEL `export` group
    auto_export: dict[str, Any] = field(default_factory=dict)  # NEL `execution.auto_export`

    def report(self, executor: str = "local") -> list[str]:
        """What will not happen: auto-export runs when a local (run_all.sh) or Slurm (a job after the
        array) invocation ends, not on other executors; the `export` group only feeds auto-export (and
        `launcher export` takes flags)."""
        out = []
        if self.auto_export and executor not in ("local", "slurm"):
            out.append(
                f"execution.auto_export: pending on the {executor} executor (run `launcher export` "
                "after the invocation)"
            )
        if self.export and not self.auto_export:
            out.append(
                f"export.{','.join(self.export)}: used only by execution.auto_export; `launcher export` "
                "takes its settings as flags"
            )
        return out


@dataclass(frozen=True)
class Interceptor:
    """One step of NEL 0.2.6's adapter chain (name, enabled, config), kept as written."""

    name: str
    enabled: bool = True
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AdapterConfig:
    """NEL 0.2.6 `adapter_config`, kept typed for the endpoint proxy; not applied by the launcher itself.

    `settings` holds the flat legacy flags (use_caching, max_logged_requests, ...) exactly as written."""

    interceptors: tuple[Interceptor, ...] = ()
    post_eval_hooks: tuple[Interceptor, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict:
        """The NEL shape again (what a `from_adapter_config(dict)` reads)."""
        out: dict[str, Any] = dict(self.settings)
        for name in ("interceptors", "post_eval_hooks"):
            if getattr(self, name):
                out[name] = [
                    {"name": i.name, "enabled": i.enabled, "config": dict(i.config)}
                    for i in getattr(self, name)
                ]
        return out


@dataclass(frozen=True)
class ApiEndpoint:
    url: str  # full URL of the endpoint, e.g. http://127.0.0.1:8000/v1/chat/completions
    model_id: str  # model name sent in each request
    type: Literal["chat", "completions"] = "chat"
    api_key: str | None = None  # NAME of the host environment variable holding the key (never the key)
    proxy: bool = True  # tasks reach the endpoint through launcher.proxy, which alone holds the key
    proxy_port: int = 0  # the proxy's port on 127.0.0.1; 0: drawn from the invocation id (20000-32767)
    adapter_config: AdapterConfig | None = None  # the proxy's interceptors (NEL 0.2.6 spellings)


@dataclass(frozen=True)
class Generation:
    """Sampling parameters; None means the endpoint's default."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Params(Generation):
    """Per-evaluation or per-task knobs; None inherits (task > evaluation > target > defaults)."""

    parallelism: int | None = None  # concurrent requests per task (default 16)
    limit_samples: int | None = None  # evaluate only the first N samples
    request_timeout: float | None = None  # seconds per request (default 120)
    max_retries: int | None = None  # retries per request on 429/5xx/timeouts (default 5)
    max_error_fraction: float | None = None  # task fails above this share of errored samples (0.05)
    repeats: int | None = None  # samples per item (built-ins: the reference's default); per-item mean first
    shards: int | None = None  # split the task's samples over this many containers, merged after (1)


PARAM_DEFAULTS = Params(parallelism=16, request_timeout=120.0, max_retries=5, max_error_fraction=0.05)


@dataclass(frozen=True)
class Target:
    api_endpoint: ApiEndpoint
    generation: Generation = field(default_factory=Generation)


@dataclass(frozen=True)
class TaskSpec:
    name: str  # a task from `launcher ls tasks`, or any name with `container` and `command` set
    env_vars: dict[str, str] = field(default_factory=dict)  # container variable -> host variable NAME
    params: Params = field(default_factory=Params)
    container: str | None = None  # image to run instead of the task's default
    command: tuple[str, ...] | None = None  # argv to run instead of the task's default
    literal_env: dict[str, str] = field(default_factory=dict)  # container variable -> literal (NEL lit:)
    nemo_evaluator_config: dict[str, Any] = field(default_factory=dict)  # NEL pass-through, merged
    adapter_config: AdapterConfig | None = None  # NEL per-task adapter chain (from the pass-through)
    endpoint_type: Literal["chat", "completions"] | None = None  # NEL: the endpoint this task uses
    pre_cmd: str = ""  # shell run in the task container before the evaluation (NEL; own file, not inlined)
    post_cmd: str = ""  # shell run in the task container after it, even on failure (NEL)
    dataset_dir: str | None = None  # host folder mounted read-only at dataset_mount_path (NEL)
    dataset_mount_path: str = "/datasets"
    shards: int | None = (
        None  # containers (Slurm array elements) sharing this task's samples; wins over params
    )


@dataclass(frozen=True)
class Evaluation:
    tasks: tuple[TaskSpec, ...]
    env_vars: dict[str, str] = field(default_factory=dict)  # container variable -> host variable NAME
    params: Params = field(default_factory=Params)
    only: tuple[str, ...] | None = None  # run only these task names (handy for -m sweeps)
    literal_env: dict[str, str] = field(default_factory=dict)  # container variable -> literal (NEL lit:)
    pre_cmd: str = ""  # default for every task (a task's own pre_cmd replaces it)
    post_cmd: str = ""
    # NEL catalogue harness -> image, for mirrors and air-gapped registries (a task's `container` wins)
    harness_images: dict[str, str] = field(default_factory=dict)

    @functools.cached_property
    def positions(self) -> dict[int, int]:
        """id(task) -> its index in `tasks`, found once (by identity: comparing whole dataclasses made
        planning 1,000 tasks quadratic)."""
        return {id(t): i for i, t in enumerate(self.tasks)}


@dataclass(frozen=True)
class LoadBalancer:
    """HAProxy in front of several instances (NEL 0.2.6 `execution.proxy`, its defaults)."""

    image: str = "haproxy:latest"
    port: int = 5009  # where it listens on the first node; the tasks' URL uses this port
    health_check_path: str | None = None  # default: the deployment's health path
    health_check_status: int = 200


@dataclass(frozen=True)
class Deployment:
    """A model server the launcher starts before the tasks and stops after them (type: server).

    Any OpenAI-compatible server image fits: llama.cpp, vLLM, SGLang, NIM differ only in these values.
    """

    type: Literal["none", "server", "vllm", "sglang", "nim", "trtllm", "generic"] = (
        "none"  # "none": evaluate an existing endpoint
    )
    name: str = ""  # label for humans, e.g. "llama_cpp"
    image: str | None = None  # the server's image
    command: tuple[str, ...] = ()  # the server's argv (the image's default when empty)
    port: int = 8000  # where the server listens on the host network
    served_model_name: str = "model"  # the model id the server answers to
    health_path: str = "/v1/models"  # GET must answer 200 once the server is ready
    startup_timeout: int = 600  # seconds to wait for readiness before failing the invocation
    env_vars: dict[str, str] = field(default_factory=dict)  # container variable -> host variable NAME
    extra_docker_args: tuple[str, ...] = ()
    literal_env: dict[str, str] = field(default_factory=dict)  # container variable -> literal (NEL lit:)
    # NEL 0.2.6 server types (vllm, sglang, nim, trtllm, generic): the values their commands are made of.
    shell_command: str | None = None  # NEL `command`: one shell string (run from its own file)
    checkpoint_path: str | None = None  # host folder mounted read-only at /checkpoint
    hf_model_handle: str | None = None  # Hugging Face model id served instead of /checkpoint
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    data_parallel_size: int = 1
    data_parallel_size_local: int | None = None  # vllm multi-node data parallel: ranks per node
    gpu_memory_utilization: float | None = None  # vllm only
    distributed_executor_backend: str | None = None  # vllm: "ray" across nodes (NEL's deployment=vllm_ray)
    extra_args: str = ""  # appended to the server command
    endpoints: dict[str, str] = field(default_factory=dict)  # chat/completions/health paths (NEL)
    # NEL `execution.num_instances`: copies of the server, one per node (Slurm), behind `load_balancer`
    num_instances: int = 1
    load_balancer: LoadBalancer = field(default_factory=LoadBalancer)  # NEL `execution.proxy`


@dataclass(frozen=True)
class AuxiliaryDeployment(Deployment):
    """A second model server in the same Slurm allocation, e.g. a judge (NEL 0.2.6 `auxiliary_deployments`).

    Tasks reach it by reference: `auxiliary_deployments.<name>.model_id` and `.<endpoint>_url` (chat_url,
    completions_url, ...) in nemo_evaluator_config are replaced by its served model name and URL."""

    num_nodes: int = 1  # nodes of its own after the primary's; 0: on the first node (ours; ports must differ)
    env_prefix: str = ""  # prefix of its shell variables, e.g. JUDGE_CHAT_URL (default: the name, upper case)


def task_ids(names: list[str]) -> list[str]:
    """Each task's identity, in list order: its name, or `<name>.<position in evaluation.tasks>` for a name
    listed more than once, as NEL 0.2.6 names every task (common/helpers.py get_unique_task_name; it allows
    repeats since 0.2.5). Names the task's folder and its results; the same list gives the same ids."""
    counts = Counter(names)
    return [f"{n}.{i}" if counts[n] > 1 else n for i, n in enumerate(names)]


@dataclass(frozen=True)
class RunSpec:
    executor: str
    execution: Any  # the executor's own frozen config dataclass
    target: Target
    evaluation: Evaluation
    deployment: Deployment
    config: dict  # the composed tree as plain data, kept for .hydra/ and `info`
    mounts: Mounts = field(default_factory=Mounts)
    pending: Pending = field(default_factory=Pending)
    auxiliary: dict[str, AuxiliaryDeployment] = field(default_factory=dict)  # name -> server (Slurm only)

    def selected_tasks(self) -> tuple[TaskSpec, ...]:
        return tuple(task for _, task in self.selected())

    def selected(self) -> tuple[tuple[str, TaskSpec], ...]:
        """(task id, task) of each task `only` selects, by name (every repeat) or by task id (one)."""
        only = None if self.evaluation.only is None else set(self.evaluation.only)
        pairs = zip(task_ids([t.name for t in self.evaluation.tasks]), self.evaluation.tasks, strict=True)
        return tuple((i, t) for i, t in pairs if only is None or t.name in only or i in only)

    def env_vars(self, task: TaskSpec) -> dict[str, str]:
        """Container variable -> host variable name; task level wins, the API key is added as API_KEY."""
        merged = dict(self.evaluation.env_vars)
        if self.target.api_endpoint.api_key:
            merged.setdefault("API_KEY", self.target.api_endpoint.api_key)
        merged.update(task.env_vars)
        return merged

    def literal_env(self, task: TaskSpec) -> dict[str, str]:
        """Container variable -> literal value (NEL `lit:`), task level wins. Never secrets (refused)."""
        return {**self.evaluation.literal_env, **task.literal_env}

    def pre_post(self, task: TaskSpec) -> tuple[str, str]:
        """The task's (pre_cmd, post_cmd); a task's own replaces the evaluation's (NEL 0.2.6 rule)."""
        return (task.pre_cmd or self.evaluation.pre_cmd, task.post_cmd or self.evaluation.post_cmd)

    def explicit_params(self, task: TaskSpec) -> Params:
        """Only what the evaluation and the task set (task wins); None where neither did. A built-in task's
        own defaults (e.g. AIME's token budget) come between these and the target's generation values."""
        out = Params()
        for layer in (self.evaluation.params, task.params):
            out = replace(out, **_set_fields(layer))
        return out

    def shards(self, task: TaskSpec) -> int:
        """How many shards the task runs as: its `shards`, else params.shards (task > evaluation), else 1."""
        return task.shards or self.params(task).shards or 1

    def params(self, task: TaskSpec) -> Params:
        """Effective parameters: task > evaluation > target.generation > defaults."""
        layers = (self.evaluation.params, task.params)
        out = replace(PARAM_DEFAULTS, **_set_fields(self.target.generation))
        for layer in layers:
            out = replace(out, **_set_fields(layer))
        return out


def _set_fields(obj: Any) -> dict:
    return {f.name: getattr(obj, f.name) for f in fields(obj) if getattr(obj, f.name) is not None}
