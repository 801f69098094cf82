"""Pure rendering of a task's run.sh: the container as `docker run`, or as the scheduler's TaskLaunch says.

Every value is quoted from an argv list; no templates. Stage records are written with store.events.
"""

from __future__ import annotations

import shlex
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from launcher import __version__
from launcher.store import events
from launcher.store.layout import (
    EVENTS,
    LABEL_FOLDER,
    LABEL_INVOCATION,
    LABEL_JOB,
    LABEL_TASK,
    OUTPUT_LOG,
    RESULTS,
)

EXIT_MISSING_VAR = 78  # run.sh's exit code when a host variable it passes on is unset


# The container user when none is configured: whoever runs run.sh, worked out when it runs (on a cluster
# node too), so the results belong to that user. The one value rendered for the shell to expand.
class Expanded(str):
    """A value rendered for the shell to expand: only the launcher's own placeholders are of this type;
    every value from a config is a plain str and is quoted literally, whatever it contains."""


RUNTIME_USER = Expanded("$(id -u):$(id -g)")

# Container variables that would also change how the host shell runs `docker` (its lookup, engine,
# config or libraries), since run.sh passes values as `NAME="$HOST_VAR" docker run -e NAME`.
HOST_CLIENT_NAMES = frozenset({"PATH", "HOME", "IFS", "BASH_ENV", "ENV", "SHELLOPTS", "BASHOPTS", "CDPATH"})
HOST_CLIENT_PREFIXES = ("DOCKER_", "LD_", "BASH_FUNC_")


def changes_the_host_client(name: str) -> bool:
    return name in HOST_CLIENT_NAMES or name.startswith(HOST_CLIENT_PREFIXES)


# Names a `NAME=... command` prefix in our scripts must not take: the scripts' own variables (`stopping`
# set for the `container` function made run.sh exit 143 without running docker) and bash's readonly or
# special ones (`UID=...` fails "readonly variable" and the value is not passed; RANDOM, SECONDS,
# LINENO, ... change meaning). bash 5.2 manual, "Shell Variables".
SCRIPT_VARIABLES = frozenset(
    {
        # run.sh, run_all.sh, sbatch.sh and the server lines
        "last", "stopping", "rc", "var", "client", "reason", "deadline", "status", "pid", "pids", "task",
        "tasks", "proxy_pid", "proxy_port", "server_pid", "queued_at", "stops", "n", "name",
        "launcher_nodes", "launcher_ips", "aux_ranks", "aux_pids", "aux_nodes", "aux_names",
        # bash: readonly, or set by the shell itself
        "UID", "EUID", "PPID", "GROUPS", "BASHPID", "BASHOPTS", "SHELLOPTS", "RANDOM", "SRANDOM",
        "SECONDS", "LINENO", "EPOCHREALTIME", "EPOCHSECONDS", "HISTCMD", "PIPESTATUS", "DIRSTACK",
        "FUNCNAME", "OPTIND", "OPTARG", "OPTERR", "REPLY", "PWD", "OLDPWD", "SHLVL", "COPROC", "MAPFILE",
        "POSIXLY_CORRECT", "FUNCNEST", "GLOBIGNORE", "TIMEFORMAT", "TMOUT", "PS4",
    }
)  # fmt: skip


def script_variable(name: str) -> bool:
    return name in SCRIPT_VARIABLES or name.startswith("BASH")


def shell_join(argv: list[str]) -> str:
    return " ".join(f'"{a}"' if isinstance(a, Expanded) else shlex.quote(a) for a in argv)


@dataclass(frozen=True)
class ContainerSpec:
    job_id: str
    task: str
    folder: str  # task folder, relative to the invocation folder
    name: str  # container name
    image: str
    command: tuple[str, ...]
    env_from_host: dict[str, str]  # container variable -> host variable name (value read at run time)
    env: dict[str, str]  # container variable -> literal, non-secret value
    network: str
    user: str | None
    extra_args: tuple[str, ...]
    sandbox: bool = False  # generated code: then the sandbox container judges it, then the task scores
    mounts: tuple[str, ...] = ()  # more bind mounts, "host:container[:ro]" (checked in plan.bind)


def docker_run_argv(c: ContainerSpec, invocation_id: str, results_dir: str | None) -> list[str]:
    # The image was checked (or pulled) before anything started: never pull here.
    argv = ["docker", "run", "--rm", "--init", "--pull", "never", "--name", c.name]
    for key, value in (
        (LABEL_INVOCATION, invocation_id),
        (LABEL_JOB, c.job_id),
        (LABEL_TASK, c.task),
        (LABEL_FOLDER, results_dir),
    ):
        if value is not None:
            argv += ["--label", f"{key}={value}"]
    if c.network:
        argv += ["--network", c.network]
    if c.user:
        argv += ["--user", c.user]
    if results_dir is not None:
        argv += ["-v", f"{results_dir}:/results"]
    for mount in c.mounts:
        argv += ["-v", mount]
    for key, value in sorted(c.env.items()):
        argv += ["-e", f"{key}={value}"]
    for key in sorted(c.env_from_host):
        argv += ["-e", key]  # value comes from run.sh's environment for this one command
    return [*argv, *c.extra_args, c.image, *c.command]


class TaskLaunch(ABC):
    """How a scheduler runs a task's container: the one command of its run.sh (docker here; Slurm's
    pyxis in launcher/executors/slurm/pyxis.py)."""

    # run.sh runs a docker client: it stops its container once when signalled, removes a leftover of a
    # crashed attempt first, and can run the sandbox phases of a generated-code task.
    runs_docker: ClassVar[bool]

    @abstractmethod
    def command(self, c: ContainerSpec, invocation_id: str, results_dir: str) -> str:
        """The shell command that runs the container (host variables passed by name, never by value).

        Args:
            c: the task's container.
            invocation_id: labels the container.
            results_dir: the task's results folder, mounted at /results.
        """

    @abstractmethod
    def check(self, c: ContainerSpec, key: str, results_dir: str) -> None:
        """Raise ConfigError for a container this launch cannot run; `key`: the task's config key,
        `results_dir`: its results folder."""


class DockerLaunch(TaskLaunch):
    runs_docker = True

    def command(self, c: ContainerSpec, invocation_id: str, results_dir: str) -> str:
        return with_host_env(c, docker_run_argv(c, invocation_id, results_dir), CLIENT)

    def check(self, c: ContainerSpec, key: str, results_dir: str) -> None:
        pass  # docker runs every container the plan makes


DOCKER = DockerLaunch()


def render_run_sh(
    c: ContainerSpec,
    invocation_id: str,
    invocation_folder: str,
    launch: TaskLaunch = DOCKER,
    grace: int = 5,
    gate: list[str] | None = None,
) -> str:
    """`grace`: seconds the container has to stop when run.sh is signalled (execution.stop_grace).
    `gate`: shell lines run after the start record, before the container (they may record an exit)."""
    results_dir = f"{invocation_folder}/{c.folder}/{RESULTS}"
    q = shlex.quote
    host_vars = sorted(set(c.env_from_host.values()))
    run = launch.command(c, invocation_id, results_dir)
    lines = [
        "#!/usr/bin/env bash",
        f"# Task {comment(c.task)} (job {c.job_id}), generated by launcher {__version__}.",
        "# `bash run.sh` resumes it: a task that already succeeded is skipped, others continue from the",
        "# harness's checkpoint in results/. Output is appended to logs/output.log.",
        "set -u",
        'cd "$(dirname "$0")" || exit 1',
        f"last=$(grep -E '^({events.STARTED}|{events.EXITED}) ' {EVENTS} 2>/dev/null"
        " | tail -n 1 | cut -d' ' -f1,3)",
        f"if [ \"$last\" = '{events.EXITED} 0' ]; then",
        f"  echo {q(f'task {c.task} already succeeded; skipping')}",
        "  exit 0",
        "fi",
    ]
    lines.append(events.shell(events.STARTED, events.SCRIPT_PROCESS))
    if host_vars:
        lines += [
            f"for var in {' '.join(host_vars)}; do",
            '  if [ -z "${!var+set}" ]; then',
            "    " + events.shell(events.EXITED, f"{EXIT_MISSING_VAR} host variable $var is not set"),
            '    echo "error: host variable $var is not set; export it and run again" >&2',
            f"    exit {EXIT_MISSING_VAR}",
            "  fi",
            "done",
        ]
    if launch.runs_docker:
        names = [c.name, *([f"{c.name}-sandbox"] if c.sandbox else [])]
        lines += [
            *_client_lines(names, grace),
            f"docker rm -f {q(c.name)} >/dev/null 2>&1  # a leftover of a crashed attempt",
        ]
    lines += gate or []
    lines += [
        f"echo \"=== $(date '+%Y-%m-%d %H:%M:%S') start\" >> {OUTPUT_LOG}",
        f"{run} >> {OUTPUT_LOG} 2>&1 < /dev/null",
        "rc=$?",
    ]
    if c.sandbox:
        lines += _sandbox_lines(c, invocation_id, results_dir)
    lines += [events.shell(events.EXITED, "$rc"), 'exit "$rc"']
    return "\n".join(lines) + "\n"


def _sandbox_lines(c: ContainerSpec, invocation_id: str, results_dir: str) -> list[str]:
    """The harness's later phases (launcher.harness.contract.phases): the sandbox container judges the
    generated programs (no network, no variables, read-only results; its stdout is the verdicts file),
    then the task container scores. Each phase continues from what is already done."""
    from launcher.harness.contract import VERDICTS, phases, sandbox_argv

    score = phases(True)[2]
    sandbox_name = f"{c.name}-sandbox"
    labels = [(LABEL_INVOCATION, invocation_id), (LABEL_JOB, c.job_id), (LABEL_TASK, c.task)]
    argv = sandbox_argv(c.image, results_dir)
    at = argv.index("--init") + 1
    argv[at:at] = ["--name", sandbox_name, *[a for k, v in labels for a in ("--label", f"{k}={v}")]]
    scorer = ContainerSpec(**{**c.__dict__, "command": score.argv, "sandbox": False})
    q = shlex.quote
    return [
        'if [ "$rc" = 0 ]; then',
        f"  docker rm -f {q(sandbox_name)} >/dev/null 2>&1",
        f"  {CLIENT} {shlex.join(argv)} >> {q(f'{RESULTS}/{VERDICTS}')} 2>> {OUTPUT_LOG} < /dev/null",
        "  rc=$?",
        "fi",
        'if [ "$rc" = 0 ]; then',
        f"  {with_host_env(scorer, docker_run_argv(scorer, invocation_id, results_dir), CLIENT)}"
        f" >> {OUTPUT_LOG} 2>&1 < /dev/null",
        "  rc=$?",
        "fi",
    ]


def with_host_env(c: ContainerSpec, argv: list[str], runner: str = "") -> str:
    """`CONTAINER_VAR="$HOST_VAR" docker run -e CONTAINER_VAR`: the value is in no argv and no file.
    `runner`: a shell function the command runs under (CLIENT), given the same variables."""
    prefix = " ".join(f'{k}="${{{v}}}"' for k, v in sorted(c.env_from_host.items()))
    command = f"{runner} {shell_join(argv)}" if runner else shell_join(argv)
    return f"{prefix} {command}" if prefix else command


CLIENT = "container"  # run.sh's function that runs a `docker run` client (_client_lines)


def _client_lines(names: list[str], grace: int) -> list[str]:
    """run.sh's TERM/INT/HUP trap and the function its `docker run` clients run under. `launcher kill` (or a
    Ctrl-C) signals the scripts' process group; each client runs in its own session, out of reach: a
    signalled client forwards the signal to the container, so the harness would get a second SIGTERM from
    `docker stop`, and three signals make it exit at once, before the container's last lines (docker CLI
    28: "got 3 SIGTERM/SIGINTs, forcefully exiting"). Instead the trap stops the container once, with its
    grace, and the client copies its output to the log until it is gone; then run.sh records its exit."""
    stop = f"docker stop -t {int(grace)} {shlex.join(names)} >/dev/null 2>&1 &"
    once = '[ -n "$stopping" ] || { stopping=1; '
    return [
        "stopping=",
        # Once: run.sh may be signalled twice (its group and itself), the harness must get one SIGTERM.
        f"trap {shlex.quote(once + stop + ' }')} TERM INT HUP",
        f"{CLIENT}() {{  # a docker client in its own session, waited for until it has ended",
        '  [ -z "$stopping" ] || return 143',
        '  setsid "$@" &',
        "  local client=$!",
        '  wait "$client"',
        '  while kill -0 "$client" 2>/dev/null; do wait "$client"; done  # a trap ended the wait',
        '  wait "$client"  # its own status, also when it ended just as a trap ended the wait',
        "}",
    ]


def comment(text: str) -> str:
    """A value made safe for a one-line comment (no newline can end it)."""
    return repr(text) if not text.isprintable() else text
