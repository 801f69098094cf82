"""python -m launcher.proxy --config proxy.json [--port 0] [--state-dir DIR]

Prints `listening on <port>` first on stdout (and writes it to <state-dir>/proxy.port); logs go to
stderr. SIGTERM/SIGINT: in-flight requests get a few seconds, the counters are written to
<state-dir>/proxy_stats.json, exit 0. Bad configuration: one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from launcher.proxy.settings import ProxyConfigError, load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m launcher.proxy")
    parser.add_argument("--config", required=True, help="JSON: {upstream, api_key_env, adapter_config}")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    parser.add_argument("--state-dir", default=".", help="port file, stats, request log, default cache")
    parser.add_argument("--grace", type=float, default=5.0, help="seconds in-flight requests get on SIGTERM")
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s proxy %(levelname)s %(message)s"
    )
    try:
        settings = load(args.config)
    except ProxyConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    key = None
    if settings.api_key_env:
        key = os.environ.get(settings.api_key_env)
        if not key:
            print(
                f"error: api_key_env names {settings.api_key_env!r}, which is not set in the proxy's"
                f" environment; export {settings.api_key_env} on the host or set api_key_env to null",
                file=sys.stderr,
            )
            return 2
    state_dir = Path(args.state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)

    from launcher.proxy.server import Proxy, serve

    stopping: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def on_signal(*_) -> None:
        # A plain handler rather than loop.add_signal_handler: closing a loop resets its handlers to
        # the default, so a second SIGTERM (kill's process-group signal, then run_all.sh's own
        # stop_proxy) arriving after the stats are written would kill us with -15. Only the first
        # signal stops the server; later ones find nothing to do.
        if stopping:
            loop, stop = stopping.pop()
            loop.call_soon_threadsafe(stop.set)

    async def run() -> None:
        stop = asyncio.Event()
        stopping.append((asyncio.get_running_loop(), stop))
        await serve(Proxy(settings, state_dir, key), args.port, stop, args.grace)
        stopping.clear()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    try:  # uvloop (optional extra `proxy`) when installed: less CPU per request
        from uvloop import run as run_loop
    except ImportError:
        run_loop = asyncio.run
    run_loop(run())
    for sig in (signal.SIGTERM, signal.SIGINT):  # finalization resets Python handlers to the default
        signal.signal(sig, signal.SIG_IGN)
    return 0


if __name__ == "__main__":
    sys.exit(main())
