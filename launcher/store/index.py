"""The invocation index: pointers (id, sweep, folder, created, executor) to every invocation, oldest first.

<state dir>/index.jsonl, one JSON object a line, appended in one write(2) under an exclusive lock so
lines never tear or interleave. A line that is not a valid entry is skipped with one warning.
Why a JSON-lines file and not SQLite: appends are O(1), the recent entries are read from the file's
tail (`recent`), and a lookup by id prefix filters raw lines before parsing any JSON (`resolve`), so
10,000 invocations cost milliseconds (BENCHMARKS.md, "scale") while the file stays greppable.
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
    return _parse(_read_lines())


def recent(limit: int) -> list[Entry]:
    """The `limit` most recent valid entries, oldest first, read from the end of the file only."""
    if limit <= 0:
        return entries()
    path = index_path()
    try:
        with open(path, "rb") as fh:
            end = fh.seek(0, os.SEEK_END)
            block, data = 1 << 16, b""
            position = end
            # Read back until the tail holds limit + 1 line breaks (the first line may be cut), or the start.
            while position > 0 and data.count(b"\n") <= limit + 1:
                step = min(block, position)
                position -= step
                fh.seek(position)
                data = fh.read(step) + data
                block *= 2
    except FileNotFoundError:
        return []
    except OSError as err:
        raise LauncherError(f"cannot read the invocation index {path}: {err.strerror}") from None
    lines = data.decode("utf-8", errors="replace").splitlines()
    if position > 0:
        lines = lines[1:]  # cut mid-line
    found = _parse(lines)
    return found[-limit:]


def _read_lines() -> list[str]:
    path = index_path()
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []
    except OSError as err:
        raise LauncherError(f"cannot read the invocation index {path}: {err.strerror}") from None


def _parse(lines: list[str]) -> list[Entry]:
    out, bad = [], 0
    for line in lines:
        if not line.strip():
            continue
        try:
            out.append(Entry.parse(line))
        except (ValueError, TypeError):
            bad += 1
    if bad:
        print(f"warning: skipped {bad} unreadable line(s) in {index_path()}", file=sys.stderr)
    return out


def match(ident: str) -> list[tuple[Entry, str | None]]:
    """An invocation id, a job id `<inv>.<n>`, a sweep id, or a unique prefix of one -> index entries.

    Returns (entry, job_id or None) pairs, one per invocation matched.
    """
    inv_part, _, job_part = ident.partition(".")
    # Only lines that can match are parsed (an id or sweep is hex: no JSON escaping to worry about).
    all_entries = _parse([line for line in _read_lines() if inv_part in line])
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
    return [(entry, f"{entry.id}.{job_part}" if job_part else None) for entry in matched]


def _has_job(record: InvocationRecord, job_id: str) -> bool:
    """A job `<inv>.<n>` or a sharded task's shard `<inv>.<n>.<k>`."""
    try:
        record.job(job_id)
    except KeyError:
        return False
    return True


def resolve(ident: str) -> list[tuple[InvocationRecord, str | None]]:
    """match(), with each invocation's run record read; a job id must name one of its jobs."""
    out = []
    for entry, job_id in match(ident):
        record = read_record(entry.folder)
        if job_id and not _has_job(record, job_id):
            known = ", ".join(j.job_id for j in record.jobs[:5])
            raise NotFound(f"invocation {entry.id} has no job {job_id} (its jobs: {known})")
        out.append((record, job_id))
    return out
