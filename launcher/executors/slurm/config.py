"""The Slurm executor's settings (`execution/slurm`): where jobs run, how they are submitted (here or over
SSH on a login node), and which python runs the proxy and auto-export on the nodes."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Literal

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
    # The python on the cluster's nodes that runs the endpoint proxy and auto-export (`-m launcher.proxy`,
    # `-m launcher.export`; needs `launcher[proxy]` installed there). Default: the submitting python when
    # submitting on this machine; over SSH it must be given (or the proxy turned off).
    launcher_python: str | None = None


def submits_over_ssh(cfg: SlurmConfig) -> bool:
    return cfg.hostname not in (None, "", "localhost")


def node_python(cfg: SlurmConfig, proxy: bool, auto_export: bool) -> str:
    """The interpreter that runs `-m launcher.proxy` / `-m launcher.export` on the nodes: execution.
    launcher_python, else this python when the jobs run on this machine's cluster (it is on the shared
    file system as far as this one-machine default goes). Over SSH nothing here can be guessed."""
    if cfg.launcher_python or not submits_over_ssh(cfg):
        return cfg.launcher_python or sys.executable
    if proxy:
        raise ConfigError(
            "execution.launcher_python",
            "missing: over SSH each Slurm job starts the endpoint proxy on its node, which needs the "
            "cluster's python with launcher[proxy] installed",
            "Set execution.launcher_python=/path/on/the/cluster/bin/python, or "
            "target.api_endpoint.proxy=false (the task containers then get the key)",
        )
    if auto_export:
        raise ConfigError(
            "execution.launcher_python",
            "missing: over SSH auto-export runs as a Slurm job on the cluster, which needs the cluster's "
            "python with launcher installed",
            "Set execution.launcher_python=/path/on/the/cluster/bin/python, or drop "
            "execution.auto_export and run `launcher export` after the run",
        )
    return ""  # unused: neither the proxy nor auto-export runs
