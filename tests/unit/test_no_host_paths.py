"""No tracked file depends on a folder that exists only on the machine where someone made it by hand.

A test that read NEL from a hand-made venv under the workspace passed wherever that folder existed and
failed on every new machine. Allowed: the repository itself, the documented caches (launcher/testing/
caches.py: `~/.cache/launcher/...`), temporary and system folders, and paths inside images (Dockerfiles).
Refused: any other path under the repository's parent top folder (e.g. a sibling of the clone), under
the home folder, or under /root.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from launcher.testing import caches

REPO = Path(__file__).resolve().parents[2]
PATH = re.compile(r"(?<![\w.~/-])(/[\w.+-]+(?:/[\w.+-]+)+)")
SYSTEM = (
    "/tmp",
    "/var/tmp",
    "/usr",
    "/etc",
    "/dev",
    "/proc",
    "/sys",
    "/bin",
    "/sbin",
    "/lib",
    "/run",
    "/var",
)


def suspect_roots() -> list[str]:
    """Top folders that hold one machine's hand-made state: the clone's parent's top folder, home, /root."""
    roots = {"/root", str(Path.home())}
    top = "/" + REPO.parts[1] if len(REPO.parts) > 2 else None
    if top and top not in SYSTEM:
        roots.add(top)
    return sorted(r for r in roots if r not in ("/", *SYSTEM))


# Paths inside containers that look like a host's home: the Hugging Face cache of NEL's serving images.
CONTAINER_PATHS = ("/root/.cache/huggingface",)


def allowed(path: str) -> bool:
    inside = (str(REPO), str(caches.root()), str(Path.home() / ".cache" / "launcher"), *CONTAINER_PATHS)
    return any(path == a or path.startswith(a + "/") for a in inside)


def offending(text: str, roots: list[str]) -> list[str]:
    found = []
    for match in PATH.finditer(text):
        path = match.group(1)
        if any(path.startswith(r + "/") for r in roots) and not allowed(path):
            found.append(path)
    return found


def tracked() -> list[Path]:
    names = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    files = [REPO / n for n in names.decode().split("\0") if n]
    return [
        f
        for f in files
        if f.is_file() and not f.name.startswith("Dockerfile") and f.parts[len(REPO.parts)] != "docs"
    ]


def test_no_tracked_file_names_a_hand_made_host_folder():
    roots = suspect_roots()
    bad = []
    for f in tracked():
        try:
            text = f.read_text()
        except UnicodeDecodeError:
            continue
        bad += [f"{f.relative_to(REPO)}: {p}" for p in offending(text, roots)]
    assert not bad, "absolute host paths outside the repository and the documented caches:\n" + "\n".join(bad)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ('glob.glob("/hand/nel-venv/lib/python3*/site-packages")', ["/hand/nel-venv/lib/python3"]),
        ("cache = /home/me/.local/share/x", ["/home/me/.local/share/x"]),
        ("ok: /tmp/x /usr/bin/env /results/out", []),
        (f"ok: {caches.root()}/wheels", []),
    ],
)
def test_the_check_finds_what_it_guards_against(text, found):
    assert offending(text, ["/home/me", "/hand"]) == found  # roots of an imagined machine
