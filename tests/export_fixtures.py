"""Real invocation folders for the export/results/report tests, written with the launcher's and the
harness's own writers (layout.record_json, checkpoint.SampleLog, aggregate.tally/results), not mocks."""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml

from launcher.harness import aggregate, checkpoint
from launcher.harness.api import Task
from launcher.model import InvocationRecord, PlannedJob
from launcher.store import events, layout
from launcher.store import index as run_index

PARAMS = {
    "temperature": 0.0,
    "top_p": None,
    "max_tokens": 256,
    "seed": 1,
    "limit_samples": None,
    "max_error_fraction": 0.05,
    "parallelism": 4,
    "max_retries": 1,
    "request_timeout": 30.0,
    "stop": None,
}


def sample(i: int, correct: bool, error: str | None = None, metrics: tuple[str, ...] = ("accuracy",)) -> dict:
    """A sample record as the harness's runner writes it (launcher 0.2)."""
    answer = str(i)
    calls = [{"kind": "generate", "finish_reason": "stop", "usage": USAGE}] if not error else []
    rec = {
        "key": f"s{i}",
        "id": f"s{i}",
        "repeat": 0,
        "input": f"What is {i}+0? <b>&</b>",
        "target": answer,
        "calls": calls,
        "error": error,
    }
    if not error:
        reply = f"The answer is {answer if correct else i + 1}."
        rec["output"] = {"response": reply, "finish_reason": "stop", "usage": USAGE}
        rec["scores"] = {m: 1.0 if correct else 0.0 for m in metrics}
        rec["extracted"] = answer if correct else str(i + 1)
    return rec


USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


def _task(name: str, chance: float | None, metrics: tuple[str, ...] = ("accuracy",)) -> Task:
    return Task(
        name=name,
        protocol=f"test protocol for {name}",
        metrics=metrics,
        endpoint_types=("chat",),
        load=list,
        solve=None,  # never called: the records are written here
        chance=chance,
    )


def invocation(
    root: Path,
    model: str,
    tasks: dict[str, list[bool]],
    errors: int = 0,
    sweep: str | None = None,
    index: bool = True,
    finished: bool = True,
    chance: float | None = None,
    overrides: list[str] | None = None,
    metrics: dict[str, tuple[str, ...]] | None = None,
) -> InvocationRecord:
    """An invocation folder with one finished job per task; tasks maps a task to per-sample correctness;
    `overrides` as Hydra records a sweep job's (.hydra/overrides.yaml); `metrics` a task's metric names
    (default: accuracy)."""
    inv = layout.new_id()
    folder = root / f"{layout.stamp(time.time())}-{inv}"
    jobs = []
    for n, (task, outcomes) in enumerate(tasks.items()):
        jobs.append(PlannedJob(f"{inv}.{n}", task, task, "launcher-harness:0.1.0", ()))
        results = folder / task / "results"
        results.mkdir(parents=True)
        (folder / task / "logs").mkdir()
        config = {
            "api_key_env": "API_KEY",
            "endpoint_type": "chat",
            "model_id": model,
            "params": PARAMS,
            "task": task,
            "url": "http://127.0.0.1:1/v1/chat/completions",
        }
        (results / "run_config.json").write_text(json.dumps(config), encoding="utf-8")
        log = checkpoint.SampleLog(results / checkpoint.SAMPLES)
        names = (metrics or {}).get(task, ("accuracy",))
        records = [sample(i, ok, metrics=names) for i, ok in enumerate(outcomes)]
        records += [
            sample(len(outcomes) + k, False, error="HTTP 500 after 1 attempts") for k in range(errors)
        ]
        for rec in records:
            log.append(rec)
        log.close()
        events.append(folder / task / layout.EVENTS, "started")
        if finished:
            keys = [r["key"] for r in records]
            tally = aggregate.tally(names, keys, 1, {r["key"]: r for r in records})
            results_doc = aggregate.results(
                _task(task, chance, names), tally, len(keys), len(keys), 1, 0.05, config
            )
            checkpoint.write_json(results / checkpoint.RESULTS_JSON, results_doc)
            (results / checkpoint.RESULTS_YML).write_text(yaml.safe_dump(results_doc), encoding="utf-8")
            events.append(folder / task / layout.EVENTS, "finished", "0")
    (folder / layout.HYDRA_DIR).mkdir(parents=True)
    hydra = {
        "target": {"api_endpoint": {"model_id": model, "api_key": "API_KEY", "url": "http://127.0.0.1:1"}},
        "deployment": {"hf_token": "hf_secretvalue123"},
    }
    (folder / layout.HYDRA_DIR / "config.yaml").write_text(yaml.safe_dump(hydra), encoding="utf-8")
    if overrides is not None:
        (folder / layout.HYDRA_DIR / "overrides.yaml").write_text(layout.to_yaml(overrides), encoding="utf-8")
    record = InvocationRecord(
        invocation_id=inv,
        folder=str(folder),
        executor="local",
        execution={},
        jobs=tuple(jobs),
        created=time.time(),
        sweep_id=sweep,
        model_id=model,
        url="http://127.0.0.1:1",
        host_env=("API_KEY",),
    )
    (folder / layout.RECORD).write_text(layout.record_json(record), encoding="utf-8")
    if index:
        run_index.append(record)
    return record
