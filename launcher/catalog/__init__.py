"""Every task the launcher knows by name, and the images of ours (one place for each tag).

Two sources, one resolver (`resolve`):
- our built-ins: the harness's benchmarks (launcher/harness/benchmarks), each naming the reference
  protocol it reproduces; always reachable as `launcher.<name>`;
- NeMo Evaluator Launcher 0.2.6's catalogue (catalog/nel.py): `<harness>.<task>` or a bare name, resolved
  exactly as NEL resolves it, each run in its harness image with NEL's config_ef.yaml.
A bare name is never ours, so a NEL config runs the benchmark it ran under NEL. Any other name is a custom
task (`container` and `command` in its config).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from launcher import __version__
from launcher.harness.contract import RUN_CONFIG

HARNESS_IMAGE = f"launcher-harness:{__version__}"
# The Makefile reads the next line; conf/deployment/llama_cpp.yaml names the tag too (a test checks it).
LLAMA_CPP_IMAGE = "launcher-llama-cpp:0.3.36-1"
TOOLS_IMAGE = f"launcher-tools:{__version__}"  # the endpoint proxy and auto-export on Slurm nodes
TOOLS_HINT = "build it with `make tools-image`"
BUILD_HINTS = {  # images of ours that no registry has: how to build each
    HARNESS_IMAGE: "build it with `make image`",
    TOOLS_IMAGE: TOOLS_HINT,
    LLAMA_CPP_IMAGE: "build it with `make llama-image`",
}
RUN_CONFIG_IN_CONTAINER = f"/results/{RUN_CONFIG}"  # the task container sees its results folder at /results
HIDDEN = frozenset({"synthetic"})  # the launcher's own load generator (bench/), not a benchmark


@dataclass(frozen=True)
class TaskInfo:
    """A built-in benchmark as the host sees it (the harness's api.Task holds the rest)."""

    name: str  # bare name, as the harness knows it
    description: str
    samples: int | None  # items in the reference split
    protocol: str = ""  # the reference implementation and version it reproduces
    endpoint_types: tuple[str, ...] = ("chat", "completions")
    subsample: str = ""  # non-empty when we evaluate fewer items than the reference split
    code: bool = False  # generated code: run.sh adds the sandbox and scoring phases
    image: str = HARNESS_IMAGE
    command: tuple[str, ...] = (
        "python3",
        "-m",
        "launcher.harness",
        "run",
        "--config",
        RUN_CONFIG_IN_CONTAINER,
    )
    source: str = "builtin"


@functools.cache
def builtin() -> dict[str, TaskInfo]:
    """The harness's benchmarks (imported on first use: `--help` never pays for it)."""
    from launcher.harness.benchmarks import TASKS

    return {
        name: TaskInfo(
            name=name,
            description=task.description,
            samples=task.size,
            protocol=task.protocol,
            endpoint_types=tuple(task.endpoint_types),
            subsample=task.subsample,
            code=task.program is not None,
        )
        for name, task in TASKS.items()
        if name not in HIDDEN
    }


@dataclass(frozen=True)
class Known:
    """What a task name resolved to: one of our built-ins, or a NEL catalogue task."""

    name: str  # the qualified name: launcher.<task> or <harness>.<task>
    builtin: TaskInfo | None = None
    nel: object = None  # catalog.nel.NelTask for a catalogue task


def resolve(name: str, key: str = "task") -> Known | None:
    """The benchmark `name` means, or None for a name nobody knows (a custom task); ambiguous names and
    unknown tasks of a known harness raise ConfigError naming `key` and the choices."""
    from launcher.catalog import nel

    found = nel.resolve_task(name, builtin(), key)
    if found is None:
        return None
    return Known(found.name, builtin=found.builtin, nel=found.nel)


def rows(filter: str | None = None) -> list[dict]:
    """`launcher ls tasks`: built-ins (with their reference protocol), then the NEL catalogue."""
    from launcher.catalog import nel

    out = nel.catalogue_rows(filter, builtin())
    for row in out:
        info = builtin().get(row["name"].removeprefix(nel.BUILTIN_PREFIX + "."))
        if row["source"] == "built-in" and info is not None:
            row["protocol"] = info.protocol
            row["samples"] = info.samples
            row["subsample"] = info.subsample
    return out
