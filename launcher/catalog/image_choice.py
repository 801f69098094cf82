"""Which image runs a catalogue task, and why. Pure: which images are on this machine is an argument
(`present`, None when nobody asked Docker), so the whole choice is table-tested; the executors ask Docker
once per invocation (executors.container.local_images).

In order: the task's `container`, then `evaluation.harness_images.<harness>`, then by
`execution.catalog_images` (MODES):
- `auto` (default): NVIDIA's catalogue image when it is on this machine; else, when the harness has a recipe
  (catalog.recipes) that lists the task offline and its image is built here, that image with the recipe's
  data caches mounted read-only and its env; else NVIDIA's image (docker pulls it). "Not on this machine"
  is the whole test: no registry is asked whether the image could be pulled. Where the tasks do not run on
  this machine's Docker (Slurm: the nodes' images cannot be seen from here) `auto` is NVIDIA's image.
- `nvidia`: always NVIDIA's image;
- `local`: always the recipe's image; a task no recipe runs offline, or an image not built, is an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from launcher.catalog import recipes
from launcher.catalog.nel import NelTask
from launcher.errors import ConfigError

MODES = ("auto", "nvidia", "local")
KEY = "execution.catalog_images"


@dataclass(frozen=True)
class Choice:
    image: str
    why: str  # for the dry run and status: which rule chose it
    mounts: dict[str, str] = field(default_factory=dict)  # host -> container path, read-only
    env: dict[str, str] = field(default_factory=dict)


def build_hint(harness: str) -> str:
    return f"`launcher images build {harness}`"


def recipe_hint(image: str) -> str:
    """How to build `image` when one of our recipes makes it (no registry has it: never pulled), else ""."""
    for recipe in recipes.recipes().values():
        if recipe.image == image:
            return f"build it with {build_hint(recipe.harness)}"
    return ""


def why_not_local(task: NelTask) -> str | None:
    """None when the task's recipe runs it offline, else why no local image can run it."""
    recipe = recipes.recipe_for(task.harness)
    if recipe is None:
        return f"no offline recipe for {task.harness}"
    return recipe.why_not(task.task)


def local(recipe: recipes.Recipe, why: str) -> Choice:
    return Choice(recipe.image, why, recipe.mounts(), dict(recipe.env))


def choose(
    task: NelTask,
    container: str | None = None,
    harness_images: Mapping[str, str] | None = None,
    mode: str = "auto",
    present: frozenset[str] | None = None,
    here: bool = True,
) -> Choice:
    """The image `task` runs in. `present`: the candidate images (see `candidates`) on this machine, None
    when unknown; `here`: the tasks run on this machine's Docker (False on Slurm)."""
    if container:
        return Choice(container, "the task's container")
    if (harness_images or {}).get(task.harness):
        return Choice(harness_images[task.harness], f"evaluation.harness_images.{task.harness}")
    nvidia = task.image
    if mode == "nvidia":
        return Choice(nvidia, f"NVIDIA's catalogue image ({KEY}: nvidia)")
    reason = why_not_local(task)
    recipe = recipes.recipe_for(task.harness)
    if mode == "local":
        if reason is not None:
            raise ConfigError(
                KEY, f"local, but {task.name} has no local image: {reason}", "Set it to auto or nvidia"
            )
        if present is not None and recipe.image not in present:
            raise ConfigError(
                KEY,
                f"local, but {recipe.image} for {task.name} is not built on this machine",
                f"Build it with {build_hint(task.harness)}",
            )
        return local(recipe, f"local build ({KEY}: local)")
    if not here:
        return Choice(nvidia, f"NVIDIA's catalogue image (on Slurm {KEY}: local runs the local build)")
    if present is None:
        return Choice(nvidia, "NVIDIA's catalogue image (Docker did not say what is here)")
    if nvidia in present:
        return Choice(nvidia, "NVIDIA's catalogue image, present")
    if reason is None and recipe.image in present:
        return local(recipe, f"local build: {nvidia} not present")
    if reason is None:
        reason = f"{recipe.image} not built: {build_hint(task.harness)}"
    return Choice(nvidia, f"NVIDIA's catalogue image, not present: pulled (no local build: {reason})")


def candidates(tasks: Iterable[NelTask]) -> list[str]:
    """The images whose presence the choice of `tasks` reads: NVIDIA's and the recipes' ones."""
    found = set()
    for task in tasks:
        found.add(task.image)
        recipe = recipes.recipe_for(task.harness)
        if recipe is not None:
            found.add(recipe.image)
    return sorted(found)


def offline(task: NelTask, present: frozenset[str] | None) -> str:
    """`launcher ls tasks`' OFFLINE cell: `built`, `buildable: launcher images build <harness>`,
    `no: <reason>`, or `unknown (no Docker)` when a recipe runs it but Docker cannot say if it is built."""
    reason = why_not_local(task)
    if reason is not None:
        return f"no: {reason}"
    if present is None:
        return "unknown (no Docker)"
    if recipes.recipe_for(task.harness).image in present:
        return "built"
    return f"buildable: launcher images build {task.harness}"
