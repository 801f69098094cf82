"""Where the development setup keeps what is slow to make (wheels, venvs, datasets, test keys).

The one owner of these paths: the Makefile (`python3 launcher/testing/caches.py NAME`), the build
scripts, the tests and bench all ask here, so a test never depends on a folder someone made by hand.
Standard library only: the Makefile runs this file before any venv exists.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

NEL_VERSION = "0.2.6"
NE_VERSION = "0.3.0"  # nemo-evaluator with `nel gate` (Python >= 3.12)


def root() -> Path:
    """`$XDG_CACHE_HOME/launcher`, else `~/.cache/launcher`."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "launcher"


def nel_venv() -> Path:
    """NeMo Evaluator Launcher 0.2.6's venv (`make nel-venv`); LAUNCHER_NEL_VENV chooses another."""
    return Path(os.environ.get("LAUNCHER_NEL_VENV") or root() / f"nel-{NEL_VERSION}" / "venv")


def nel_configs() -> Path | None:
    """NEL's packaged configs folder (deployment/, execution/, ...) in that venv, or None if not installed."""
    found = sorted(nel_venv().glob("lib/python3*/site-packages/nemo_evaluator_launcher/configs"))
    return found[0] if found else None


def ne_venv() -> Path:
    """NeMo Evaluator 0.3.0's venv with `nel gate` (`make ne-venv`, bench/gate.py); LAUNCHER_NE_VENV
    chooses another."""
    return Path(os.environ.get("LAUNCHER_NE_VENV") or root() / f"ne-{NE_VERSION}")


def sshd() -> Path:
    """The test SSH server's config and keys (`make sshd`); LAUNCHER_TEST_SSH_DIR chooses another."""
    return Path(os.environ.get("LAUNCHER_TEST_SSH_DIR") or root() / "sshd")


PATHS = {"root": root, "nel_venv": nel_venv, "ne_venv": ne_venv, "sshd": sshd}

if __name__ == "__main__":
    name = sys.argv[1] if len(sys.argv) == 2 else ""
    if name not in PATHS:
        sys.exit(f"usage: caches.py {{{'|'.join(PATHS)}}}")
    print(PATHS[name]())
