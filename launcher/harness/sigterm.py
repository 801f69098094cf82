"""SIGTERM, whenever it arrives, ends the harness with its exit code 143 and nothing half written.

One handler for the whole process (`install`, first thing in `python -m launcher.harness`), in three modes:
- `diverted(callback)`: the callback runs instead; the worker pool stops itself that way, and `run`
  (asyncio.run for the harness) cancels its coroutine, then raises `Terminated` (never raised inside the
  event loop's own code, which would leave it stuck);
- `deferred()` around a write that must be whole: noted, acted on when the write is complete;
- otherwise (loading the config and the checkpoint, aggregating): `Terminated` is raised where the
  program is and unwinds through every `finally` to `main`.
asyncio's add_signal_handler is not used: removing it restores SIG_DFL, and a SIGTERM then killed the
process with -15 and no record.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager

EXIT = 143  # 128 + SIGTERM, what a shell reports for a process SIGTERM ended


class Terminated(BaseException):
    """A BaseException: a task's `except Exception` (its sample's error) must not swallow it."""


_divert: Callable[[], None] | None = None
_deferring = 0
_pending = False
_raised = False


def install() -> None:
    signal.signal(signal.SIGTERM, _on_sigterm)


def settle() -> None:
    """The exit code is decided: a later SIGTERM changes nothing (ignored, as Python's shutdown would put
    back the default action, under which the process ended with -15)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _on_sigterm(signum, frame) -> None:
    global _pending
    if _divert is not None:
        _divert()
    elif _deferring:
        _pending = True
    else:
        _terminate()


def _terminate() -> None:
    global _raised, _pending
    _pending = False
    if not _raised:  # one is enough: a second SIGTERM must not cut the unwinding's cleanup short
        _raised = True
        raise Terminated


@contextmanager
def diverted(callback: Callable[[], None]) -> Iterator[None]:
    """SIGTERM calls `callback` (in the main thread, between two bytecodes: it must only set a flag and
    wake the event loop, e.g. with loop.call_soon_threadsafe)."""
    global _divert
    previous, _divert = _divert, callback
    try:
        yield
    finally:
        _divert = previous


@contextmanager
def deferred() -> Iterator[None]:
    """A SIGTERM during the block takes effect once it is done (a file is then whole or not written)."""
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
        if _pending and not _deferring and _divert is None:
            _terminate()


def run(coro: Coroutine):
    """asyncio.run(coro), where a SIGTERM cancels the coroutine (its `finally` blocks run: workers are
    closed, files flushed) and then raises Terminated."""
    import asyncio  # here: this module loads before the handler is installed, and asyncio takes ~30 ms

    async def main():
        loop, task, hit = asyncio.get_running_loop(), asyncio.current_task(), []

        def cancel() -> None:
            if not hit:  # once: a second SIGTERM must not cancel the cleanup the first started
                hit.append(True)
                loop.call_soon_threadsafe(task.cancel)

        with diverted(cancel):
            try:
                result = await coro
            except asyncio.CancelledError:
                if not hit:
                    raise
            if hit:  # also when the coroutine ended before the cancellation reached it
                raise Terminated
            return result

    return asyncio.run(main())
