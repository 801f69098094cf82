"""Per-sample checkpoint (samples.jsonl, keyed by `key`: the sample id, `<id>#<repeat>` with repeats) and
progress.json.

Each finished sample is one appended, flushed line. A SIGKILL can tear only the last line: on restart it
is cut off before anything is appended, so the file always parses.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

from launcher.harness import sigterm
from launcher.harness.contract import SAMPLES, VERDICTS  # noqa: F401 - re-exported names of the files

PROGRESS = "progress.json"
RESULTS_JSON = "results.json"
RESULTS_YML = "results.yml"
PROGRESS_EVERY = 1.0  # seconds between progress.json updates


# Every line starts with key, error and scores, in this order (`encode`): a restart reads only them. The
# head as written: a JSON string, null or a JSON string, null or a flat object. Linear (each repetition is
# one class or one escape); a line it does not match is parsed whole instead.
_HEAD = re.compile(
    rb'\{"key": ("(?:[^"\\]|\\.)*"), "error": (null|"(?:[^"\\]|\\.)*"), "scores": (null|\{[^{}]*\})'
)
# The heads of a block of lines at C speed (findall over b"\n" + block): the same shape, for keys without
# escapes; a line it misses (an escaped key) is for the caller to parse whole.
LINE_HEADS = re.compile(
    rb'\n\{"key": "([^"\\\n]*)", "error": (null|"(?:[^"\\\n]|\\.)*"), "scores": (null|\{[^{}\n]*\})'
)
BLOCK = 1 << 20  # bytes read at once


def encode(record: dict) -> str:
    """One checkpoint line (without the newline): the head fields first, then the rest of the record."""
    head = {"key": record["key"], "error": record.get("error"), "scores": record.get("scores")}
    return json.dumps(head | record, ensure_ascii=False)


def _blocks(path: Path, repair: bool) -> Iterator[bytes]:
    """The file in blocks of whole lines (never the whole file in memory). A torn trailing line is
    truncated away when `repair` (the sandbox reads a read-only copy and only skips it)."""
    if not path.exists():
        return
    with open(path, "rb+" if repair else "rb") as fh:
        rest, offset = b"", 0
        while chunk := fh.read(BLOCK):
            data = rest + chunk
            cut = data.rfind(b"\n") + 1
            if cut:
                yield data[:cut]
            offset, rest = offset + cut, data[cut:]
        if rest and repair:
            fh.truncate(offset)


def _lines(path: Path, repair: bool) -> Iterator[bytes]:
    for block in _blocks(path, repair):
        yield from block.split(b"\n")[:-1]


def read_head(line: bytes) -> tuple[str, bytes] | None:
    """(key, the bytes of error and scores) from the start of a line `encode` wrote, without parsing the
    rest of it; None for any other shape, which the caller parses whole."""
    found = _HEAD.match(line)
    if found is None:
        return None
    key = found[1]
    try:
        return json.loads(key) if b"\\" in key else key[1:-1].decode(), line[found.end(1) : found.end()]
    except ValueError:
        return None


def _accept(records: dict[str, Any], key: Any, error: Any, keys: Collection[str] | None) -> bool:
    """Whether a line for `key` counts: only the harness writes this file, and it trusts no line it did not
    mean. A key that is not one of `keys` (this run's samples) is ignored, and so is any line for a key
    that already has a successful record (an errored record may be followed by its retry)."""
    if not isinstance(key, str) or (keys is not None and key not in keys):
        return False
    held = records.get(key)
    return held is None or held.get("error") is not None


def load_samples(path: Path, keys: Collection[str] | None = None, repair: bool = True) -> dict[str, dict]:
    """key -> whole record (for rescoring, the sandbox and code scoring); see `_accept` for which lines
    count. A corrupt line is treated as not done: it is re-requested."""
    records: dict[str, dict] = {}
    for line in _lines(path, repair):
        try:
            record = json.loads(line)
            key = record["key"]
        except (ValueError, RecursionError, KeyError, TypeError):
            continue
        if _accept(records, key, record.get("error"), keys):
            records[key] = record
    return records


class Outcomes(dict):
    """key -> {"error", "scores"}: what resuming and aggregating need of each sample, and nothing else
    (100,000 whole records are about 500 MB in Python; these are a few MB). Equal outcomes share one
    dict; treat them as read-only."""

    def __init__(self) -> None:
        super().__init__()
        self._shared: dict[bytes, dict] = {}  # head text -> its outcome

    def note(self, key: str, error: Any, scores: Any) -> None:
        if _accept(self, key, error, None):
            text = b", " + json.dumps({"error": error, "scores": scores}, ensure_ascii=False)[1:-1].encode()
            self[key] = self._shared.setdefault(text, {"error": error, "scores": scores})

    def note_head(self, key: str, text: bytes) -> None:
        """From a line head's `, "error": ..., "scores": ...` bytes (parsed once per distinct text)."""
        outcome = self._shared.get(text)
        if outcome is None:
            outcome = self._shared[text] = json.loads(b"{" + text[2:] + b"}")
        held = self.get(key)  # _accept's rule, inline: this runs once per line of the checkpoint
        if held is None or held["error"] is not None:
            self[key] = outcome

    def succeeded(self, key: str) -> bool:
        outcome = self.get(key)
        return outcome is not None and outcome["error"] is None


def load_outcomes(path: Path, keys: Collection[str]) -> Outcomes:
    """The outcomes of this run's samples (`keys`) from the checkpoint, reading each line's head only
    (a restart of a 100,000-sample run reads 50 MB of lines in about a second); the same lines count as
    for `load_samples`, and a torn trailing line is truncated away."""
    outcomes = Outcomes()
    for line in _lines(path, repair=True):
        try:
            head = read_head(line)
            if head is not None:
                if head[0] in keys:
                    outcomes.note_head(*head)
                continue
            record = json.loads(line)
            key, error, scores = record["key"], record.get("error"), record.get("scores")
        except (ValueError, RecursionError, KeyError, TypeError, AttributeError):
            continue
        if isinstance(key, str) and key in keys:
            outcomes.note(key, error, scores)
    return outcomes


def rewrite_samples(path: Path, records: list[dict], redact: Callable[[str], str]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with sigterm.deferred():  # the old file or the new one, never a stray half
        with open(tmp, "w", encoding="utf-8") as fh:
            for record in records:
                fh.write(redact(encode(record)) + "\n")
        os.replace(tmp, path)


class SampleLog:
    def __init__(self, path: Path, redact: Callable[[str], str] = str):
        self.fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for the whole run, closed by close()
        self.redact = redact

    def append(self, record: dict) -> None:
        self.fh.write(self.redact(encode(record)) + "\n")
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
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_text(path: Path, text: str) -> None:
    """Whole or not at all, even when SIGTERM arrives meanwhile (no stray temporary file either)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with sigterm.deferred():
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)


# ---- verdicts.jsonl: the sandbox's judgement of each saved program -------------------------------------


def program_digest(program: str) -> str:
    """Names a program in a verdict line: a verdict holds only for the exact program it judged."""
    return hashlib.sha256(program.encode()).hexdigest()


def verdict_line(key: str, digest: str, passed: bool, detail: str) -> str:
    return json.dumps({"key": key, "program": digest, "passed": passed, "detail": detail}) + "\n"


def read_verdicts(path: Path, keys: set[str]) -> dict[tuple[str, str], dict]:
    """(key, program digest) -> verdict; lines for other keys are ignored (the sandbox's stdout only)."""
    verdicts: dict[tuple[str, str], dict] = {}
    if not path.exists():
        return verdicts
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            v = json.loads(line)
            key, digest, passed = v["key"], v["program"], v["passed"]
        except (ValueError, RecursionError, KeyError, TypeError):
            continue
        if key in keys and isinstance(digest, str) and isinstance(passed, bool):
            verdicts[(key, digest)] = v
    return verdicts
