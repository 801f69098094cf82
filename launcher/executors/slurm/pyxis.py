"""Slurm's pyxis runtime (`execution.container_runtime: pyxis`): each task's container as an `srun` step
in an enroot container instead of `docker run`."""

from __future__ import annotations

import shlex
from dataclasses import replace

from launcher.errors import ConfigError
from launcher.executors.container.render import ContainerSpec, TaskLaunch, with_host_env

# What a pyxis step needs from the job's environment besides the task's variables. PATH: slurmstepd looks
# the command up in the step's environment ("execve(): No such file or directory" without it, Slurm
# 22.05); the rest pyxis hands on to enroot from the job's environment (HOME: enroot's data and config
# paths; NVIDIA/pyxis pyxis_slurmstepd.c `enroot_want_env`, commit a35027c). srun --export always adds
# SLURM_* (srun(1) --export); Slurm adds TMPDIR and SLURMD_NODENAME itself. Never a secret.
PYXIS_STEP_NAMES = frozenset(
    {
        "PATH",
        "HOME",
        "TERM",
        "ENROOT_CONFIG_PATH",
        "NVIDIA_VISIBLE_DEVICES",
        "NVIDIA_DRIVER_CAPABILITIES",
        "MELLANOX_VISIBLE_DEVICES",
        "MELLANOX_MOUNT_DRIVER",
    }
)

SRUN_EXPORT_WORDS = frozenset({"ALL", "NONE"})  # srun --export's own words: never a variable's name there


def for_pyxis(c: ContainerSpec) -> ContainerSpec:
    """The container with its literal variables that pyxis would also hand to enroot (PYXIS_STEP_NAMES:
    the task's HOME=/tmp made enroot read its config and hooks from /tmp/.config/enroot, which another
    user can create) set inside the container instead: `env NAME=value command`, so srun's own
    environment keeps the job's (the user's) values. Host-passed ones are refused in PyxisLaunch.check."""
    inside = {k: v for k, v in c.env.items() if k in PYXIS_STEP_NAMES}
    if not inside:
        return c
    command = ("env", *(f"{k}={v}" for k, v in sorted(inside.items())), *c.command)
    env = {k: v for k, v in c.env.items() if k not in inside}
    return replace(c, env=env, command=command)


def pyxis_mounts(results_dir: str, mounts: tuple[str, ...]) -> None:
    """pyxis's --container-mounts is `src:dst[:flags]` joined by `,`, with no escape for either: a path
    holding one would mount something else (or fail on the node), so it is refused here."""
    if any(c in results_dir for c in ",:"):
        raise ConfigError(
            "execution.output_dir",
            f"{results_dir!r} holds ',' or ':', which pyxis's --container-mounts cannot express",
            "Choose an output_dir without ',' and ':' for container_runtime=pyxis",
        )
    for mount in mounts:
        if "," in mount:
            raise ConfigError(
                "execution.mounts",
                f"{mount!r} holds ',', which pyxis's --container-mounts cannot express",
                "Mount a path without ','",
            )


def pyxis_srun_argv(c: ContainerSpec, results_dir: str) -> list[str]:
    """The task as a Slurm step in an enroot container (pyxis); variables are passed by name.

    pyxis sets every variable of the step's environment in the container (README, --container-env), and
    a step gets the whole job environment by default (srun --export=ALL; sbatch exported the submitting
    shell's): so `--export` names exactly the task's variables and what the step needs (PYXIS_STEP_NAMES).
    A name that is not set is left out by Slurm. The values come from srun's own environment (run.sh sets
    them on this one command), so none is in the argv. `c` is for_pyxis's: no task variable takes a name
    of PYXIS_STEP_NAMES there."""
    names = sorted({*c.env, *c.env_from_host})
    argv = [
        "srun",
        "--ntasks=1",
        f"--export={','.join(sorted({*names, *PYXIS_STEP_NAMES}))}",
        f"--container-image={c.image}",
        f"--container-mounts={','.join([f'{results_dir}:/results', *c.mounts])}",
        "--no-container-mount-home",
    ]
    if names:
        argv.append(f"--container-env={','.join(names)}")
    return [*argv, *c.command]


class PyxisLaunch(TaskLaunch):
    runs_docker = False  # no docker client to stop; no sandbox container either

    def command(self, c: ContainerSpec, invocation_id: str, results_dir: str) -> str:
        c = for_pyxis(c)
        literals = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(c.env.items()))
        return f"{literals} {with_host_env(c, pyxis_srun_argv(c, results_dir))}".strip()

    def check(self, c: ContainerSpec, key: str, results_dir: str) -> None:
        pyxis_mounts(results_dir, c.mounts)
        if c.sandbox:
            raise ConfigError(
                f"{key}.name",
                f"{c.task} runs generated code in a sandbox container, which needs the docker runtime",
                "Use execution.container_runtime=docker for this task",
            )
        enroot = sorted(PYXIS_STEP_NAMES & c.env_from_host.keys())
        if enroot:  # a host value under a name pyxis also hands to enroot (HOME, PATH refused before)
            raise ConfigError(
                f"{key}.env_vars.{enroot[0]}",
                "is a name pyxis also hands to enroot from srun's environment (enroot's paths and devices)",
                "Give the variable another name, or set it with lit: (then it is set inside the container)",
            )
        words = sorted(SRUN_EXPORT_WORDS & {*c.env, *c.env_from_host})
        if words:  # `--export=ALL,...` would hand the whole job environment to the container again
            raise ConfigError(
                f"{key}.env_vars.{words[0]}",
                "is a word of srun --export (ALL, NONE); container_runtime=pyxis passes variables by name",
                "Give the variable another name",
            )


PYXIS = PyxisLaunch()
