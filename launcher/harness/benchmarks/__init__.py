"""The built-in benchmarks, one module each; TASKS maps a task name to its api.Task."""

from __future__ import annotations

import importlib

from launcher.harness.api import Task

# Module names under launcher.harness.benchmarks, each exporting TASKS.
MODULES: tuple[str, ...] = ("gsm8k", "aime", "gpqa", "multiple_choice", "humaneval", "synthetic")


def _collect() -> dict[str, Task]:
    tasks: dict[str, Task] = {}
    for module in MODULES:
        for task in importlib.import_module(f"{__name__}.{module}").TASKS:
            tasks[task.name] = task
    return tasks


TASKS = _collect()
