"""The one place export, results and report read invocation folders (read-only, never repairs a file).

Layout read: <folder>/invocation.json, <folder>/.hydra/config.yaml, <folder>/<task>/events.log,
<folder>/<task>/results/{results.json,results.yml,samples.jsonl}, optional proxy_stats.json.
results.json: results.tasks.<task>.metrics.<metric>.scores.<score>.{value, stats{stderr,count,errors}};
`protocol`, `samples` and `chance` may sit next to `metrics` (or at the top level).
When the project's results reader (launcher.store.results) lands, swap it in here and only here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from launcher.errors import LauncherError
from launcher.harness.contract import SAMPLES as SAMPLES_FILE
from launcher.proxy.stats import STATS_FILE
from launcher.store import events
from launcher.store.layout import EVENTS, HYDRA_DIR, RECORD, RESULTS, RESULTS_JSON
from launcher.store.layout import RESULTS_YML as RESULTS_YML  # exporters read it as source.RESULTS_YML

# Names the store, the harness and the proxy own; composed here for reading.
SAMPLES = f"{RESULTS}/{SAMPLES_FILE}"
CONFIG = f"{HYDRA_DIR}/config.yaml"
PROXY_STATS = STATS_FILE


@dataclass(frozen=True)
class Score:
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
    scores: tuple[Score, ...] = ()
    run_config: dict = field(default_factory=dict)  # the harness run config (no secret values: names only)
    headline: str | None = None  # the metric a task leads with (results' `headline`)
    subsample: str | None = None  # how the items were drawn when fewer than the reference split

    @property
    def has_results(self) -> bool:
        return bool(self.scores)

    def path(self, rel: str) -> Path:
        return self.folder / rel


def resolve(ident: str) -> list[tuple[object, str | None]]:
    """(record, job id or None) pairs; the one import of the index resolver (ARCH may move it)."""
    from launcher.store.index import resolve as index_resolve

    return index_resolve(ident)


def _record(folder: Path) -> dict:
    try:
        return json.loads((folder / RECORD).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LauncherError(
            f"{folder} holds no run record ({RECORD}); give an invocation folder or id"
        ) from None
    except (OSError, ValueError) as err:
        raise LauncherError(f"cannot read the run record {folder / RECORD}: {err}") from None


def load(idents: list[str]) -> list[TaskRun]:
    """Every job of the given invocations, jobs or sweeps (ids, prefixes or invocation folders), in order."""
    runs: list[TaskRun] = []
    seen: set[str] = set()
    for ident in idents:
        if Path(ident, RECORD).is_file():
            pairs = [(_record(Path(ident)), None)]
        else:
            pairs = [(_record(Path(rec.folder)), job) for rec, job in resolve(ident)]
        for record, job_id in pairs:
            for run in load_invocation(record, job_id):
                if run.job_id not in seen:
                    seen.add(run.job_id)
                    runs.append(run)
    return runs


def load_invocation(record: dict, only_job: str | None = None) -> list[TaskRun]:
    folder = Path(record["folder"])
    extra = record.get("extra") or {}
    out = []
    for job in record.get("jobs", []):
        if only_job and job["job_id"] != only_job:
            continue
        task_folder = folder / job["folder"]
        base = TaskRun(
            invocation_id=record["invocation_id"],
            job_id=job["job_id"],
            task=job["task"],
            folder=task_folder,
            invocation_folder=folder,
            model=extra.get("model_id") or "",
            sweep_id=record.get("sweep_id"),
            created=record.get("created") or 0.0,
        )
        out.append(read_results(base))
    return out


def read_results(run: TaskRun) -> TaskRun:
    """`run` with its scores filled from results.json; unchanged when the job has no results yet."""
    from dataclasses import replace

    try:
        data = json.loads(run.path(RESULTS_JSON).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return run
    except (OSError, ValueError) as err:
        raise LauncherError(f"cannot read {run.path(RESULTS_JSON)}: {err}") from None
    tasks = (data.get("results") or {}).get("tasks") or {}
    entry = tasks.get(run.task) or (next(iter(tasks.values())) if len(tasks) == 1 else {})
    scores = []
    for metric, m in (entry.get("metrics") or {}).items():
        for score, s in (m.get("scores") or {}).items():
            stats = s.get("stats") or {}
            scores.append(
                Score(
                    metric,
                    score,
                    float(s["value"]),
                    stats.get("stderr"),
                    stats.get("count"),
                    stats.get("errors"),
                )
            )
    config = data.get("config") or {}
    return replace(
        run,
        model=data.get("model_id") or run.model,
        protocol=entry.get("protocol") or data.get("protocol"),
        samples=_first(
            _items(entry.get("samples")), data.get("samples"), scores[0].count if scores else None
        ),
        headline=entry.get("headline"),
        subsample=(entry.get("samples") or {}).get("subsample")
        if isinstance(entry.get("samples"), dict)
        else None,
        chance=_first(entry.get("chance"), data.get("chance")),
        finished_at=data.get("finished_at"),
        scores=tuple(scores),
        run_config=config,
    )


def _first(*values):
    return next((v for v in values if v is not None), None)


def _items(samples):
    """results' `samples`: a count (launcher 0.1) or {items, size, subsample, repeats} (0.2)."""
    return samples.get("items") if isinstance(samples, dict) else samples


def read_samples(run: TaskRun) -> list[dict]:
    """The latest record per sample key (`<id>#<repeat>` with repeats), in the report's view; a torn or
    corrupt line is skipped (the file is never modified)."""
    records: dict[str, dict] = {}
    try:
        with open(run.path(SAMPLES), encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                    records[str(rec.get("key") or rec["id"])] = normalize_sample(rec, run.headline)
                except (ValueError, KeyError, TypeError, AttributeError):
                    continue
    except FileNotFoundError:
        return []
    return list(records.values())


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


def read_proxy_stats(run: TaskRun) -> dict | None:
    for path in (
        run.folder / PROXY_STATS,
        run.path(f"results/{PROXY_STATS}"),
        run.invocation_folder / PROXY_STATS,
    ):
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
    return None


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
