"""`launcher images build|ls`: a catalogue harness image built on this machine from its recipe
(launcher.catalog.recipes) with pip and the docker CLI, then its data caches prepared inside it with no
network. What to build and when a cache is current are launcher.catalog.builds' pure decisions.

1. exactly the pinned wheels are copied from the wheel cache (recipes.wheels_dir()) into a temporary build
   context; only when the cache lacks one, it is filled from the package index (the only network): the
   recipe's optional sdists.txt built with `pip wheel --no-deps`, then `pip download` of the binary pins;
2. `docker build` installs them with --no-index on BASE_IMAGE (default launcher-base:bookworm);
3. each data cache's `run` runs in the built image with --network none, /recipe (the recipe folder) and
   /images (the shared scripts) read-only, /out the cache's host folder; `.complete` is written last, so
   a failed step leaves nothing ready.
A second build is a no-op: the image is present and every cache's `.complete` matches the recipe.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from launcher.catalog import builds, recipes
from launcher.catalog.recipes import Recipe
from launcher.errors import LauncherError
from launcher.executors.container.docker_client import START_HINT, Docker

BASE_IMAGE = "launcher-base:bookworm"
STAGE_LABEL = "launcher.build-stage=venv"  # the Dockerfile's first stage, pruned after each build
BASE_HINT = (
    "make it offline with `bash images/make-base.sh launcher-base:bookworm` (in a clone of this project), "
    "or set BASE_IMAGE to a Debian image with python3 (3.11) and its venv module"
)


def _run(argv: list[str], what: str) -> str:
    proc = _subprocess(argv)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise LauncherError(f"{what} failed (exit {proc.returncode}): {' | '.join(tail)}")
    return proc.stdout


def _subprocess(argv: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, text=True)
    except OSError as err:  # no docker CLI on this host
        raise LauncherError(f"cannot run {argv[0]} ({err.strerror}); {START_HINT}") from None


def image_present(tag: str) -> bool:
    return _subprocess(["docker", "image", "inspect", tag]).returncode == 0


def _pip(args: list[str], what: str) -> None:
    _run([sys.executable, "-m", "pip", *args], what)


def _pip_ok(args: list[str]) -> bool:
    return _subprocess([sys.executable, "-m", "pip", *args]).returncode == 0


def build_image(recipe: Recipe, say: Callable[[str], None]) -> None:
    base = os.environ.get("BASE_IMAGE") or BASE_IMAGE
    if not image_present(base):
        raise LauncherError(f"base image {base} is not on this machine; {BASE_HINT}")
    wheels = recipes.wheels_dir()
    wheels.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"launcher-image-{recipe.harness}-") as tmp:
        ctx = Path(tmp)
        for name, text in builds.context(recipe).items():
            (ctx / name).write_text(text)
        # Only the pinned wheels go into the context (the cache may hold other versions). The index is
        # asked only when the cache lacks one, so a filled cache builds on a host with no network.
        collect = builds.pip_download(recipe.requirements, ctx / "wheelhouse", wheels, index=False)
        if not _pip_ok(collect):
            say(f"{recipe.harness}: downloading the pinned wheels into {wheels}")
            sdists = builds.sdist_wheels(recipe, wheels)
            if sdists:
                _pip(sdists, f"pip wheel of {recipe.harness}'s {builds.SDISTS}")
            _pip(
                builds.pip_download(recipe.requirements, wheels, wheels), f"pip download for {recipe.harness}"
            )
            _pip(collect, f"collecting {recipe.harness}'s wheels from {wheels}")
        say(f"{recipe.harness}: docker build {recipe.image} (base {base})")
        argv = ["docker", "build", "-q", "--build-arg", f"BASE_IMAGE={base}", "-t", recipe.image, str(ctx)]
        _run(argv, f"docker build {recipe.image}")
        # The legacy builder keeps the venv stage as an untagged image (the wheelhouse, ~0.5 GB): drop it.
        _run(["docker", "image", "prune", "-f", "--filter", f"label={STAGE_LABEL}"], "docker image prune")


def prepare_data(recipe: Recipe, cache: recipes.DataCache, digest: str, say: Callable[[str], None]) -> None:
    out = recipe.host_dir(cache)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    say(f"{recipe.harness}: preparing data cache {cache.name} in {out}")
    argv = [
        "docker", "run", "--rm", "--network", "none", "--user", f"{os.getuid()}:{os.getgid()}",
        "-v", f"{recipe.folder.resolve()}:/recipe:ro", "-v", f"{builds.SHARED.resolve()}:/images:ro",
        "-v", f"{out}:/out",
        recipe.image, "sh", "-c", cache.run,
    ]  # fmt: skip
    try:
        _run(argv, f"preparing {recipe.harness}'s data cache {cache.name}")
    except LauncherError:
        shutil.rmtree(out, ignore_errors=True)
        raise
    (out / builds.COMPLETE).write_text(digest + "\n")


def build(recipe: Recipe, force: bool = False, say: Callable[[str], None] = print) -> None:
    """The recipe's image (when missing, or force) and its data caches (when not current, or force).
    One build of a recipe at a time on this host: a second waits, then finds everything current."""
    with _locked(recipes.data_root() / recipe.harness / f".{recipe.tag}.lock"):
        if force or not image_present(recipe.image):
            build_image(recipe, say)
        else:
            say(f"{recipe.harness}: image {recipe.image} present (--force rebuilds it)")
        digest = builds.recipe_digest(recipe)
        todo = builds.stale(recipe, force)
        for cache in todo:
            prepare_data(recipe, cache, digest, say)
        if recipe.data and not todo:
            say(f"{recipe.harness}: data caches current in {recipe.host_dir(recipe.data[0]).parent}")


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def build_named(names: list[str], force: bool = False, say: Callable[[str], None] = print) -> None:
    """`launcher images build NAME...|all`: each named recipe in turn."""
    found = recipes.recipes()
    for harness in builds.choose(names, list(found)):
        build(found[harness], force, say)


def listing() -> list[dict]:
    """One row per recipe: harness, image, whether it is built (None: Docker cannot say), whether
    each data cache is ready."""
    found = recipes.recipes()
    missing = Docker.missing_images([r.image for r in found.values()])  # one query for all of them
    return [
        {
            "harness": harness,
            "image": r.image,
            "built": None if missing is None else r.image not in missing,
            "data": builds.data_ready(r),
            "offline": len(r.offline),
        }
        for harness, r in found.items()
    ]
