"""The task registry: what `ls tasks` shows and what a task name in `evaluation.tasks` runs by default.

A task listed here runs our harness image; any other name needs `container` and `command` in its config.
"""

from __future__ import annotations

from dataclasses import dataclass

from launcher import __version__

HARNESS_IMAGE = f"launcher-harness:{__version__}"
LLAMA_CPP_IMAGE = "launcher-llama-cpp:0.3.36-1"  # conf/deployment/llama_cpp.yaml names it too
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

    @property
    def command(self) -> tuple[str, ...]:
        return ("python3", "-m", "launcher.harness", "run", "--config", RUN_CONFIG)


TASKS = {
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
