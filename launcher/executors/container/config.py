"""The execution keys every container executor has (local and slurm extend this dataclass)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from launcher.config.values import show
from launcher.errors import ConfigError


@dataclass(frozen=True)
class ContainerConfig:
    output_dir: str = "results"  # invocation folders are created under it (relative to the current directory)
    max_parallel: int = 4  # tasks run at once; each task also bounds its own concurrent requests
    network: str = "host"  # host networking: an endpoint on 127.0.0.1 works from the container as is
    extra_docker_args: tuple[str, ...] = ()  # appended to every `docker run`, before the image
    stop_grace: int = 5  # seconds between SIGTERM and SIGKILL when a task is killed
    user: str | None = None  # container user; default: the uid:gid running the task, so results are yours
    pull: Literal["missing", "never"] = "missing"  # pull an image that is not on this machine before starting
    # a catalogue task's image when neither its container nor harness_images names one (catalog.image_choice)
    catalog_images: Literal["auto", "nvidia", "local"] = "auto"

    def validate(self) -> None:
        """What the field types alone do not say (the boundary calls this); raises ConfigError."""
        if ":" in self.output_dir:
            raise ConfigError(
                "execution.output_dir",
                f"{show(self.output_dir)} contains ':', which docker reads as a mount separator",
                "Choose a folder without ':'",
            )
        if self.stop_grace < 0:
            raise ConfigError("execution.stop_grace", f"must be 0 or more seconds, got {self.stop_grace}")
        for i, arg in enumerate(self.extra_docker_args):
            if not isinstance(arg, str):
                raise ConfigError(f"execution.extra_docker_args[{i}]", "expected a string")
