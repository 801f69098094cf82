"""What building a recipe's image and data caches takes, decided without Docker: pure functions of a recipe
(launcher.catalog.recipes) and the files on disk. launcher.executors.container.images runs them; the
executors' image choice asks `data_ready` whether a recipe's caches can be mounted.

A data cache is current when its `.complete` file holds the `digest` of its recipe folder: change any file
of the recipe (its pins, its prepare scripts, recipe.yaml) and the caches are made again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from launcher.catalog.recipes import DOCKERFILE, DataCache, Recipe
from launcher.errors import ConfigError

PYTHON = "3.11"  # the base image's Python (launcher-base:bookworm): the wheels are chosen for it
COMPLETE = ".complete"


def digest(folder: Path) -> str:
    """sha256 of every file under `folder` (path and bytes, in path order), bytecode caches left out."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder)
        if "__pycache__" in rel.parts or path.suffix == ".pyc":
            continue
        h.update(rel.as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def dockerfile(shared: str, env: dict[str, str]) -> str:
    """The shared Dockerfile with the recipe's environment appended as one ENV instruction."""
    if not env:
        return shared
    pairs = " ".join(f"{k}={json.dumps(v)}" for k, v in sorted(env.items()))
    return f"{shared.rstrip()}\nENV {pairs}\n"


def context(recipe: Recipe) -> dict[str, str]:
    """Build-context file name -> its text; the wheelhouse (exactly the pins) is added by the builder."""
    return {
        "Dockerfile": dockerfile(DOCKERFILE.read_text(), recipe.env),
        "requirements.txt": recipe.requirements.read_text(),
    }


def pip_download(requirements: Path, dest: Path, find_links: Path | None = None) -> list[str]:
    """`pip download` arguments for wheels of the image's Python: from the index into the wheel cache, or
    (find_links) only from that cache, with no index, into the build context."""
    offline = ["--no-index", "--find-links", str(find_links)] if find_links else []
    return [
        "download",
        "-q",
        *offline,
        "--dest",
        str(dest),
        "--only-binary=:all:",
        "--python-version",
        PYTHON,
        "-r",
        str(requirements),
    ]


def data_ready(recipe: Recipe, want: str | None = None) -> dict[str, bool]:
    """Data cache name -> whether its folder holds what the recipe's current folder prepares."""
    want = want or digest(recipe.folder)
    return {d.name: _complete(recipe.host_dir(d)) == want for d in recipe.data}


def stale(recipe: Recipe, force: bool = False) -> list[DataCache]:
    """The data caches to (re)make: all with force, else those not ready."""
    ready = data_ready(recipe)
    return [d for d in recipe.data if force or not ready[d.name]]


def choose(names: list[str], known: list[str]) -> list[str]:
    """The recipes a `build` names: `all` for every one; an unknown name is an error naming the choices."""
    if names == ["all"]:
        return known
    wrong = [n for n in names if n not in known]
    if wrong or not names:
        raise ConfigError(
            "HARNESS",
            f"{', '.join(wrong) or 'none given'} is not a harness with an image recipe",
            f"allowed: all, {', '.join(known)}",
        )
    return list(dict.fromkeys(names))


def _complete(folder: Path) -> str | None:
    try:
        return (folder / COMPLETE).read_text().strip()
    except OSError:
        return None
