"""Per-sample checkpoint (samples.jsonl) and progress.json.

Each finished sample is one appended, flushed line. A SIGKILL can tear only the last line: on restart it
is cut off before anything is appended, so the file always parses.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

SAMPLES = "samples.jsonl"
PROGRESS = "progress.json"
RESULTS_JSON = "results.json"
RESULTS_YML = "results.yml"
PROGRESS_EVERY = 1.0  # seconds between progress.json updates


def load_samples(path: Path) -> dict[str, dict]:
    """id -> latest record; a torn trailing line is truncated away."""
    records: dict[str, dict] = {}
    if not path.exists():
        return records
    with open(path, "rb+") as fh:
        data = fh.read()
        keep = data.rfind(b"\n") + 1
        if keep < len(data):
            fh.truncate(keep)
    for line in data[:keep].splitlines():
        try:
            record = json.loads(line)
            records[record["id"]] = record
        except (ValueError, KeyError, TypeError):
            continue  # a corrupt line is treated as not done: it is re-requested
    return records


class SampleLog:
    def __init__(self, path: Path):
        self.fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for the whole run, closed by close()

    def append(self, record: dict) -> None:
        self.fh.write(json.dumps(record, ensure_ascii=False) + "\n")
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
