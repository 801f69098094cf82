"""The typed, frozen run specification: what every executor receives. No OmegaConf here.

Field comments are the config reference: README.md repeats them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

ENDPOINT_TYPES = ("chat", "completions")


@dataclass(frozen=True)
class ApiEndpoint:
    url: str  # full URL of the endpoint, e.g. http://127.0.0.1:8000/v1/chat/completions
    model_id: str  # model name sent in each request
    type: Literal["chat", "completions"] = "chat"
    api_key: str | None = None  # NAME of the host environment variable holding the key (never the key)
    proxy: bool = True  # tasks reach the endpoint through launcher.proxy, which alone holds the key
    proxy_port: int = 0  # the proxy's port on 127.0.0.1; 0: a free one, chosen at launch
    adapter_config: dict = field(default_factory=dict)  # the proxy's interceptors (NEL spellings)


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


@dataclass(frozen=True)
class Evaluation:
    tasks: tuple[TaskSpec, ...]
    env_vars: dict[str, str] = field(default_factory=dict)  # container variable -> host variable NAME
    params: Params = field(default_factory=Params)
    only: tuple[str, ...] | None = None  # run only these task names (handy for -m sweeps)


@dataclass(frozen=True)
class Deployment:
    """A model server the launcher starts before the tasks and stops after them (type: server).

    Any OpenAI-compatible server image fits: llama.cpp, vLLM, SGLang, NIM differ only in these values.
    """

    type: Literal["none", "server"] = "none"  # "none": evaluate an existing endpoint
    name: str = ""  # label for humans, e.g. "llama_cpp"
    image: str | None = None  # the server's image
    command: tuple[str, ...] = ()  # the server's argv (the image's default when empty)
    port: int = 8000  # where the server listens on the host network
    served_model_name: str = "model"  # the model id the server answers to
    health_path: str = "/v1/models"  # GET must answer 200 once the server is ready
    startup_timeout: int = 600  # seconds to wait for readiness before failing the invocation
    env_vars: dict[str, str] = field(default_factory=dict)  # container variable -> host variable NAME
    extra_docker_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunSpec:
    executor: str
    execution: Any  # the executor's own frozen config dataclass
    target: Target
    evaluation: Evaluation
    deployment: Deployment
    config: dict  # the composed tree as plain data, kept for .hydra/ and `info`

    def selected_tasks(self) -> tuple[TaskSpec, ...]:
        only = self.evaluation.only
        return tuple(t for t in self.evaluation.tasks if only is None or t.name in only)

    def env_vars(self, task: TaskSpec) -> dict[str, str]:
        """Container variable -> host variable name; task level wins, the API key is added as API_KEY."""
        merged = dict(self.evaluation.env_vars)
        if self.target.api_endpoint.api_key:
            merged.setdefault("API_KEY", self.target.api_endpoint.api_key)
        merged.update(task.env_vars)
        return merged

    def params(self, task: TaskSpec) -> Params:
        """Effective parameters: task > evaluation > target.generation > defaults."""
        layers = (self.evaluation.params, task.params)
        out = replace(PARAM_DEFAULTS, **_set_fields(self.target.generation))
        for layer in layers:
            out = replace(out, **_set_fields(layer))
        return out


def _set_fields(obj: Any) -> dict:
    return {f.name: getattr(obj, f.name) for f in fields(obj) if getattr(obj, f.name) is not None}
