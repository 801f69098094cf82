"""The recipe reader (launcher.catalog.recipes) and every recipe the package ships."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.catalog import nel, recipes
from launcher.errors import ConfigError

RECIPE = """\
harness: simple_evals
image: launcher-nel-simple-evals:26.3-9
env: {A: 1}
data:
  - name: gpqa
    run: python3 /recipe/prepare.py /out
    mount: /data/hf-datasets/Idavidrein___gpqa
offline: [gpqa_diamond]
unavailable: {browsecomp: browses the live web}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "simple_evals" / "recipe.yaml"
    path.parent.mkdir()
    path.write_text(text)
    return path


def test_a_recipe_reads_into_its_fields(tmp_path, monkeypatch):
    monkeypatch.setenv("LAUNCHER_IMAGE_DATA", "/hand/data")
    r = recipes.load(write(tmp_path, RECIPE))
    assert (r.harness, r.image, r.env) == ("simple_evals", "launcher-nel-simple-evals:26.3-9", {"A": "1"})
    assert r.requirements == tmp_path / "simple_evals" / "requirements.txt"
    assert r.mounts() == {"/hand/data/simple_evals/26.3-9/gpqa": "/data/hf-datasets/Idavidrein___gpqa"}


@pytest.mark.parametrize(
    ("task", "why"),
    [
        ("gpqa_diamond", None),
        ("browsecomp", "browses the live web"),
        ("mmlu", "not prepared to run offline"),
    ],
)
def test_why_a_task_cannot_run_offline(tmp_path, task, why):
    assert recipes.load(write(tmp_path, RECIPE)).why_not(task) == why


@pytest.mark.parametrize(
    "text",
    ["image: x:1\n", "harness: h\n", "harness: h\nimage: x:1\ntasks: [a]\n", "- a\n"],
)
def test_a_malformed_recipe_is_refused_naming_its_file(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=str(path)):
        recipes.load(path)


def test_every_shipped_recipe_names_catalogue_tasks_of_its_harness():
    cat = nel.catalogue()
    for harness, r in recipes.recipes().items():
        assert harness in cat.harness_images, harness
        named = set(r.offline) | set(r.unavailable)
        assert {t for (h, t) in cat.tasks if h == harness} >= named, harness
        assert not set(r.offline) & set(r.unavailable), harness
        assert r.requirements.is_file(), r.folder
        assert r.image.startswith("launcher-") and not r.image.startswith("nvcr.io"), r.image
