"""One authority for on-disk names, ids, run records and the invocation index.

Invocation folder: <output_dir>/<YYYY-MM-DD-HH-MM-SS>-<8 hex>/ (inside <output_dir>/sweep-... for -m)
  invocation.json   the run record (no secret values, ever)
  run_all.sh        runs every task; `bash run_all.sh` resumes
  .hydra/           the composed config and the overrides
  events.log        run_all.sh's stage records
  logs/launcher.jsonl
  <task>/run.sh  <task>/results/ (mounted at /results)  <task>/logs/output.log  <task>/events.log
The index (<state dir>/index.jsonl) holds pointers only and is appended under an exclusive lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import time
from dataclasses import asdict
from pathlib import Path

from launcher.errors import LauncherError, NotFound
from launcher.executors.base import InvocationRecord, Plan

RECORD = "invocation.json"
RUN_ALL = "run_all.sh"
RUN = "run.sh"
EVENTS = "events.log"
HYDRA_DIR = ".hydra"
LAUNCHER_LOG = "logs/launcher.jsonl"
RESULTS = "results"
OUTPUT_LOG = "logs/output.log"
PROGRESS = "results/progress.json"
RESULTS_JSON = "results/results.json"
SWEEP_RECORD = "sweep.json"

# Label keys on every container: status, logs and kill find containers by these.
LABEL_INVOCATION = "launcher.invocation"
LABEL_JOB = "launcher.job"
LABEL_TASK = "launcher.task"
LABEL_FOLDER = "launcher.folder"

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
SCRIPT = 0o700


def state_dir() -> Path:
    explicit = os.environ.get("LAUNCHER_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "launcher"


def new_id() -> str:
    return secrets.token_hex(4)


def stamp(created: float) -> str:
    return time.strftime("%Y-%m-%d-%H-%M-%S", time.localtime(created))


# Names a task folder must not take: the invocation's own files and folders (and executors' ones).
RESERVED = {RECORD, RUN_ALL, EVENTS, HYDRA_DIR, "logs", RESULTS, "sbatch.sh", "slurm_jobs"}


def task_folder_names(task_names: list[str]) -> list[str]:
    """Safe, unique folder names: no separators, no leading dots, bounded length."""
    used: set[str] = set()
    out = []
    for name in task_names:
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._-")[:64] or "task"
        folder, n = base, 2
        while folder.lower() in used or folder.lower() in RESERVED:
            folder, n = f"{base}-{n}", n + 1
        used.add(folder.lower())
        out.append(folder)
    return out


def write_atomic(path: Path, text: str, mode: int = PRIVATE_FILE) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(3)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def create_invocation(plan: Plan, record: InvocationRecord, extra_files: dict[str, str]) -> None:
    """Write the whole invocation folder next to its final place, then rename it in: never half-written."""
    final = Path(plan.folder)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".{final.name}.partial"
        tmp.mkdir(mode=PRIVATE_DIR)
    except OSError as err:
        raise LauncherError(
            f"cannot create the invocation folder under {final.parent}: {err.strerror}"
        ) from None
    try:
        files = {**plan.files, **extra_files, RECORD: record_json(record)}
        for job in plan.jobs:
            for sub in (RESULTS, "logs"):
                (tmp / job.folder / sub).mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        (tmp / "logs").mkdir(exist_ok=True, mode=PRIVATE_DIR)
        for rel, content in files.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
            write_atomic(path, content, SCRIPT if rel.endswith(".sh") else PRIVATE_FILE)
        os.rename(tmp, final)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError):
            raise LauncherError(f"cannot write the invocation folder {final}: {err.strerror}") from None
        raise
    index_append(record)


def record_json(record: InvocationRecord) -> str:
    return json.dumps(asdict(record), indent=2, sort_keys=True) + "\n"


def read_record(folder: str | Path) -> InvocationRecord:
    path = Path(folder) / RECORD
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound(f"{folder} holds no run record ({RECORD}); was it moved or deleted?") from None
    except (OSError, ValueError) as err:
        raise LauncherError(f"cannot read the run record {path}: {err}") from None
    return InvocationRecord(**data)


# ---- stage records -------------------------------------------------------------------------------------


def read_events(path: str | Path) -> list[tuple[str, float, str]]:
    """Parse `<event> <epoch> [value]` lines; a torn last line (killed mid-write) is ignored."""
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []
    events = []
    for line in lines:
        parts = line.split(" ", 2)
        if len(parts) < 2:
            continue
        try:
            events.append((parts[0], float(parts[1]), parts[2] if len(parts) > 2 else ""))
        except ValueError:
            continue
    return events


def append_event(path: str | Path, event: str, value: str = "") -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(f"{event} {int(time.time())} {value}".rstrip() + "\n")


# ---- the index ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked_index():
    directory = state_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    with open(directory / "index.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield directory / "index.jsonl"
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def index_append(record: InvocationRecord) -> None:
    entry = {
        "id": record.invocation_id,
        "sweep": record.sweep_id,
        "folder": record.folder,
        "created": record.created,
        "executor": record.executor,
    }
    try:
        with _locked_index() as index:
            fd = os.open(index, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry) + "\n")
    except OSError as err:
        raise LauncherError(f"cannot update the invocation index in {state_dir()}: {err.strerror}") from None


def index_entries() -> list[dict]:
    """All index entries, oldest first; unreadable lines are skipped."""
    path = state_dir() / "index.jsonl"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    entries = []
    for line in lines:
        with contextlib.suppress(ValueError):
            entries.append(json.loads(line))
    return entries


def resolve(ident: str) -> list[tuple[InvocationRecord, str | None]]:
    """An invocation id, a job id `<inv>.<n>`, a sweep id, or a unique prefix of one -> records.

    Returns (record, job_id or None) pairs, one per invocation matched.
    """
    inv_part, _, job_part = ident.partition(".")
    entries = index_entries()
    by_inv = [e for e in entries if e["id"].startswith(inv_part)]
    by_sweep = (
        [e for e in entries if e.get("sweep") and e["sweep"].startswith(inv_part)] if not job_part else []
    )
    inv_ids = {e["id"] for e in by_inv}
    sweep_ids = {e["sweep"] for e in by_sweep}
    if len(inv_ids) + len(sweep_ids) > 1:
        choices = sorted(inv_ids | sweep_ids)
        raise LauncherError(
            f"{ident!r} is ambiguous: it matches {', '.join(choices[:5])}; give more characters"
        )
    matched = by_inv or by_sweep
    if not matched:
        raise NotFound(f"no invocation, job or sweep matches {ident!r}; `launcher ls runs` lists them")
    job_id = None
    if job_part:
        job_id = f"{matched[0]['id']}.{job_part}"
    return [(read_record(e["folder"]), job_id) for e in matched]
