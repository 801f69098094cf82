"""The contract between the harness runner and the benchmarks (Inspect's shape: a task is a dataset, a
solver and a scorer with declared metrics). Standard library only: this module runs inside the image.

The runner owns concurrency, retries, the checkpoint, SIGTERM, repeats and aggregation. A benchmark owns
its data, its prompts and requests (`solve`) and its per-sample scoring (`score` or, for generated code,
`program`, which the runner executes in the sandbox). Nothing here knows about HTTP.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Sample:
    id: str  # stable across runs and machines: the checkpoint's key (with `#<repeat>` when repeats > 1)
    input: str  # the question / context as the reference stores it (after the reference's preprocessing)
    target: str  # the reference answer as the reference stores it (for multiple choice: the gold index)
    choices: tuple[str, ...] = ()  # multiple choice: the options / continuations, in reference order
    # anything else the task needs (tests, stub...); a str `category` (e.g. an MMLU subject) is recorded
    # with the sample, and paired comparisons cluster their standard errors by it
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Generation:
    text: str
    finish_reason: str | None  # "stop", "length", ... as the endpoint said; None if it did not say
    usage: Mapping[str, Any] | None  # the endpoint's token usage, as returned


class Unsupported(Exception):
    """The endpoint cannot serve this kind of request (e.g. log-likelihoods from a chat endpoint, or an
    endpoint whose prompt log-probabilities are misaligned); the task cannot run against it."""


class Model(Protocol):
    endpoint_type: str  # "chat" or "completions"

    async def generate(self, prompt: str | list[dict], **params: Any) -> Generation:
        """One completion. `prompt`: a string (chat: sent as one user message; completions: the raw
        prompt) or a list of chat messages. `params`: temperature, top_p, max_tokens, seed, stop, n..."""
        ...

    async def loglikelihood(self, context: str, continuation: str) -> tuple[float, bool]:
        """lm-evaluation-harness semantics: (sum of log P(continuation tokens | context ...), whether every
        continuation token is the greedy choice). Completions endpoints with echo + logprobs only;
        raises Unsupported otherwise."""
        ...


@dataclass(frozen=True)
class Context:
    """What a solver may know of the run besides the sample."""

    params: Mapping[str, Any]  # effective generation params: run config > task defaults > target > built-in
    repeat: int = 0  # 0 .. repeats-1 (e.g. simple-evals' GPQA shuffles the options per repeat)
    endpoint_type: str = "chat"


Scores = dict[str, float]  # metric name -> this sample's value, e.g. {"acc": 1.0, "acc_norm": 0.0}


@dataclass(frozen=True)
class Task:
    name: str  # what users type; never a reference's name for a variant that differs from it
    protocol: str  # the reference this reproduces, with version, e.g. "lm-eval 0.4.x gsm8k (5-shot)"
    metrics: tuple[str, ...]  # per-sample score names, headline first (also the results' metric names)
    endpoint_types: tuple[str, ...]  # endpoint types it can run against ("chat", "completions")
    load: Callable[[], list[Sample]]  # the evaluation items, in reference order
    solve: Callable[[Sample, Model, Context], Awaitable[dict]]  # requests -> JSON-able record fields
    # Pure, synchronous, linear in the length of its input (the runner calls it off the event loop):
    # (scores, extracted answer for humans) from the sample and the record `solve` returned.
    score: Callable[[Sample, dict], tuple[Scores, str | None]] | None = None
    # Code tasks instead: the whole program whose clean run (no exception, no exit, within the time
    # limit) means "passed"; the runner executes it in the sandbox and records metrics[0] as 1.0 or 0.0.
    program: Callable[[Sample, dict], str] | None = None
    defaults: Mapping[str, Any] = field(
        default_factory=dict
    )  # params that beat the target's, e.g. max_tokens
    repeats: int = 1  # default repeats per item (params.repeats overrides); per-item mean, then task mean
    size: int | None = None  # items in the reference split; when load() returns fewer, it is a subsample
    subsample: str = ""  # how a subsample was drawn, e.g. "first 100 of 10,042 validation items"
    chance: float | None = None  # chance level of the headline metric, shown next to it
    description: str = ""


def registry(spec: str) -> dict[str, Task]:
    """`module` or `module:attribute` -> task name -> Task (the attribute, default TASKS, may be a
    mapping or a sequence of tasks)."""
    module, _, attribute = spec.partition(":")
    found = getattr(importlib.import_module(module), attribute or "TASKS")
    return dict(found) if isinstance(found, dict) else {t.name: t for t in found}
