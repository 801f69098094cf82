"""python -m launcher.proxy --config proxy.json [--port 0] [--state-dir DIR] [--node-dir DIR] [--log FILE]
    [--cache-dir DIR]

Binds the port first, then prints `listening on <port>` on stdout and writes <state-dir>/proxy.port
(connections queue in the kernel until the server, importing aiohttp meanwhile, accepts them); logs go
to stderr. Clients present $LAUNCHER_PROXY_TOKEN (wiring.TOKEN_ENV; required) as a Bearer credential.
SIGTERM/SIGINT: in-flight requests get a few seconds, the counters are written to
<state-dir>/proxy_stats.json, exit 0. Bad configuration: one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import socket
import sys
from pathlib import Path

from launcher.proxy.settings import ProxyConfigError, load
from launcher.proxy.wiring import PORT_FILE, TOKEN_ENV


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m launcher.proxy")
    parser.add_argument("--config", required=True, help="JSON: {upstream, api_key_env, adapter_config}")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    parser.add_argument("--state-dir", default=".", help="port file, stats, request log, default cache")
    parser.add_argument(
        "--node-dir", help="shared by a Slurm node's array elements: stop once none uses it (proxy.node)"
    )
    parser.add_argument(
        "--log", help="append the log here instead of stderr (outlives a `docker run` client)"
    )
    parser.add_argument(
        "--cache-dir", help="the response cache when the config names none (default <state-dir>/cache)"
    )
    parser.add_argument("--grace", type=float, default=5.0, help="seconds in-flight requests get on SIGTERM")
    args = parser.parse_args(argv)
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
    token = os.environ.get(TOKEN_ENV, "")
    if len(token) < 32:  # without it the proxy would spend the key for anyone who reaches the port
        print(
            f"error: {TOKEN_ENV} (the credential tasks present, at least 32 characters) is not set in the"
            " proxy's environment; the scripts that start the proxy draw it (launcher.proxy.wiring)",
            file=sys.stderr,
        )
        return 2
    state_dir = Path(args.state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    stopping: list = []  # (loop, stop event) while the server runs
    stop_asked: list[bool] = []

    def on_signal(*_) -> None:
        # A plain handler rather than loop.add_signal_handler: closing a loop resets its handlers to
        # the default, so a second SIGTERM (kill's process-group signal, then run_all.sh's own
        # stop_proxy) arriving after the stats are written would kill us with -15. Only the first
        # signal stops the server; later ones find nothing to do. One that comes while aiohttp is
        # still being imported is kept for the loop.
        stop_asked.append(True)
        if stopping:
            loop, stop = stopping.pop()
            loop.call_soon_threadsafe(stop.set)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    if importlib.util.find_spec("aiohttp") is None:  # said now: past the port file, tasks would just fail
        print(f"error: aiohttp is not installed for {sys.executable}; the proxy needs it", file=sys.stderr)
        return 2
    try:
        files = open_files(settings, state_dir, key, args.cache_dir)
    except OSError as err:
        print(f"error: the proxy cannot open {err.filename or state_dir}: {err.strerror}", file=sys.stderr)
        return 2
    try:
        sock = listen(args.port)
    except OSError as err:
        print(f"error: the proxy cannot listen on 127.0.0.1:{args.port}: {err.strerror}", file=sys.stderr)
        return 2
    # Ready from here: the kernel queues connections until the server (0.3-1 s of aiohttp imports
    # later) accepts them, so run_all.sh starts the first container without waiting for those imports.
    announce(state_dir, sock.getsockname()[1])

    import asyncio  # imported after the announcement, as the server is: 0.1-0.3 s each
    import logging

    from launcher.proxy.server import Proxy, serve

    logging.basicConfig(
        **({"filename": args.log} if args.log else {"stream": sys.stderr}),
        level=logging.INFO,
        format="%(asctime)s proxy %(levelname)s %(message)s",
    )

    async def run() -> None:
        stop = asyncio.Event()
        stopping.append((asyncio.get_running_loop(), stop))
        if stop_asked:
            stop.set()
        node_dir = Path(args.node_dir) if args.node_dir else None
        await serve(Proxy(settings, state_dir, key, files), sock, stop, token, args.grace, node_dir)
        stopping.clear()

    try:  # uvloop (optional extra `proxy`) when installed: less CPU per request
        from uvloop import run as run_loop
    except ImportError:
        run_loop = asyncio.run
    run_loop(run())
    for sig in (signal.SIGTERM, signal.SIGINT):  # finalization resets Python handlers to the default
        signal.signal(sig, signal.SIG_IGN)
    return 0


def open_files(settings, state_dir: Path, api_key: str | None, cache_dir: str | None = None):
    """The response cache and the request log, opened before the proxy says it is ready: a folder it
    cannot write is then run_all.sh's one-line error, not tasks failing against a closed port."""
    from launcher.proxy import reqlog
    from launcher.proxy.cache import ResponseCache

    cache, secrets = settings.cache, (api_key,) if api_key else ()
    return (
        ResponseCache(cache.cache_dir or cache_dir or state_dir / "cache") if cache.enabled else None,
        reqlog.RequestLog(state_dir / reqlog.FILE, settings.log, secrets) if settings.log.enabled else None,
    )


def listen(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def announce(state_dir: Path, port: int) -> None:
    """`listening on <port>` on stdout, then the port file (its presence means ready). The pid file comes
    when the server runs (status asks that process for live counters and must not wait on a queue)."""
    print(f"listening on {port}", flush=True)
    tmp = state_dir / f".{PORT_FILE}.tmp"
    tmp.write_text(f"{port}\n")
    tmp.replace(state_dir / PORT_FILE)


if __name__ == "__main__":
    sys.exit(main())
