"""The Slurm executor: one array job per invocation, each task the same container as on the local executor.

config.py its settings, executor.py the executor (plan, submit, status, kill), render.py the sbatch
scripts, queue.py what squeue/sacct say, deployments.py servers in srun steps, shell.py here or over SSH.
This face re-exports what other modules and plugins import from `launcher.executors.slurm`.
"""

from launcher.executors.slurm.config import SlurmConfig, node_python, submits_over_ssh
from launcher.executors.slurm.executor import (
    ELEMENT,
    SlurmExecutor,
    proxy_only_env,
    slurm_proxy,
    slurm_server,
)
from launcher.executors.slurm.queue import EXPORT_JOBS, JOBS, SLURM_ENDED, SLURM_LIVE
from launcher.executors.slurm.render import (
    BATCH,
    EXPORT_BATCH,
    render_export_sbatch,
    render_sbatch,
    site_options,
)

__all__ = [
    "BATCH",
    "ELEMENT",
    "EXPORT_BATCH",
    "EXPORT_JOBS",
    "JOBS",
    "SLURM_ENDED",
    "SLURM_LIVE",
    "SlurmConfig",
    "SlurmExecutor",
    "node_python",
    "proxy_only_env",
    "render_export_sbatch",
    "render_sbatch",
    "site_options",
    "slurm_proxy",
    "slurm_server",
    "submits_over_ssh",
]
