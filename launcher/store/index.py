"""The invocation index: pointers (id, sweep, folder, created, executor) to every invocation, oldest first.

<state dir>/index.jsonl, one JSON object a line, appended in one write(2) under an exclusive lock so
lines never tear or interleave. A line that is not a valid entry is skipped with one warning.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from launcher.errors import LauncherError, NotFound
from launcher.model import InvocationRecord
from launcher.store.layout import PRIVATE_DIR, PRIVATE_FILE, read_record, state_dir

INDEX = "index.jsonl"


@dataclass(frozen=True)
class Entry:
    id: str
    folder: str
    created: float
    executor: str
    sweep: str | None = None

    @classmethod
    def parse(cls, line: str) -> Entry:
        data = json.loads(line)
        if not isinstance(data, dict):
            raise ValueError("not an object")
        values = {k: data.get(k) for k in ("id", "folder", "executor")}
        if not all(isinstance(v, str) and v for v in values.values()):
            raise ValueError("id, folder or executor missing")
        sweep = data.get("sweep")
        return cls(
            **values, created=float(data.get("created") or 0), sweep=sweep if isinstance(sweep, str) else None
        )


def index_path() -> Path:
    return state_dir() / INDEX


@contextlib.contextmanager
def _locked():
    directory = state_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    with open(directory / "index.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield directory / INDEX
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def append(record: InvocationRecord) -> None:
    entry = {
        "id": record.invocation_id,
        "sweep": record.sweep_id,
        "folder": record.folder,
        "created": record.created,
        "executor": record.executor,
    }
    try:
        with _locked() as path:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE)
            try:
                # A torn last line (a writer killed mid-write in an older version) must not swallow ours.
                size = os.fstat(fd).st_size
                prefix = b""
                if size:
                    with open(path, "rb") as fh:
                        fh.seek(size - 1)
                        prefix = b"" if fh.read(1) == b"\n" else b"\n"
                os.write(fd, prefix + (json.dumps(entry) + "\n").encode())
            finally:
                os.close(fd)
    except OSError as err:
        raise LauncherError(f"cannot update the invocation index in {state_dir()}: {err.strerror}") from None


def entries() -> list[Entry]:
    """All valid entries, oldest first; invalid lines are skipped with one warning naming the file."""
    path = index_path()
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []
    except OSError as err:
        raise LauncherError(f"cannot read the invocation index {path}: {err.strerror}") from None
    out, bad = [], 0
    for line in lines:
        if not line.strip():
            continue
        try:
            out.append(Entry.parse(line))
        except (ValueError, TypeError):
            bad += 1
    if bad:
        print(f"warning: skipped {bad} unreadable line(s) in {path}", file=sys.stderr)
    return out


def resolve(ident: str) -> list[tuple[InvocationRecord, str | None]]:
    """An invocation id, a job id `<inv>.<n>`, a sweep id, or a unique prefix of one -> records.

    Returns (record, job_id or None) pairs, one per invocation matched.
    """
    inv_part, _, job_part = ident.partition(".")
    all_entries = entries()
    by_inv = [e for e in all_entries if e.id.startswith(inv_part)]
    by_sweep = [e for e in all_entries if e.sweep and e.sweep.startswith(inv_part)] if not job_part else []
    inv_ids = {e.id for e in by_inv}
    sweep_ids = {e.sweep for e in by_sweep}
    if len(inv_ids) + len(sweep_ids) > 1:
        choices = sorted(inv_ids | sweep_ids)
        raise LauncherError(
            f"{ident!r} is ambiguous: it matches {', '.join(choices[:5])}; give more characters"
        )
    matched = by_inv or by_sweep
    if not matched:
        raise NotFound(f"no invocation, job or sweep matches {ident!r}; `launcher ls runs` lists them")
    out = []
    for entry in matched:
        record = read_record(entry.folder)
        job_id = None
        if job_part:
            job_id = f"{entry.id}.{job_part}"
            if not any(j.job_id == job_id for j in record.jobs):
                known = ", ".join(j.job_id for j in record.jobs[:5])
                raise NotFound(f"invocation {entry.id} has no job {job_id} (its jobs: {known})")
        out.append((record, job_id))
    return out
