"""Recipes for catalogue harness images built on this machine from PyPI, for hosts that cannot pull
NVIDIA's images (air-gapped clusters, this project's CI).

One folder per catalogue harness, `launcher/catalog/images/<harness>/` (package data, so a pip-installed
launcher can build them too), holding:
- `recipe.yaml`: the image tag, the data caches its tasks read and which catalogue tasks run offline;
- `requirements.txt`: every package pinned (installed with `--no-index` from wheels downloaded on the host);
- the scripts its data caches are prepared with.
Every recipe shares `images/Dockerfile`. This module is the one reader of recipe.yaml; the builder and the
executors' image choice both ask it. A recipe.yaml:

    harness: simple_evals                    # the catalogue's harness name (nel_tasks.json)
    image: launcher-nel-simple-evals:26.3-2  # ours, never an nvcr.io name; bump -N when the folder changes
    env: {}                                  # extra environment baked into the image
    data:                                    # made after the build, inside the image, with no network
      - name: gpqa                           # on the host: data_root()/<harness>/<tag>/<name>/
        run: python3 /images/prepare_hf_cache.py /out Idavidrein/gpqa ...   # /recipe: this folder (ro)
        mount: /data/hf-datasets/Idavidrein___gpqa   # where tasks see it, read-only
    offline: [gpqa_diamond, gpqa_main]       # catalogue tasks that run offline in this image
    unavailable:                             # tasks that cannot, and why (shown by `ls tasks`)
      browsecomp: browses the live web
    other: its data is not prepared offline  # why any task in neither list cannot
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from launcher.errors import ConfigError

FOLDER = Path(__file__).with_name("images")
DOCKERFILE = FOLDER / "Dockerfile"
KEYS = {"harness", "image", "env", "data", "offline", "unavailable", "other"}


def cache_root() -> Path:
    """`$XDG_CACHE_HOME/launcher`, else `~/.cache/launcher` (as launcher.testing.caches.root)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "launcher"


def wheels_dir() -> Path:
    """Wheels downloaded on the host for the image builds; LAUNCHER_IMAGE_WHEELS chooses another."""
    return Path(os.environ.get("LAUNCHER_IMAGE_WHEELS") or cache_root() / "nel-wheels")


def data_root() -> Path:
    """The prepared data caches, one folder per harness; LAUNCHER_IMAGE_DATA chooses another."""
    return Path(os.environ.get("LAUNCHER_IMAGE_DATA") or cache_root() / "nel-data")


@dataclass(frozen=True)
class DataCache:
    name: str
    run: str  # shell command run in the built image: /recipe the recipe folder, /images the shared one
    # (both read-only), /out the cache
    mount: str  # the container path a task sees it at, read-only


@dataclass(frozen=True)
class Recipe:
    harness: str
    image: str
    folder: Path
    env: dict[str, str] = field(default_factory=dict)
    data: tuple[DataCache, ...] = ()
    offline: tuple[str, ...] = ()
    unavailable: dict[str, str] = field(default_factory=dict)
    other: str = "not prepared to run offline"

    @property
    def requirements(self) -> Path:
        return self.folder / "requirements.txt"

    @property
    def tag(self) -> str:
        """The image's tag (after its last ':'), which names its data caches' folder."""
        return self.image.rpartition(":")[2]

    def host_dir(self, data: DataCache) -> Path:
        """data_root()/<harness>/<image tag>/<name>: each image revision has its own caches, so two
        launcher versions on one host never remake each other's."""
        return data_root() / self.harness / self.tag / data.name

    def mounts(self) -> dict[str, str]:
        """host path -> container path of every data cache, for a task's read-only mounts."""
        return {str(self.host_dir(d)): d.mount for d in self.data}

    def why_not(self, task: str) -> str | None:
        """None when `task` runs offline in this image, else the reason it cannot."""
        if task in self.offline:
            return None
        return self.unavailable.get(task, self.other)


def load(path: Path) -> Recipe:
    """One recipe.yaml, checked: unknown keys and missing fields are errors naming the file."""
    raw = yaml.safe_load(path.read_text()) or {}
    where = str(path)
    if not isinstance(raw, dict) or set(raw) - KEYS or not {"harness", "image"} <= set(raw):
        raise ConfigError(
            where,
            f"keys {sorted(raw) if isinstance(raw, dict) else raw!r}",
            f"a recipe has harness and image, and may have {sorted(KEYS - {'harness', 'image'})}",
        )
    data = tuple(DataCache(d["name"], d["run"], d["mount"]) for d in raw.get("data") or ())
    return Recipe(
        harness=raw["harness"],
        image=raw["image"],
        folder=path.parent,
        env={str(k): str(v) for k, v in (raw.get("env") or {}).items()},
        data=data,
        offline=tuple(raw.get("offline") or ()),
        unavailable={str(k): str(v) for k, v in (raw.get("unavailable") or {}).items()},
        other=str(raw.get("other") or Recipe.other),
    )


@functools.cache
def recipes() -> dict[str, Recipe]:
    """Harness name -> its recipe, for every folder under images/ (LAUNCHER_IMAGE_RECIPES: another
    folder of recipe folders, read instead; the tests' own recipes)."""
    root = Path(os.environ.get("LAUNCHER_IMAGE_RECIPES") or FOLDER)
    found = (load(p) for p in sorted(root.glob("*/recipe.yaml")))
    return {r.harness: r for r in found}


def recipe_for(harness: str) -> Recipe | None:
    return recipes().get(harness)
