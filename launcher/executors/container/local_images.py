"""What the catalogue tasks' image choice (catalog.image_choice, pure) reads from this machine: which of
their candidate images are here. One `docker image inspect` per invocation (see Docker.missing_images), and
only when a choice reads it; no registry is asked anything."""

from __future__ import annotations

from launcher.catalog import builds, image_choice, recipes, resolve
from launcher.config.schema import RunSpec
from launcher.errors import ConfigError
from launcher.executors.container.docker_client import Docker


def present(images: list[str]) -> frozenset[str] | None:
    """The `images` on this machine; None when Docker cannot say. A recipe's image counts only with its data
    caches current (catalog.builds.data_ready; `launcher images build` makes both)."""
    missing = Docker.missing_images(images)
    if missing is None:
        return None
    here = set(images) - set(missing)
    for recipe in recipes.recipes().values():
        if recipe.image in here and not all(builds.data_ready(recipe).values()):
            here.discard(recipe.image)
    return frozenset(here)


def for_plan(spec: RunSpec) -> frozenset[str] | None:
    """`present` for the candidate images of spec's catalogue tasks whose image the choice picks (no
    container, command or harness_images entry); None without such a task or with catalog_images nvidia."""
    if spec.execution.catalog_images == "nvidia":
        return None
    chosen = []
    for task in spec.selected_tasks():
        try:
            known = None if task.command or task.container else resolve(task.name)
        except ConfigError:  # the plan refuses the name with its full key
            continue
        if known is not None and known.nel and known.nel.harness not in spec.evaluation.harness_images:
            chosen.append(known.nel)
    return present(image_choice.candidates(chosen)) if chosen else None


def task_rows(filter: str | None = None) -> list[dict]:
    """`launcher ls tasks`' rows (catalog.rows), each catalogue task's with `offline`
    (catalog.image_choice.offline), from one Docker query for the recipes' images of the listed harnesses;
    without Docker, every task a recipe runs is `unknown (no Docker)`."""
    from launcher.catalog import nel, rows

    listed = rows(filter)
    tasks = nel.catalogue().tasks
    harnesses = {r["harness"] for r in listed if r["source"] == "catalogue"}
    images = sorted(r.image for h, r in recipes.recipes().items() if h in harnesses)
    here = present(images) if images else frozenset()
    for row in listed:
        if row["source"] == "catalogue":
            task = tasks[(row["harness"], row["name"][len(row["harness"]) + 1 :])]
            row["offline"] = image_choice.offline(task, here)
    return listed
