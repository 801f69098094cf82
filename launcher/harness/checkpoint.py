"""Per-sample checkpoint (samples.jsonl, keyed by `key`: the sample id, `<id>#<repeat>` with repeats) and
progress.json.

Each finished sample is one appended, flushed line. A SIGKILL can tear only the last line: on restart it
is cut off before anything is appended, so the file always parses.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Collection
from pathlib import Path

from launcher.harness.contract import SAMPLES, VERDICTS  # noqa: F401 - re-exported names of the files

PROGRESS = "progress.json"
RESULTS_JSON = "results.json"
RESULTS_YML = "results.yml"
PROGRESS_EVERY = 1.0  # seconds between progress.json updates


def load_samples(path: Path, keys: Collection[str] | None = None, repair: bool = True) -> dict[str, dict]:
    """key -> record. Only the harness writes this file, and it trusts no line it did not mean: a line
    whose key is not one of `keys` (this run's samples) is ignored, and so is any line for a key that
    already has a successful record (an errored record may be followed by its retry). A torn trailing
    line is truncated away (`repair`; the sandbox reads a read-only copy and only skips it)."""
    records: dict[str, dict] = {}
    if not path.exists():
        return records
    with open(path, "rb+" if repair else "rb") as fh:
        data = fh.read()
        keep = data.rfind(b"\n") + 1
        if repair and keep < len(data):
            fh.truncate(keep)
    for line in data[:keep].splitlines():
        try:
            record = json.loads(line)
            key = record["key"]
        except (ValueError, RecursionError, KeyError, TypeError):
            continue  # a corrupt line is treated as not done: it is re-requested
        if not isinstance(key, str) or (keys is not None and key not in keys):
            continue
        if key in records and records[key].get("error") is None:
            continue
        records[key] = record
    return records


def rewrite_samples(path: Path, records: list[dict], redact: Callable[[str], str]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(
        "".join(redact(json.dumps(r, ensure_ascii=False)) + "\n" for r in records), encoding="utf-8"
    )
    os.replace(tmp, path)


class SampleLog:
    def __init__(self, path: Path, redact: Callable[[str], str] = str):
        self.fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for the whole run, closed by close()
        self.redact = redact

    def append(self, record: dict) -> None:
        self.fh.write(self.redact(json.dumps(record, ensure_ascii=False)) + "\n")
        self.fh.flush()  # in the OS after every sample: a killed process loses nothing finished

    def close(self) -> None:
        self.fh.close()


class Progress:
    def __init__(self, path: Path, total: int, done: int, errors: int):
        self.path, self.total, self.done, self.errors = path, total, done, errors
        self.started, self.start_done = time.monotonic(), done
        self.last_write = 0.0

    def update(self, done_delta: int = 0, error_delta: int = 0, force: bool = False) -> None:
        self.done += done_delta
        self.errors += error_delta
        now = time.monotonic()
        if force or now - self.last_write >= PROGRESS_EVERY:
            self.last_write = now
            elapsed = max(now - self.started, 1e-9)
            write_json(
                self.path,
                {
                    "done": self.done,
                    "total": self.total,
                    "errors": self.errors,
                    "rate": round((self.done - self.start_done) / elapsed, 3),
                    "updated": time.time(),
                },
            )


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
