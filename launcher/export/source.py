"""The one place export, results and report read invocation folders (read-only, never repairs a file).

Layout read: <folder>/invocation.json, <folder>/.hydra/{config,overrides}.yaml, <folder>/<task>/events.log,
<folder>/<task>/results/{results.json,results.yml,samples.jsonl}, <folder>/proxy/proxy_stats.json.
A task's results are read by their one reader, launcher.store.results; this module shapes them for export.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from launcher.harness.contract import SAMPLES as SAMPLES_FILE
from launcher.model import InvocationRecord
from launcher.store import events
from launcher.store import results as results_store
from launcher.store.layout import (
    EVENTS,
    HYDRA_DIR,
    HYDRA_OVERRIDES,
    RECORD,
    RESULTS,
    open_regular,
    read_record,
    read_regular,
)
from launcher.store.layout import TASK_RESULTS_JSON as TASK_RESULTS_JSON  # exporters upload them
from launcher.store.layout import TASK_RESULTS_YML as TASK_RESULTS_YML

SAMPLES_LIMIT = 1 << 30  # samples.jsonl read by the report and exports: at most this much
SAMPLE_LINE_LIMIT = 16 << 20  # one sample record
ARTIFACT_LIMIT = 256 << 20  # a results file uploaded by an exporter

# Names the store, the harness and the proxy own; composed here for reading.
TASK_SAMPLES = f"{RESULTS}/{SAMPLES_FILE}"
CONFIG = f"{HYDRA_DIR}/config.yaml"
OVERRIDES = HYDRA_OVERRIDES


@dataclass(frozen=True)
class RunScore:
    """One score of a TaskRun as export, results and report use it: `name` is metric[.score]."""

    metric: str
    score: str
    value: float
    stderr: float | None = None
    count: int | None = None
    errors: int | None = None

    @property
    def name(self) -> str:
        return self.metric if self.score == self.metric else f"{self.metric}.{self.score}"


@dataclass(frozen=True)
class TaskRun:
    """One job's results: the unit of export (one MLflow run, one W&B run, rows in the local table)."""

    invocation_id: str
    job_id: str
    task: str
    folder: Path  # the task's folder (holds results/)
    invocation_folder: Path
    model: str
    sweep_id: str | None = None
    created: float = 0.0
    protocol: str | None = None
    samples: int | None = None
    chance: float | None = None
    finished_at: str | None = None
    scores: tuple[RunScore, ...] = ()
    run_config: dict = field(default_factory=dict)  # the harness run config (no secret values: names only)
    headline: str | None = None  # the metric a task leads with (results' `headline`)
    subsample: str | None = None  # how the items were drawn when fewer than the reference split
    overrides: dict[str, str] = field(default_factory=dict)  # the invocation's overrides: key -> value
    repeats: int | None = None  # samples per item, when the results say
    benchmark: str = ""  # the record's PlannedJob.benchmark: launcher.<x> for a built-in

    @property
    def has_results(self) -> bool:
        return bool(self.scores)

    def path(self, rel: str) -> Path:
        return self.folder / rel


def load(idents: list[str]) -> list[TaskRun]:
    """Every job of the given invocations, jobs or sweeps (ids, prefixes or invocation folders), in order."""
    from launcher.store import index

    runs: list[TaskRun] = []
    seen: set[str] = set()
    for ident in idents:
        # A folder given by path is read where it is (the cluster's copy, a moved folder), not where its
        # record says it was made.
        here = Path(ident, RECORD).is_file()
        pairs = (
            [(replace(read_record(ident), folder=str(Path(ident).absolute())), None)]
            if here
            else index.resolve(ident)
        )
        for record, job_id in pairs:
            for run in load_invocation(record, job_id):
                if run.job_id not in seen:
                    seen.add(run.job_id)
                    runs.append(run)
    return runs


def load_invocation(record: InvocationRecord, only_job: str | None = None) -> list[TaskRun]:
    folder = Path(record.folder)
    overrides = read_overrides(folder)
    out = []
    for job in record.jobs:
        if only_job and job.job_id != only_job:
            continue
        base = TaskRun(
            invocation_id=record.invocation_id,
            job_id=job.job_id,
            task=job.task,
            folder=folder / job.folder,
            invocation_folder=folder,
            model=record.model_id,
            sweep_id=record.sweep_id,
            created=record.created,
            overrides=overrides,
            benchmark=job.benchmark,
        )
        out.append(read_results(base))
    return out


def read_overrides(folder: Path) -> dict[str, str]:
    """The invocation's command-line overrides as key -> value (`+key=v`, `++key=v` as key; `~key` as
    key -> ''); {} when the file is absent or not a list."""
    import yaml

    try:
        items = yaml.safe_load(read_regular(folder / OVERRIDES) or "[]")
    except yaml.YAMLError:
        return {}
    out: dict[str, str] = {}
    for item in items if isinstance(items, list) else ():
        key, _, value = str(item).partition("=")
        out[key.lstrip("+~")] = value
    return out


def read_results(run: TaskRun) -> TaskRun:
    """`run` with its scores filled from its results (launcher.store.results); unchanged without any."""
    found = results_store.read(run.folder)
    entry = found.entry(run.task) if found else None
    if entry is None:
        return run
    scores = tuple(RunScore(s.metric, s.name, s.value, s.stderr, s.count, s.errors) for s in entry.scores)
    # Who was evaluated, and on what protocol, is the run record's and our catalogue's word: the results
    # file is written by the task container, which must not relabel its run.
    return replace(
        run,
        model=run.model or found.model_id,
        protocol=builtin_protocol(run.benchmark) or entry.protocol or None,
        samples=entry.items if entry.items is not None else scores[0].count if scores else None,
        headline=entry.headline,
        subsample=entry.subsample,
        repeats=entry.repeats,
        chance=entry.chance,
        finished_at=found.finished_at,
        scores=scores,
        run_config=found.config,
    )


def builtin_protocol(benchmark: str) -> str | None:
    """The reference protocol a built-in (`launcher.<task>`, as the run record resolved it) reproduces,
    else None. From the harness's own table: the catalogue is a layer above export."""
    from launcher.harness.benchmarks import TASKS

    task = TASKS.get(benchmark.removeprefix("launcher.")) if benchmark.startswith("launcher.") else None
    return (task.protocol or None) if task else None


def read_samples(run: TaskRun) -> list[dict]:
    """The latest record per sample key (`<id>#<repeat>` with repeats), in the report's view; a torn or
    corrupt line is skipped (the file is never modified)."""
    records: dict[str, dict] = {}
    fh = open_regular(run.path(TASK_SAMPLES))  # the task wrote it: no link, FIFO or device is read
    if fh is None:
        return []
    with fh:
        read = 0
        # a line longer than the cap comes in pieces that are not JSON (skipped): memory stays bounded
        for line in iter(lambda: fh.readline(SAMPLE_LINE_LIMIT), b""):
            read += len(line)
            if read > SAMPLES_LIMIT:
                break
            try:
                rec = json.loads(line.decode("utf-8", errors="replace"))
                records[str(rec.get("key") or rec["id"])] = normalize_sample(rec, run.headline)
            except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
                continue
    return list(records.values())


def artifacts(run: TaskRun, rels: tuple[str, ...], limit: int = ARTIFACT_LIMIT) -> list[tuple[str, str]]:
    """(file name, text) of the results files an exporter uploads: each a regular file opened without
    following a link, whole and at most `limit` bytes. Anything else present is skipped with a warning
    (the task wrote the folder: a link to /proc/self/environ must not be uploaded)."""
    out = []
    for rel in rels:
        path = run.path(rel)
        if not os.path.lexists(path):
            continue
        text = read_regular(path, limit, whole=True)
        if text is None:
            print(
                f"warning: {run.job_id}: not uploading {rel}: not a regular file or over {limit} bytes",
                file=sys.stderr,
            )
            continue
        out.append((path.name, text))
    return out


def normalize_sample(rec: dict, headline: str | None = None) -> dict:
    """A harness sample record (launcher 0.2: key, input, target, output{response, ...}, calls, scores{},
    extracted, error) as the flat view the report and exports show; launcher 0.1 records pass as they are."""
    if "scores" not in rec and "output" not in rec:
        return rec
    output = rec.get("output") if isinstance(rec.get("output"), dict) else {}
    scores = rec.get("scores") if isinstance(rec.get("scores"), dict) else None
    score = None
    if scores:
        score = scores.get(headline) if headline in scores else next(iter(scores.values()))
    calls = [c for c in rec.get("calls") or [] if isinstance(c, dict)]
    usage = next((c.get("usage") for c in reversed(calls) if c.get("usage")), None)
    return {
        "id": str(rec.get("key") or rec["id"]),
        "prompt": rec.get("input"),
        "response": output.get("response"),
        "extracted": rec.get("extracted"),
        "reference": rec.get("target"),
        "score": None if rec.get("error") is not None else score,
        "scores": scores,
        "error": rec.get("error"),
        "finish_reason": output.get("finish_reason") or next((c.get("finish_reason") for c in calls), None),
        "usage": usage,
    }


def read_events(run: TaskRun) -> dict[str, float]:
    """First time of each stage record in the task's events.log (the store's parser)."""
    out: dict[str, float] = {}
    for event in events.read(run.path(EVENTS)):
        out.setdefault(event.kind, event.at)
    return out


def read_proxy_stats(run: TaskRun) -> tuple[dict, str] | None:
    """The counters of the proxy the task went through and what they cover (None without a proxy)."""
    from launcher.proxy.wiring import read_stats  # here: the wiring module loads the proxy settings

    return read_stats(run.invocation_folder, [run.folder])


SECRET_KEY = re.compile(r"(key|token|secret|password|passwd|credential)", re.I)
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def redact(value, key: str = ""):
    """Secret-looking values replaced; a value that is an env var NAME is kept (names are safe)."""
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, key) for v in value]
    if SECRET_KEY.search(key) and isinstance(value, str) and value and not ENV_NAME.match(value):
        return "***"
    return value


def resolved_config_text(run: TaskRun) -> str:
    """The invocation's composed config (.hydra/config.yaml) as YAML, secrets redacted; '' when absent."""
    import yaml

    try:
        data = yaml.safe_load(run.invocation_folder.joinpath(CONFIG).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return ""
    return yaml.safe_dump(redact(data), sort_keys=False)
