"""A sharded task's containers and files (`shards: N`). Pure.

Each shard is the task's own container with the run config's `shard` set, in `<task>/shards/<k>/` (its
run.sh, results/ checkpoint, logs and stage records, job `<job id>.<k>`). The task's own run.sh merges
once every shard succeeded: the task's image runs `launcher.harness merge` over the shards' results
(mounted read-only), writing the task's results/ as an unsharded run would. A shard that did not succeed
leaves the task FAILED, naming the shards; resuming re-runs only those, then merges.
"""

from __future__ import annotations

import shlex
from dataclasses import replace

from launcher.errors import ConfigError
from launcher.executors.container.render import ContainerSpec
from launcher.harness.contract import EXIT_SHARD_ERRORS, RunConfig
from launcher.model import PlannedJob
from launcher.proxy.wiring import task_url
from launcher.store import events
from launcher.store.layout import EVENTS, OUTPUT_LOG, RESULTS, RUN_CONFIG_FILE

HARNESS = "launcher.harness"
MOUNT = "/shards"  # where the merge container sees the shard folders


def merge_argv(command: tuple[str, ...]) -> tuple[str, ...] | None:
    """The merge command of a task whose command runs our harness (`... launcher.harness [--tasks M] run
    ...`): the same interpreter and task module, `merge` instead of `run`; None for any other command."""
    if HARNESS not in command:
        return None
    at = command.index(HARNESS)
    if "run" not in command[at:]:
        return None
    return (*command[: command.index("run", at)], "merge", "--config", f"/{RUN_CONFIG_FILE}")


def refuse(key: str, task: str, command: tuple[str, ...], catalogue: bool) -> ConfigError:
    why = (
        f"{task} is a NEL catalogue task: its harness image evaluates the whole benchmark and takes no slice"
        if catalogue
        else f"{task} runs its own command ({shlex.join(command[:4])}...), which reads no shard of the run "
        "config"
    )
    return ConfigError(
        f"{key}.shards",
        f"cannot split this task: {why}",
        "Remove shards here; built-ins and tasks run by `python -m launcher.harness run` can be sharded",
    )


def shard_files(job: PlannedJob, run_config: str, ports: list[int | None]) -> dict[str, str]:
    """Each shard's run_config.json (relative to the invocation folder): the task's, with its shard and,
    behind a proxy per Slurm array element, its own element's proxy port (`ports`, None: no proxy)."""
    config = RunConfig.from_json(run_config)
    return {
        f"{part.folder}/{RUN_CONFIG_FILE}": replace(
            config, shard=(k, job.shards), url=config.url if port is None else task_url(config.url, port)
        ).to_json()
        for k, (part, port) in enumerate(zip(job.parts, ports, strict=True))
    }


def shard_containers(job: PlannedJob, task: ContainerSpec) -> list[ContainerSpec]:
    """The task's container once per shard: its own job id, folder and container name."""
    return [
        replace(task, job_id=part.job_id, folder=part.folder, name=f"{task.name}-{k}")
        for k, part in enumerate(job.parts)
    ]


def merge_container(
    job: PlannedJob, task: ContainerSpec, merge: tuple[str, ...], folder: str
) -> ContainerSpec:
    """The merge step: the task's image and variables, no host variable (it sends no request), the shard
    folders read-only, no sandbox. `task` is the container before the config's hooks and mounts."""
    parts = [f"{MOUNT}/{k}/{RESULTS}" for k in range(job.shards)]
    return replace(
        task,
        command=(*merge, *parts),
        env_from_host={},
        mounts=(f"{folder}/{job.folder}/shards:{MOUNT}:ro",),
        sandbox=False,
    )


def merge_gate(job: PlannedJob) -> list[str]:
    """run.sh lines before the merge: every shard's last attempt must have ended with its samples recorded
    (exit 0, or EXIT_SHARD_ERRORS: some errored, which the merge counts), else the task ends FAILED naming
    the shards that did not (their logs: `launcher logs <job id>.<k>`)."""
    shards = " ".join(str(k) for k in range(job.shards))
    reason = (
        f"shard(s)$failed of {job.shards} did not succeed (launcher logs {job.job_id}.K shows shard K); "
        "launcher resume re-runs them and merges"
    )
    return [
        "failed=",
        f"for k in {shards}; do",
        f"  last=$(grep -E '^({events.STARTED}|{events.EXITED}) ' shards/$k/{EVENTS} 2>/dev/null"
        " | tail -n 1 | cut -d' ' -f1,3)",
        f'  case "$last" in "{events.EXITED} 0" | "{events.EXITED} {EXIT_SHARD_ERRORS}") ;;',
        '    *) failed="$failed $k" ;;',
        "  esac",
        "done",
        'if [ -n "$failed" ]; then',
        f'  echo "error: {reason}" >> {OUTPUT_LOG}',
        "  " + events.shell(events.EXITED, f"1 {reason}"),
        "  exit 1",
        "fi",
    ]
