"""launcher.catalog.builds: what a recipe's build takes, decided without Docker; and `launcher images`' bad
input. (The builds themselves run in tests/integration/test_offline_*.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.catalog import builds, recipes
from launcher.errors import ConfigError

RECIPE = """\
harness: h
image: launcher-nel-h:1-1
env: {B: "two words", A: 1}
data:
  - {name: one, run: "true", mount: /data/one}
  - {name: two, run: "true", mount: /data/two}
"""


def recipe_in(tmp_path: Path, text: str = RECIPE) -> recipes.Recipe:
    folder = tmp_path / "recipes" / "h"
    folder.mkdir(parents=True)
    (folder / "recipe.yaml").write_text(text)
    (folder / "requirements.txt").write_text("nemo-evaluator==0.2.8\n")
    return recipes.load(folder / "recipe.yaml")


def test_the_digest_changes_with_any_file_and_ignores_bytecode(tmp_path):
    r = recipe_in(tmp_path)
    first = builds.digest(r.folder)
    (r.folder / "__pycache__").mkdir()
    (r.folder / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    assert builds.digest(r.folder) == first
    (r.folder / "prepare.py").write_text("print(1)\n")
    second = builds.digest(r.folder)
    (r.folder / "prepare.py").write_text("print(2)\n")
    assert len({first, second, builds.digest(r.folder)}) == 3


@pytest.mark.parametrize(
    ("env", "tail"),
    [
        ({}, "CMD x\n"),
        ({"A": "1"}, 'CMD x\nENV A="1"\n'),
        ({"B": "two words", "A": "1"}, 'CMD x\nENV A="1" B="two words"\n'),
    ],
)
def test_the_recipe_env_is_appended_to_the_shared_dockerfile(env, tail):
    assert builds.dockerfile("FROM b\nCMD x\n", env) == "FROM b\n" + tail


def test_the_context_is_the_shared_dockerfile_and_the_pins(tmp_path):
    r = recipe_in(tmp_path)
    ctx = builds.context(r)
    assert set(ctx) == {"Dockerfile", "requirements.txt"}
    assert ctx["Dockerfile"].startswith(recipes.DOCKERFILE.read_text().rstrip())
    assert ctx["Dockerfile"].endswith('ENV A="1" B="two words"\n')
    assert ctx["requirements.txt"] == "nemo-evaluator==0.2.8\n"


@pytest.mark.parametrize(
    ("links", "want"),
    [
        (None, ["download", "-q", "--dest", "/w"]),
        ("/cache", ["download", "-q", "--no-index", "--find-links", "/cache", "--dest", "/w"]),
    ],
)
def test_wheels_are_for_the_image_python_and_binary_only(links, want):
    args = builds.pip_download(Path("/r.txt"), Path("/w"), Path(links) if links else None)
    assert args == [*want, "--only-binary=:all:", "--python-version", "3.11", "-r", "/r.txt"]


@pytest.mark.parametrize(
    ("complete", "force", "ready", "todo"),
    [
        ({}, False, {"one": False, "two": False}, ["one", "two"]),
        ({"one": "DIGEST"}, False, {"one": True, "two": False}, ["two"]),
        ({"one": "DIGEST", "two": "DIGEST"}, False, {"one": True, "two": True}, []),
        ({"one": "DIGEST", "two": "DIGEST"}, True, {"one": True, "two": True}, ["one", "two"]),
        ({"one": "stale", "two": "DIGEST"}, False, {"one": False, "two": True}, ["one"]),
    ],
)
def test_a_data_cache_is_ready_when_complete_holds_the_recipe_digest(
    tmp_path, monkeypatch, complete, force, ready, todo
):
    monkeypatch.setenv("LAUNCHER_IMAGE_DATA", str(tmp_path / "data"))
    r = recipe_in(tmp_path)
    for name, value in complete.items():
        folder = tmp_path / "data" / "h" / name
        folder.mkdir(parents=True)
        (folder / builds.COMPLETE).write_text(value.replace("DIGEST", builds.digest(r.folder)) + "\n")
    assert builds.data_ready(r) == ready
    assert [d.name for d in builds.stale(r, force)] == todo


@pytest.mark.parametrize(
    ("names", "want"),
    [
        (["all"], ["a", "b"]),
        (["b"], ["b"]),
        (["b", "a", "b"], ["b", "a"]),
    ],
)
def test_choose_names_recipes(names, want):
    assert builds.choose(names, ["a", "b"]) == want


@pytest.mark.parametrize("names", [["c"], ["a", "c"], [], ["all", "a"]])
def test_choose_refuses_what_has_no_recipe_naming_the_choices(names):
    with pytest.raises(ConfigError, match="allowed: all, a, b"):
        builds.choose(names, ["a", "b"])


def test_images_build_of_an_unknown_harness_is_one_line_exit_2(cli):
    proc = cli("images", "build", "nope")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "error: HARNESS: nope is not a harness with an image recipe. allowed: all, "
        + ", ".join(recipes.recipes())
    ]
