"""Run generated code with the benchmark's tests: a subprocess per sample, a timeout, limited memory.

The container is the sandbox; this bounds each program so an infinite loop or a crash costs one sample.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import sys
import tempfile

TIMEOUT = 10.0  # seconds per program
MEMORY = 1 << 30  # bytes of address space per program


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


async def run_program(code: str, timeout: float = TIMEOUT) -> tuple[bool, str]:
    """(passed, detail): passed when the program exits 0 within `timeout` seconds."""
    with tempfile.TemporaryDirectory(prefix="sample-") as workdir, open(f"{workdir}/.stderr", "w+b") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            "-c",
            code,
            cwd=workdir,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=err,  # a file, not a pipe: a program printing gigabytes costs disk, not memory
            preexec_fn=_limits,
            start_new_session=True,  # its own process group: a timeout kills whatever it spawned
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": workdir},
        )
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except asyncio.TimeoutError:
            _kill_group(proc.pid)
            await proc.wait()
            return False, f"timed out after {timeout:g} s"
        finally:
            _kill_group(proc.pid)
        if proc.returncode == 0:
            return True, ""
        err.seek(max(0, err.seek(0, os.SEEK_END) - 4096))
        lines = err.read().decode("utf-8", "replace").strip().splitlines()
    return False, (lines[-1] if lines else f"exit code {proc.returncode}")[:300]


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
