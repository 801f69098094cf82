"""Executors are found through the `launcher.executors` entry-point group; core knows none by name."""

from __future__ import annotations

import sys
from functools import lru_cache

from launcher.errors import LauncherError
from launcher.executors.base import Executor

GROUP = "launcher.executors"


@lru_cache(maxsize=1)
def executors() -> dict[str, type[Executor]]:
    """Name -> executor class. A broken plugin is skipped with a warning; a duplicate name is an error."""
    from importlib.metadata import entry_points

    found: dict[str, type[Executor]] = {}
    origins: dict[str, str] = {}
    for ep in entry_points(group=GROUP):
        try:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, Executor)):
                raise TypeError("not a launcher Executor subclass")
            if cls.name != ep.name:
                raise TypeError(f"class name attribute {cls.name!r} differs from the entry point name")
        except Exception as err:  # a third-party plugin must not break the launcher
            print(f"warning: skipping executor plugin {ep.name!r} ({ep.value}): {err}", file=sys.stderr)
            continue
        if ep.name in found and origins[ep.name] != ep.value:
            raise LauncherError(
                f"two executors are named {ep.name!r}: {origins[ep.name]} and {ep.value}; uninstall one"
            )
        found[ep.name], origins[ep.name] = cls, ep.value
    return dict(sorted(found.items()))


def get(name: str) -> type[Executor]:
    available = executors()
    if name not in available:
        raise LauncherError(
            f"execution: unknown executor {name!r}. Available: {', '.join(available) or 'none installed'}"
        )
    return available[name]
