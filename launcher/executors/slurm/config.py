"""The Slurm executor's settings (`execution/slurm`): where jobs run, how they are submitted (here or over
SSH on a login node), and how the proxy and auto-export run on the nodes (an image, or a python there)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from launcher.catalog import TOOLS_IMAGE
from launcher.config.values import is_image_reference, show
from launcher.errors import ConfigError
from launcher.executors.container.config import ContainerConfig


@dataclass(frozen=True)
class SlurmConfig(ContainerConfig):
    output_dir: str = "results"  # on a shared file system: the nodes write results there
    max_parallel: int = 8  # array elements running at once (--array=...%N)
    partition: str | None = None
    account: str | None = None
    time_limit: str = "04:00:00"  # per task (array element)
    nodes: int = 1
    gpus_per_node: int = 0
    extra_sbatch: tuple[str, ...] = ()  # more "#SBATCH ..." options, e.g. "--qos=high"
    container_runtime: Literal["docker", "pyxis"] = "docker"  # pyxis: srun --container-image
    hostname: str | None = None  # login node reached over SSH; None or localhost: submit on this machine
    username: str | None = None  # SSH user (default: the SSH configuration's)
    port: int = 22  # SSH port
    ssh_options: tuple[str, ...] = ()  # extra `ssh -o` options, e.g. ["IdentityFile=~/.ssh/cluster"]
    remote_output_dir: str | None = None  # output_dir on the cluster (default: the same path)
    # The launcher's own steps on the nodes (the endpoint proxy, auto-export) run from this image through
    # container_runtime, so the cluster needs nothing installed (`make tools-image` builds it; with pyxis,
    # push it to a registry the nodes reach and name it here) ...
    launcher_image: str = TOOLS_IMAGE
    # ... or, when set, with this python on the nodes (launcher[proxy] installed there), no container.
    launcher_python: str | None = None

    def validate(self) -> None:
        super().validate()
        if not is_image_reference(self.launcher_image):
            raise ConfigError(
                "execution.launcher_image",
                f"{show(self.launcher_image)} is not an image reference",
                "Write [registry/]name[:tag][@digest], lowercase name, e.g. launcher-tools:0.1.0",
            )
        if self.catalog_images == "local" and self.container_runtime != "docker":
            raise ConfigError(
                "execution.catalog_images",
                f"local runs images built in Docker, and container_runtime {self.container_runtime} does not "
                "read Docker's images",
                "Use container_runtime docker, or name an image pyxis can import in harness_images",
            )
        remote = self.remote_output_dir
        if remote is not None and not remote.startswith("/"):
            raise ConfigError(
                "execution.remote_output_dir",
                f"{show(remote)} is not an absolute path (the cluster does not expand ~ or know our folder)",
                "Give the full path on the cluster, e.g. /home/me/results",
            )
        if remote is not None and ":" in remote:
            raise ConfigError("execution.remote_output_dir", "contains ':'", "Choose a folder without ':'")
        for name in ("hostname", "username"):
            value = getattr(self, name)
            if isinstance(value, str) and (value.startswith("-") or not value.strip() or " " in value):
                raise ConfigError(
                    f"execution.{name}",
                    f"{show(value)} would be read by ssh as an option or is not a {name}",
                    f"Give a plain {name} (not starting with '-')",
                )


def submits_over_ssh(cfg: SlurmConfig) -> bool:
    return cfg.hostname not in (None, "", "localhost")
