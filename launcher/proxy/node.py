"""One proxy shared by the Slurm array elements on a node (`python -m launcher.proxy --node-dir DIR`).

DIR (`<invocation>/proxy/nodes/<node>`, on the shared file system) holds two empty lock files:
`mutex` (held briefly by whoever starts, joins, leaves or stops) and `lease`, on which every element
using the proxy holds a shared flock for as long as it runs. A lock dies with its holder, so a crashed
element holds nothing and nothing goes stale. The proxy checks every TICK seconds, holding `mutex`,
whether it can take `lease` exclusively: then no element uses it, and it keeps that lock (an element
that comes now waits for the lock, then starts a new proxy) and stops. The scripts' side is
wiring.render_node_start.

Across nodes: each node's proxy touches `DIR/alive` every TICK; the invocation's hard caps
(max_concurrent, requests_per_second, tokens_per_second) are split evenly between the nodes whose
`alive` changed within ALIVE_WINDOW s of ours (`share`), and the adaptive limit is found per node.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from dataclasses import replace
from pathlib import Path

from launcher.proxy.settings import BudgetSettings

NODES = "nodes"  # in the invocation's proxy folder: one folder per node, one below per proxy started there
MUTEX, LEASE, ALIVE = "mutex", "lease", "alive"
TICK = 2.0  # s between checks: how long an unused proxy lives on, and how fast a node's share follows
ALIVE_WINDOW = 15.0  # s: a node whose proxy has not touched `alive` for this long has none

log = logging.getLogger("launcher.proxy")


def share(budget: BudgetSettings, nodes: int) -> BudgetSettings:
    """The hard caps of one node's proxy when `nodes` proxies serve the invocation (pure)."""
    n = max(1, nodes)

    def part(rate: float | None) -> float | None:
        return None if rate is None else rate / n

    return replace(
        budget,
        max_concurrent=max(1, budget.max_concurrent // n),
        requests_per_second=part(budget.requests_per_second),
        tokens_per_second=part(budget.tokens_per_second),
    )


def live_nodes(node_dir: Path) -> int:
    """Nodes (sibling folders) whose proxy touched `alive` within ALIVE_WINDOW s of this node's (the
    file system's clock on both sides); this one included."""
    try:
        mine = (node_dir / ALIVE).stat().st_mtime
    except OSError:
        return 1
    count = 0
    for other in node_dir.parent.iterdir():
        with contextlib.suppress(OSError):
            count += (other / ALIVE).stat().st_mtime >= mine - ALIVE_WINDOW
    return max(1, count)


def unused(node_dir: Path) -> int | None:
    """A file descriptor holding `lease` exclusively when no element holds it (the caller keeps it open
    until it has stopped), else None. Never blocks: a busy `mutex` is "in use" until the next check."""
    fds = [os.open(node_dir / name, os.O_RDWR | os.O_CREAT, 0o600) for name in (MUTEX, LEASE)]
    try:
        fcntl.flock(fds[0], fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fds[1], fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        for fd in fds:
            os.close(fd)
        return None
    os.close(fds[0])  # the mutex: others may look now, and wait on the lease
    return fds[1]


async def watch(node_dir: Path, budget, caps: BudgetSettings, stop: asyncio.Event) -> None:
    """Until no element holds the lease: keep `alive` fresh and this node's share of the caps current
    (`budget`: the proxy's Limiter). Then set `stop`, keeping the lease until the process exits."""
    alive, nodes = node_dir / ALIVE, 0
    try:
        while not stop.is_set():
            alive.touch()
            now = live_nodes(node_dir)
            if now != nodes:
                nodes, mine = now, share(caps, now)
                budget.resize(mine)
                log.info(
                    "%d node(s) share the budget: this node's caps are max_concurrent %d, "
                    "requests_per_second %s, tokens_per_second %s",
                    nodes,
                    mine.max_concurrent,
                    mine.requests_per_second,
                    mine.tokens_per_second,
                )
            if unused(node_dir) is not None:
                log.info("no array element on this node uses the proxy any more: stopping")
                stop.set()
                return
            await asyncio.sleep(TICK)
    finally:  # stopped (by itself or SIGTERM): no longer counted by the other nodes
        with contextlib.suppress(OSError):
            alive.unlink()
