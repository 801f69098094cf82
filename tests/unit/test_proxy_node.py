"""launcher.proxy.node: a Slurm node's shared proxy. `share` is pure (table); the lease and the node count
use real flocks and files (the proxy process itself: tests/integration/test_proxy_node_leases.py)."""

import fcntl
import os

import pytest

from launcher.proxy.limiter import Limiter
from launcher.proxy.node import ALIVE, ALIVE_WINDOW, LEASE, MUTEX, live_nodes, share, unused
from launcher.proxy.settings import BudgetSettings


@pytest.mark.parametrize(
    ("caps", "nodes", "expected"),
    [
        ((64, None, None), 1, (64, None, None)),
        ((64, 10.0, 1000.0), 2, (32, 5.0, 500.0)),
        ((64, None, 900.0), 3, (21, None, 300.0)),  # rounded down: the sum never exceeds the cap
        ((2, 1.0, None), 4, (1, 0.25, None)),  # at least one request at a time per node
        ((64, None, None), 0, (64, None, None)),  # no node counted (a clock glitch): this one
    ],
)
def test_each_node_gets_an_even_share_of_the_hard_caps(caps, nodes, expected):
    got = share(BudgetSettings(*caps), nodes)
    assert (got.max_concurrent, got.requests_per_second, got.tokens_per_second) == expected


def hold(path, mode):
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, mode | fcntl.LOCK_NB)
    return fd


def test_the_proxy_is_unused_only_when_no_element_holds_the_lease_and_none_is_joining(tmp_path):
    lease = hold(tmp_path / LEASE, fcntl.LOCK_SH)  # an element using the proxy
    assert unused(tmp_path) is None
    os.close(lease)
    mutex = hold(tmp_path / MUTEX, fcntl.LOCK_EX)  # an element joining (or leaving) right now
    assert unused(tmp_path) is None
    os.close(mutex)
    kept = unused(tmp_path)
    assert kept is not None
    with pytest.raises(BlockingIOError):  # an element that comes now waits until the proxy has exited
        hold(tmp_path / LEASE, fcntl.LOCK_SH)
    hold(tmp_path / MUTEX, fcntl.LOCK_EX)  # but the mutex is free: it may look and wait
    os.close(kept)
    os.close(hold(tmp_path / LEASE, fcntl.LOCK_SH))


def test_nodes_count_while_their_proxy_touched_alive_within_the_window(tmp_path):
    nodes = {name: tmp_path / name for name in ("a", "b", "c", "d")}
    for folder in nodes.values():
        folder.mkdir()
    assert live_nodes(nodes["a"]) == 1  # not touched yet: this one alone
    now = 1_800_000_000
    for name, age in (("a", 0), ("b", 1), ("c", ALIVE_WINDOW + 5)):  # d: no proxy ever
        (nodes[name] / ALIVE).touch()
        os.utime(nodes[name] / ALIVE, (now - age, now - age))
    assert live_nodes(nodes["a"]) == 2


def test_a_smaller_share_holds_back_requests_and_a_larger_one_lets_them_in():
    limiter = Limiter(BudgetSettings(max_concurrent=8))
    limiter.resize(share(BudgetSettings(max_concurrent=8, requests_per_second=4.0), 4))
    assert limiter.control.allowed == 2 and limiter.settings.requests_per_second == 1.0
    assert limiter.snapshot()["max_concurrent"] == 2
    limiter.resize(BudgetSettings(max_concurrent=8))
    assert limiter.control.allowed == 8  # the limit found so far (8 at first) comes back
