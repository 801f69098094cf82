"""Evaluate one task on the api contract: skip finished samples, query with bounded concurrency,
checkpoint, score off the loop, aggregate. The pieces: `pool` (workers + SIGTERM), checkpoint, scoring,
aggregate; this module wires them and owns the exit codes."""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher.harness import aggregate, checkpoint, shards, sigterm
from launcher.harness.api import Context, Sample, Task, Unsupported, registry
from launcher.harness.contract import EXIT_SHARD_ERRORS, RUN_CONFIG, SANDBOX_UID, ConfigError, RunConfig
from launcher.harness.redact import Redactor

EXIT_FAILED = 1  # the task ran but too many samples errored, or it cannot run against this endpoint
EXIT_CONFIG = 2  # the run config is unusable
EXIT_IO = 74  # the results folder cannot be written (e.g. disk full); finished samples are kept
EXIT_SIGTERM = sigterm.EXIT  # stopped by SIGTERM; the checkpoint is intact and a restart continues it
STOPPED = "stopped by SIGTERM; finished samples are saved, a restart continues from them"
DEFAULT_TASKS = "launcher.harness.benchmarks"

_redact: Callable[[str], str] = str


def say(message: str) -> None:
    print(f"[harness {time.strftime('%H:%M:%S')}] {_redact(message)}", flush=True)


# ---- the run's inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    config: RunConfig
    task: Task
    module: str  # where the task was found (scoring workers import it again)
    items: list[Sample]  # after limit_samples
    loaded: int  # items the task has (before limit_samples)
    params: dict[str, Any]
    repeats: int
    results_dir: Path
    redact: Redactor
    shard: shards.Shard | None = None  # run only this shard's samples

    def all_jobs(self) -> Iterator[tuple[Sample, int, str]]:
        """(sample, repeat, key) for every sample of the task, in canonical order, made as consumed."""
        return (
            (s, r, aggregate.sample_key(s.id, r, self.repeats))
            for s in self.items
            for r in range(self.repeats)
        )

    def jobs(self) -> Iterator[tuple[Sample, int, str]]:
        """The samples this run requests: the task's, or its shard's."""
        return shards.select(self.all_jobs(), self.shard)

    @property
    def total(self) -> int:
        whole = len(self.items) * self.repeats
        return whole if self.shard is None else self.shard.size(whole)

    def keys(self) -> set[str]:
        return {k for _, _, k in self.jobs()}


def find_task(module: str, name: str) -> Task:
    try:
        tasks = registry(module)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"cannot load the task registry {module!r}: {err}") from None
    if name not in tasks:
        raise ConfigError(
            f"run config key 'task' is {name!r}; known tasks: {', '.join(sorted(tasks)) or 'none'}"
        )
    return tasks[name]


def load_run(results_dir: Path, module: str, config_path: Path | None = None) -> Run:
    path = config_path or results_dir / RUN_CONFIG
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}") from None
    config = RunConfig.from_json(text)
    global _redact
    redactor = Redactor(config.secret_names())
    _redact = redactor
    task = find_task(module, config.task)
    if config.endpoint_type not in task.endpoint_types:
        raise ConfigError(
            f"task {task.name} runs against {' or '.join(task.endpoint_types)} endpoints, not "
            f"{config.endpoint_type}; set target.api_endpoint.type accordingly or choose another task"
        )
    params = config.effective_params(task.defaults)
    repeats = int(params.get("repeats") or task.repeats)
    items = task.load()
    limit = params.get("limit_samples")
    return Run(
        config,
        task,
        module,
        items[:limit] if limit else items,
        len(items),
        params,
        repeats,
        results_dir,
        redactor,
        shards.Shard(*config.shard) if config.shard else None,
    )


# ---- the worker pool --------------------------------------------------------------------------------------


async def run_pool(jobs: Iterable, work: Callable[[Any], Awaitable[None]], workers: int) -> str:
    """`work(job)` for every job with `workers` at once. Returns "done", "sigterm" (SIGTERM arrived: the
    workers are cancelled at once) or "unsupported: <reason>" (a job raised api.Unsupported)."""
    jobs = iter(jobs)
    outcome = {"stop": None}
    stop = asyncio.Event()

    async def worker() -> None:
        for job in jobs:  # one shared iterator: each job goes to exactly one worker
            try:
                await work(job)
            except Unsupported as err:
                outcome["stop"] = outcome["stop"] or f"unsupported: {err}"
                stop.set()
                return

    def on_sigterm() -> None:  # in the signal handler: a flag (never lost) and a wake-up of the loop
        outcome["stop"] = "sigterm"
        loop.call_soon_threadsafe(stop.set)

    loop = asyncio.get_running_loop()
    tasks = [asyncio.ensure_future(worker()) for _ in range(workers)]
    waiter = asyncio.ensure_future(stop.wait())
    pending, failure = set(tasks), None
    with sigterm.diverted(on_sigterm):
        try:
            while pending and not stop.is_set() and failure is None:
                _, pending = await asyncio.wait(pending | {waiter}, return_when=asyncio.FIRST_COMPLETED)
                pending.discard(waiter)
                failed = [t for t in tasks if t.done() and not t.cancelled() and t.exception()]
                failure = failed[0].exception() if failed else None
        finally:
            for t in [*tasks, waiter]:
                t.cancel()
            await asyncio.gather(*tasks, waiter, return_exceptions=True)
    if failure is not None:
        raise failure
    return outcome["stop"] or "done"


# ---- one sample --------------------------------------------------------------------------------------------


def workers() -> int:
    return max(1, min(os.cpu_count() or 1, 4))  # scoring processes; requests wait on the endpoint, not here


def check_scores(task: Task, scores: dict) -> str | None:
    """Why these scores are unusable, or None."""
    missing = [m for m in task.metrics if m not in scores]
    if missing:
        return f"scorer returned no {', '.join(missing)}"
    bad = [m for m in task.metrics if not (isinstance(scores[m], float) and math.isfinite(scores[m]))]
    return f"scorer returned a non-finite {', '.join(bad)}" if bad else None


async def evaluate(
    run: Run, todo: Iterable[tuple[Sample, int, str]], count: int, outcomes: checkpoint.Outcomes
) -> str:
    """Request, score and checkpoint the `count` samples of `todo`; each outcome is also noted in
    `outcomes`, so the aggregate needs no second read of the checkpoint."""
    from launcher.harness.client import Client, RequestFailed, Settings
    from launcher.harness.model import EndpointModel, SampleModel
    from launcher.harness.scoring import ScorePool

    config, task, params = run.config, run.task, run.params
    api_key = os.environ.get(config.api_key_env) if config.api_key_env else None
    settings = Settings(
        config.url,
        config.model_id,
        api_key,
        params["parallelism"],
        params["request_timeout"],
        params["max_retries"],
        config.task,
        config.proxied,
    )
    scoring = task.program is None and task.score is not None
    pool = ScorePool(run.module, task.name, workers(), params["score_timeout"]) if scoring else None
    log = checkpoint.SampleLog(run.results_dir / checkpoint.SAMPLES, run.redact)
    done_before = run.total - count
    progress = checkpoint.Progress(run.results_dir / checkpoint.PROGRESS, run.total, done_before, 0)
    progress.update(force=True)

    async def one(model: EndpointModel, job: tuple[Sample, int, str]) -> None:
        sample, repeat, key = job
        view = SampleModel(model)
        # The question and the reference travel with the answer: reports and exports read samples alone.
        record: dict[str, Any] = {
            "key": key,
            "id": sample.id,
            "repeat": repeat,
            "input": sample.input,
            "target": sample.target,
        }
        if isinstance(sample.extra.get("category"), str):  # e.g. an MMLU subject: comparisons cluster by it
            record["category"] = sample.extra["category"]
        ctx = Context(params=params, repeat=repeat, endpoint_type=config.endpoint_type)
        try:
            output = await task.solve(sample, view, ctx)
            json.dumps(output)
            record.update(output=output, calls=view.calls, error=None)
        except (Unsupported, asyncio.CancelledError):
            raise
        except RequestFailed as err:
            record.update(calls=view.calls, error=str(err))
        except (TypeError, ValueError) as err:
            record.update(calls=view.calls, error=f"the task's record is not JSON: {err}")
        except Exception as err:  # a task bug costs its sample, not the run
            record.update(calls=view.calls, error=f"solve failed: {type(err).__name__}: {err}")
        if pool is not None and record["error"] is None:
            record.update(await score_one(pool, task, sample, record["output"]))
        log.append(record)
        outcomes.note(key, record["error"], record.get("scores"))
        progress.update(done_delta=1, error_delta=record["error"] is not None)

    started = time.perf_counter()
    try:
        async with Client(settings) as client:
            model = EndpointModel(client, config.endpoint_type, params)
            outcome = await run_pool(
                todo, lambda job: one(model, job), min(params["parallelism"], count) or 1
            )
    finally:
        if pool is not None:
            await pool.close()
        log.close()
    elapsed = time.perf_counter() - started
    finished = progress.done - done_before
    say(f"{finished} samples in {elapsed:.3f} s ({finished / max(elapsed, 1e-9):.1f}/s)")
    progress.update(force=True)
    return outcome


async def score_one(pool, task: Task, sample: Sample, output: dict) -> dict:
    try:
        scores, extracted = await pool.score(sample, output)
    except asyncio.CancelledError:
        raise
    except Exception as err:  # ScoringTimeout, ScoringFailed ("<the scorer's exception>: <message>")
        return {"error": f"scoring failed: {err}"}
    problem = check_scores(task, scores)
    if problem:
        return {"error": problem}
    return {"scores": scores, "extracted": extracted if isinstance(extracted, str | None) else str(extracted)}


# ---- commands ----------------------------------------------------------------------------------------------


def guarded(command: Callable[[], int]) -> int:
    try:
        return command()
    except sigterm.Terminated:  # outside the worker pool (which stops itself): unwound through every finally
        say(STOPPED)
        return EXIT_SIGTERM
    except ConfigError as err:
        say(f"error: {err}")
        return EXIT_CONFIG
    except OSError as err:
        say(
            f"error: cannot write {err.filename or 'the results folder'}: {err.strerror}; finished samples "
            "are kept, a restart continues from them once this is fixed"
        )
        return EXIT_IO


def run(config_path: Path, module: str) -> int:
    run_ = load_run(config_path.parent, module, config_path)
    # Only each sample's outcome is held (not its record), and the checkpoint is read once, heads only.
    outcomes = checkpoint.load_outcomes(run_.results_dir / checkpoint.SAMPLES, run_.keys())
    total = run_.total
    finished = sum(1 for key in outcomes if outcomes.succeeded(key))
    todo = (job for job in run_.jobs() if not outcomes.succeeded(job[2]))
    part = f", shard {run_.shard.index + 1} of {run_.shard.count}: {total} samples" if run_.shard else ""
    say(
        f"task {run_.task.name} ({run_.task.protocol}): {len(run_.items)} items x {run_.repeats} repeats"
        f"{part}, "
        f"{finished} samples already finished, {total - finished} to go; model {run_.config.model_id} "
        f"at {run_.config.url}"
    )
    if total > finished:
        outcome = sigterm.run(evaluate(run_, todo, total - finished, outcomes))
    else:  # killed after its last sample but before its last progress write: say it is all done
        checkpoint.Progress(run_.results_dir / checkpoint.PROGRESS, total, finished, 0).update(force=True)
        outcome = "done"
    if outcome == "sigterm":
        say(STOPPED)
        return EXIT_SIGTERM
    if outcome.startswith("unsupported: "):
        say(f"error: task {run_.task.name} cannot run against this endpoint: {outcome.partition(': ')[2]}")
        return EXIT_FAILED
    if run_.task.program is not None:
        return score_code(run_, required=False)
    return finish(run_, outcomes)


def score(results_dir: Path, module: str) -> int:
    """Score saved responses again (text tasks) or from the sandbox's verdicts (code); no request."""
    run_ = load_run(results_dir, module)
    if run_.task.program is not None:
        return score_code(run_, required=True)
    records = checkpoint.load_samples(results_dir / checkpoint.SAMPLES, run_.keys())
    by_id = {s.id: s for s in run_.items}

    async def rescore_all() -> None:
        from launcher.harness.scoring import ScorePool

        pool = ScorePool(run_.module, run_.task.name, workers(), run_.params["score_timeout"])
        try:
            scorable = [
                r for r in records.values() if r.get("error") is None and isinstance(r.get("output"), dict)
            ]
            outcomes = await asyncio.gather(
                *(score_one(pool, run_.task, by_id[r["id"]], r["output"]) for r in scorable)
            )
            for record, outcome in zip(scorable, outcomes, strict=True):
                record.pop("scores", None)
                record.update(outcome)
        finally:
            await pool.close()

    sigterm.run(rescore_all())
    checkpoint.rewrite_samples(results_dir / checkpoint.SAMPLES, list(records.values()), run_.redact)
    return finish(run_, records)


def score_code(run_: Run, required: bool) -> int:
    keys = run_.keys()
    records = checkpoint.load_samples(run_.results_dir / checkpoint.SAMPLES, keys)
    verdicts = checkpoint.read_verdicts(run_.results_dir / checkpoint.VERDICTS, keys)
    by_id = {s.id: s for s in run_.items}
    unexecuted = 0
    for record in records.values():
        record.pop("scores", None)
        if record.get("error") is not None or not isinstance(record.get("output"), dict):
            continue
        digest = checkpoint.program_digest(run_.task.program(by_id[record["id"]], record["output"]))
        verdict = verdicts.get((record["key"], digest))
        if verdict is None:
            unexecuted += 1
            continue
        record["scores"] = {run_.task.metrics[0]: 1.0 if verdict["passed"] else 0.0}
        record["extracted"] = str(verdict.get("detail") or "")[:300]
    if unexecuted and not required:
        say(
            f"{unexecuted} programs saved and not executed yet: the sandbox phase (`python -m "
            "launcher.harness execute /results`) runs them, then `python -m launcher.harness score "
            "/results` scores them"
        )
        return 0
    if unexecuted:
        say(f"warning: {unexecuted} programs have no verdict from the sandbox; they count as errors")
    checkpoint.rewrite_samples(run_.results_dir / checkpoint.SAMPLES, list(records.values()), run_.redact)
    return finish(run_, records)


def finish(run_: Run, records: Mapping[str, dict]) -> int:
    """results.json/yml from each sample's outcome (`records`: key -> at least error and scores)."""
    task = run_.task
    tally = aggregate.tally(task.metrics, [s.id for s in run_.items], run_.repeats, records)
    limit = run_.params["max_error_fraction"]
    config = json.loads(run_.config.to_json())
    results = aggregate.results(task, tally, len(run_.items), run_.loaded, run_.repeats, limit, config)
    import yaml

    text = yaml.safe_dump(results, sort_keys=False)
    with sigterm.deferred():  # both files or neither
        checkpoint.write_json(run_.results_dir / checkpoint.RESULTS_JSON, results)
        checkpoint.write_text(run_.results_dir / checkpoint.RESULTS_YML, text)
    head = task.metrics[0]
    chance = f"; chance {task.chance:.4f}" if task.chance is not None else ""
    answered = f", scored 0; {tally.answered[head]:.4f} over the answered samples" if tally.errors else ""
    say(
        f"{task.name} {head} = {tally.values[head]:.4f} ± {tally.stderr[head]:.4f} over {tally.items} items "
        f"({tally.errors} of {tally.attempts} samples errored, {tally.error_fraction:.1%}{answered}){chance}"
    )
    if run_.shard is not None:  # a part: the task's error limit is judged on the merged whole
        if not tally.errors:
            return 0
        say(
            f"{tally.errors} samples of this shard errored: the merge counts them against the task's "
            "max_error_fraction; a resume retries them"
        )
        return EXIT_SHARD_ERRORS
    if tally.attempts and tally.error_fraction > limit:
        errors = [r["error"] for r in records.values() if r.get("error") is not None]
        common, n = Counter(errors).most_common(1)[0] if errors else ("(no verdict)", tally.errors)
        say(
            f"error: task failed: {tally.errors} of {tally.attempts} samples errored "
            f"({tally.error_fraction:.0%} > max_error_fraction {limit:.0%}); most common ({n}x): {common}"
        )
        return EXIT_FAILED
    return 0


def merge(config_path: Path, parts: list[Path], module: str) -> int:
    """The task's results from its shards' results folders (`parts`, shard 0 first): samples.jsonl in
    canonical order and results.json/yml exactly as one unsharded run with the same responses writes
    them (the same records, tallied in the same order). Refuses while a shard has samples unrecorded."""
    run_ = load_run(config_path.parent, module, config_path)
    if run_.shard is not None:
        raise ConfigError(f"{config_path} is one shard's run config; merge needs the task's own")
    keys = [key for _, _, key in run_.all_jobs()]
    owned = [set(shards.select(keys, shards.Shard(k, len(parts)))) for k in range(len(parts))]
    found = [
        checkpoint.load_samples(part / checkpoint.SAMPLES, mine, repair=False)
        for part, mine in zip(parts, owned, strict=True)
    ]
    records, missing = shards.merge(keys, found, len(parts))
    if missing:
        gaps = "; ".join(f"shard {k} ({parts[k]}) lacks {n} samples" for k, n in missing)
        say(f"error: cannot merge: {gaps}; resume the task to finish them")
        return EXIT_FAILED
    checkpoint.rewrite_samples(run_.results_dir / checkpoint.SAMPLES, records, run_.redact)
    say(f"merged {len(records)} samples of {len(parts)} shards")
    return finish(run_, {r["key"]: r for r in records})


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m launcher.harness")
    parser.add_argument(
        "--tasks", default=DEFAULT_TASKS, help="module whose TASKS holds the api.Task objects"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="request and score a task").add_argument("--config", required=True, type=Path)
    for name, text in (
        ("score", "score saved responses (and sandbox verdicts) again, no requests"),
        ("rescore", "the same as score"),
    ):
        sub.add_parser(name, help=text).add_argument("results", type=Path)
    execute_ = sub.add_parser(
        "execute", help="run a code task's programs here (the sandbox); verdicts on stdout"
    )
    execute_.add_argument("results", type=Path)
    execute_.add_argument("--uid", type=int, default=SANDBOX_UID, help="uid the programs run as")
    execute_.add_argument("--python", default=sys.executable, help="interpreter the programs run with")
    merge_ = sub.add_parser("merge", help="the task's results from its shards' results folders")
    merge_.add_argument("--config", required=True, type=Path, help="the task's (unsharded) run config")
    merge_.add_argument("parts", nargs="+", type=Path, help="the shards' results folders, shard 0 first")
    args = parser.parse_args(argv)
    if args.command == "merge":
        return guarded(lambda: merge(args.config, args.parts, args.tasks))
    if args.command == "run":
        return guarded(lambda: run(args.config, args.tasks))
    if args.command == "execute":
        from launcher.harness.sandbox import execute

        return guarded(lambda: execute(load_run(args.results, args.tasks), sys.stdout, args.uid, args.python))
    return guarded(lambda: score(args.results, args.tasks))
