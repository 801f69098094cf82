"""The stage-record protocol (events.log): its vocabulary, the Python and shell writers, the parser.

One line per record, appended: `<kind> <epoch seconds> [value]`.
  queued                 the invocation's starter (re)queues the task: what came before is an earlier attempt
  started  <pid> [<start ticks>]   run.sh / run_all.sh began: its PID and the process's start time
                         (/proc/<pid>/stat field 22), so a reused PID is never taken for our script
  exited   <code> [reason]                  it ended (reason: set when the script knows why)
  killed                 `launcher kill` asked it to stop
  resumed                `launcher resume` restarted the invocation
  submitted <scheduler job id>              a batch scheduler took the invocation
  server-starting, server-ready             around a deployment's model server
A torn last line (a writer killed mid-line) is ignored by the parser.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from launcher.store.layout import EVENTS, read_regular

QUEUED = "queued"
STARTED = "started"
EXITED = "exited"
KILLED = "killed"
RESUMED = "resumed"
SUBMITTED = "submitted"
SERVER_STARTING = "server-starting"
SERVER_READY = "server-ready"


@dataclass(frozen=True)
class Event:
    kind: str
    at: float
    value: str = ""

    @property
    def pid(self) -> int | None:
        """The PID of a `started` record."""
        first = self.value.split(" ", 1)[0]
        return int(first) if first.isdigit() else None

    @property
    def ticks(self) -> str | None:
        """The process start time of a `started` record (None in records of launcher 0.1)."""
        parts = self.value.split(" ")
        return parts[1] if len(parts) > 1 and parts[1].isdigit() else None

    @property
    def exit_code(self) -> int | None:
        first = self.value.split(" ", 1)[0]
        return int(first) if first.lstrip("-").isdigit() else None

    @property
    def detail(self) -> str:
        """The reason of an `exited` record."""
        return self.value.partition(" ")[2]


def parse(text: str) -> list[Event]:
    events = []
    for line in text.splitlines():
        parts = line.split(" ", 2)
        if len(parts) < 2:
            continue
        try:
            events.append(Event(parts[0], float(parts[1]), parts[2] if len(parts) > 2 else ""))
        except ValueError:
            continue
    return events


def read(path: str | Path) -> list[Event]:
    text = read_regular(path)
    return parse(text) if text else []


def line(kind: str, value: str = "", at: float | None = None) -> str:
    return f"{kind} {int(time.time() if at is None else at)} {value}".rstrip() + "\n"


def append(path: str | Path, kind: str, value: str = "") -> None:
    """One record in one write(2) on an O_APPEND descriptor: concurrent writers never interleave."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line(kind, value).encode())
    finally:
        os.close(fd)


# Shell text for a `started` value: the script's PID and its start time in clock ticks since boot.
SCRIPT_PROCESS = "$$ $(awk '{sub(/.*\\) /, \"\"); print $20}' /proc/$$/stat 2>/dev/null)"


def shell(kind: str, value: str = "", path: str = "", at: str = "$(date +%s)") -> str:
    """The bash line that appends a record; `value` is shell text, expanded when the line runs
    (e.g. '$$' or '$rc'); `path` defaults to events.log in the current directory; `at` is the shell text
    of the time (a variable set once saves a `date` process per line in a loop)."""
    target = path or shlex.quote(EVENTS)
    text = f"{kind} {at} {value}".rstrip()
    return f'echo "{text}" >> {target}'


def shell_append_argv(path: str, kind: str, value: str = "") -> list[str]:
    """An argv that appends a record to `path` where the command runs (e.g. on a login node)."""
    return ["bash", "-c", 'echo "$1 $(date +%s) $2" >> "$3"', "_", kind, value, path]


@dataclass(frozen=True)
class History:
    """The stage records of one job, split at its last `queued`: the current attempt and what came before."""

    current: tuple[Event, ...]
    previous: tuple[Event, ...]

    @classmethod
    def of(cls, events: Iterable[Event]) -> History:
        events = list(events)
        queued = max((i for i, e in enumerate(events) if e.kind == QUEUED), default=-1)
        return cls(tuple(events[queued + 1 :]), tuple(events[: max(queued, 0)]))

    def attempts(self) -> list[tuple[Event, Event | None]]:
        """(started, exited or None) for each start in the current attempt."""
        out: list[tuple[Event, Event | None]] = []
        for e in self.current:
            if e.kind == STARTED:
                out.append((e, None))
            elif e.kind == EXITED and out and out[-1][1] is None:
                out[-1] = (out[-1][0], e)
        return out


def succeeded(events: Iterable[Event]) -> bool:
    """True if the last start/exit pair ended with exit code 0 (what run.sh checks to skip a task)."""
    last = [e for e in events if e.kind in (STARTED, EXITED)]
    return bool(last) and last[-1].kind == EXITED and last[-1].exit_code == 0


def open_start(events: list[Event]) -> Event | None:
    """The last `started` record if no `exited` record follows it."""
    for e in reversed(events):
        if e.kind == EXITED:
            return None
        if e.kind == STARTED:
            return e
    return None
