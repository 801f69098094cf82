"""Evaluate one task: skip finished samples, query with bounded concurrency, checkpoint, score, report."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path

from launcher.harness import checkpoint
from launcher.harness.tasks import TASKS, Sample, TaskDef, humaneval_program, score_text

EXIT_FAILED = 1  # the task ran but too many samples errored
EXIT_CONFIG = 2  # the run config is unusable
EXIT_IO = 74  # the results folder cannot be written (e.g. disk full); finished samples are kept
EXIT_SIGTERM = 143  # stopped by SIGTERM; the checkpoint is intact and a restart continues it
GENERATION_KEYS = ("temperature", "top_p", "max_tokens", "seed", "stop")


class ConfigProblem(Exception):
    pass


def say(message: str) -> None:
    print(f"[harness {time.strftime('%H:%M:%S')}] {message}", flush=True)


def load_run(config_path: Path) -> tuple[dict, TaskDef, list[Sample]]:
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigProblem(f"cannot read {config_path}: {err}") from None
    task = TASKS.get(config.get("task"))
    if task is None:
        raise ConfigProblem(f"unknown task {config.get('task')!r}; known: {', '.join(TASKS)}")
    samples = task.loader()
    limit = config["params"].get("limit_samples")
    return config, task, samples[:limit] if limit else samples


def run(config_path: Path) -> int:
    try:
        config, task, samples = load_run(config_path)
    except (ConfigProblem, FileNotFoundError) as err:
        say(f"error: {err}")
        return EXIT_CONFIG
    results_dir = config_path.parent
    key_env = config.get("api_key_env")
    api_key = os.environ.get(key_env) if key_env else None
    try:
        done = checkpoint.load_samples(results_dir / checkpoint.SAMPLES)
        todo = [s for s in samples if not (s.id in done and done[s.id].get("error") is None)]
        say(
            f"task {task.name}: {len(samples)} samples, {len(samples) - len(todo)} already finished, "
            f"{len(todo)} to go; model {config['model_id']} at {config['url']}"
        )
        if asyncio.run(evaluate(config, task, todo, results_dir, api_key, len(samples))):
            say("stopped by SIGTERM; finished samples are saved, a restart continues from them")
            return EXIT_SIGTERM
        return finish(config, task, samples, results_dir)
    except OSError as err:
        say(
            f"error: cannot write {err.filename or results_dir}: {err.strerror}; finished samples are kept, "
            "a restart continues from them once this is fixed"
        )
        return EXIT_IO


async def evaluate(
    config: dict, task: TaskDef, todo: list[Sample], results_dir: Path, api_key: str | None, total: int
) -> bool:
    """Run every sample in `todo`; True if SIGTERM stopped it first."""
    from launcher.harness.client import Client, RequestFailed

    params = config["params"]
    chat = config["endpoint_type"] == "chat"
    generation = {k: params[k] for k in GENERATION_KEYS if params.get(k) is not None}
    if not chat and task.completion_stop and "stop" not in generation:
        generation["stop"] = list(task.completion_stop)
    log = checkpoint.SampleLog(results_dir / checkpoint.SAMPLES)
    progress = checkpoint.Progress(results_dir / checkpoint.PROGRESS, total, total - len(todo), 0)
    progress.update(force=True)
    code_slots = asyncio.Semaphore(os.cpu_count() or 1)
    samples = iter(todo)

    async def one(client: Client, sample: Sample) -> dict:
        prompt = sample.prompt if chat or sample.completion_prompt is None else sample.completion_prompt
        payload = client.payload(prompt, generation)
        record = {"id": sample.id, "reference": sample.reference, "request": payload}
        try:
            reply = await client.complete(payload)
        except RequestFailed as err:
            return {**record, "error": str(err), "score": None}
        record.update(
            response=reply.text,
            attempts=reply.attempts,
            latency=round(reply.latency, 4),
            usage=reply.usage,
            error=None,
        )
        if task.kind == "code":
            from launcher.harness.sandbox import run_program

            async with code_slots:
                passed, detail = await run_program(humaneval_program(sample, reply.text, not chat))
            return {**record, "score": 1.0 if passed else 0.0, "extracted": detail}
        score, extracted = score_text(task, sample, reply.text)
        return {**record, "score": score, "extracted": extracted}

    async def worker(client: Client) -> None:
        for sample in samples:  # one shared iterator: each sample goes to exactly one worker
            record = await one(client, sample)
            log.append(record)
            progress.update(done_delta=1, error_delta=record["error"] is not None)

    client = Client(
        config["url"],
        config["model_id"],
        chat,
        api_key,
        params["parallelism"],
        params["request_timeout"],
        params["max_retries"],
    )
    loop = asyncio.get_running_loop()
    async with client:
        started = time.perf_counter()
        workers = [
            asyncio.ensure_future(worker(client)) for _ in range(min(params["parallelism"], len(todo)))
        ]
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        waiter = asyncio.ensure_future(stop.wait())
        pending, failure = set(workers), None
        while pending and not stop.is_set() and failure is None:
            _, pending = await asyncio.wait(pending | {waiter}, return_when=asyncio.FIRST_COMPLETED)
            pending.discard(waiter)
            failed = [w for w in workers if w.done() and not w.cancelled() and w.exception()]
            failure = failed[0].exception() if failed else None
        for task_ in [*workers, waiter]:
            task_.cancel()
        await asyncio.gather(*workers, waiter, return_exceptions=True)  # collects every worker's outcome
        if failure is not None:
            raise failure
        elapsed = time.perf_counter() - started
    finished = progress.done - (total - len(todo))
    say(f"{finished} requests in {elapsed:.3f} s ({finished / max(elapsed, 1e-9):.1f}/s)")
    progress.update(force=True)
    log.close()
    return stop.is_set()


def finish(config: dict, task: TaskDef, samples: list[Sample], results_dir: Path) -> int:
    records = checkpoint.load_samples(results_dir / checkpoint.SAMPLES)
    wanted = [records[s.id] for s in samples if s.id in records]
    errors = [r for r in wanted if r.get("error") is not None]
    scores = [float(r["score"] or 0.0) for r in wanted]
    results = build_results(config, task, scores, len(errors))
    checkpoint.write_json(results_dir / checkpoint.RESULTS_JSON, results)
    import yaml

    (results_dir / checkpoint.RESULTS_YML).write_text(
        yaml.safe_dump(results, sort_keys=False), encoding="utf-8"
    )
    value = results["results"]["tasks"][task.name]["metrics"][task.metric]["scores"][task.metric]["value"]
    say(f"{task.name} {task.metric} = {value:.4f} over {len(scores)} samples ({len(errors)} errors)")
    limit = config["params"]["max_error_fraction"]
    if scores and len(errors) / len(scores) > limit:
        common, n = Counter(r["error"] for r in errors).most_common(1)[0]
        say(
            f"error: task failed: {len(errors)} of {len(scores)} samples errored "
            f"({len(errors) / len(scores):.0%} > max_error_fraction {limit:.0%}); "
            f"most common ({n}x): {common}"
        )
        return EXIT_FAILED
    return 0


def build_results(config: dict, task: TaskDef, scores: list[float], errors: int) -> dict:
    n = len(scores)
    mean = sum(scores) / n if n else 0.0
    variance = sum((s - mean) ** 2 for s in scores) / (n - 1) if n > 1 else 0.0
    score = {
        "value": mean,
        "stats": {"stderr": math.sqrt(variance / n) if n else 0.0, "count": n, "errors": errors},
    }
    return {
        "results": {"tasks": {task.name: {"metrics": {task.metric: {"scores": {task.metric: score}}}}}},
        "model_id": config["model_id"],
        "task": task.name,
        "config": config,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def rescore(results_dir: Path) -> int:
    """Score saved responses again with the current scoring code; no request is sent."""
    try:
        config, task, samples = load_run(results_dir / "run_config.json")
    except (ConfigProblem, FileNotFoundError) as err:
        say(f"error: {err}")
        return EXIT_CONFIG
    path = results_dir / checkpoint.SAMPLES
    records = checkpoint.load_samples(path)
    by_id = {s.id: s for s in samples}
    chat = config["endpoint_type"] == "chat"

    async def rescore_all() -> None:
        from launcher.harness.sandbox import run_program

        for record in records.values():
            sample = by_id.get(record["id"])
            if sample is None or record.get("error") is not None:
                continue
            if task.kind == "code":
                passed, detail = await run_program(humaneval_program(sample, record["response"], not chat))
                record.update(score=1.0 if passed else 0.0, extracted=detail)
            else:
                score, extracted = score_text(task, sample, record["response"])
                record.update(score=score, extracted=extracted)

    asyncio.run(rescore_all())
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records.values()), encoding="utf-8"
    )
    os.replace(tmp, path)
    return finish(config, task, samples, results_dir)


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m launcher.harness")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="evaluate a task").add_argument("--config", required=True, type=Path)
    sub.add_parser("rescore", help="re-score saved responses, no requests").add_argument("results", type=Path)
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args.config)
    return rescore(args.results)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
