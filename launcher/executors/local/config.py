"""The local executor's settings (`execution/local`): the container core's, nothing of its own yet."""

from __future__ import annotations

from dataclasses import dataclass

from launcher.executors.container.config import ContainerConfig


@dataclass(frozen=True)
class LocalConfig(ContainerConfig):
    pass
