"""Every task the launcher knows by name, and the images of ours (one place for each tag).

`resolve(name)` is the one lookup: a task listed here runs our harness image; any other name needs
`container` and `command` in its config. A second source (e.g. a catalogue of other images) plugs in
by adding itself to `SOURCES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from launcher import __version__

HARNESS_IMAGE = f"launcher-harness:{__version__}"
LLAMA_CPP_IMAGE = (
    "launcher-llama-cpp:0.3.36"  # the Makefile reads this line; conf/deployment/llama_cpp.yaml too
)
BUILD_HINTS = {  # images of ours that no registry has: how to build each
    HARNESS_IMAGE: "build it with `make image`",
    LLAMA_CPP_IMAGE: "build it with `make llama-image`",
}
RUN_CONFIG = "/results/run_config.json"  # written by the launcher into the task's results folder


@dataclass(frozen=True)
class TaskInfo:
    name: str
    description: str
    samples: int
    image: str = HARNESS_IMAGE
    command: tuple[str, ...] = ("python3", "-m", "launcher.harness", "run", "--config", RUN_CONFIG)
    source: str = "builtin"


BUILTIN = {
    t.name: t
    for t in (
        TaskInfo("gsm8k", "GSM8K test: grade-school math, exact match on the final number", 1319),
        TaskInfo(
            "humaneval", "HumanEval: Python functions, pass@1 by running the tests in the container", 164
        ),
        TaskInfo("gpqa_diamond", "GPQA Diamond: graduate-level multiple choice (A-D)", 198),
        TaskInfo("aime2025", "AIME 2025: competition math, integer answers", 30),
        TaskInfo("hellaswag", "HellaSwag: sentence completion as multiple choice (A-D)", 100),
        TaskInfo("truthfulqa_mc1", "TruthfulQA MC1: one true answer among several", 100),
    )
}
TASKS = BUILTIN  # the name of launcher 0.1

# Each source: () -> {name: TaskInfo}; earlier sources win on a name clash.
SOURCES: list[Callable[[], dict[str, TaskInfo]]] = [lambda: BUILTIN]


class UnknownTask(KeyError):
    """No source knows the name."""


def all_tasks() -> dict[str, TaskInfo]:
    out: dict[str, TaskInfo] = {}
    for source in SOURCES:
        for name, info in source().items():
            out.setdefault(name, info)
    return out


def resolve(name: str) -> TaskInfo:
    """The task called `name`; raises UnknownTask."""
    for source in SOURCES:
        info = source().get(name)
        if info is not None:
            return info
    raise UnknownTask(name)
