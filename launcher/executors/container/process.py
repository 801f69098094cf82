"""The scripts' processes on this machine: is a recorded PID still our script, and stopping it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from launcher.store import events


def start_ticks(pid: int) -> str | None:
    """The process's start time (clock ticks since boot, /proc/<pid>/stat field 22), or None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # after the command name, which may hold spaces
    return fields[19] if len(fields) > 19 else None


def age(pid: int) -> float | None:
    """Seconds since the process started (from /proc), or None if that cannot be read."""
    ticks = start_ticks(pid)
    try:
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return None if ticks is None else max(0.0, uptime - int(ticks) / os.sysconf("SC_CLK_TCK"))


def is_running(start: events.Event | None, script: str) -> bool:
    """True if the process of a `started` record still runs `script`: the same PID, the same start time
    (a reused PID has another), and bash on that script."""
    pid = start.pid if start else None
    if not pid or pid <= 0:
        return False
    if start.ticks is not None and start_ticks(pid) != start.ticks:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(part.endswith(script.encode()) for part in cmdline)


def running_pid(events_path: str | Path, script: str) -> int | None:
    """PID of the script's current run, if it is alive (a started record without an exit record)."""
    start = events.open_start(events.read(events_path))
    return start.pid if start and is_running(start, script) else None


def terminate(pid: int) -> None:
    """SIGTERM the script's process group when it leads one (started by us), else the script alone."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGTERM)
        else:
            os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
