"""The scripts' processes on this machine: is a recorded PID still our script, and stopping it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from launcher.store import events


def pid_alive(pid: int | None, script: str) -> bool:
    """True if `pid` runs bash on `script` (guards against PID reuse)."""
    if not pid or pid <= 0:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(part.endswith(script.encode()) for part in cmdline)


def running_pid(events_path: str | Path, script: str) -> int | None:
    """PID of the script's current run, if it is alive (a started record without an exit record)."""
    start = events.open_start(events.read(events_path))
    pid = start.pid if start else None
    return pid if pid and pid_alive(pid, script) else None


def terminate(pid: int) -> None:
    """SIGTERM the script's process group when it leads one (started by us), else the script alone."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGTERM)
        else:
            os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
