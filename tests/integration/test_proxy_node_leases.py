"""A Slurm node's shared proxy (`python -m launcher.proxy --node-dir DIR`) as a real process: it answers
GET /proxy/ready to its credential only, stays while an element holds the lease, stops by itself (counters
written, exit 0) once none does, and takes its share of the caps from the nodes alive. The array elements'
side runs on the test cluster (tests/integration/test_slurm_node_proxy.py)."""

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from helpers import wait_for
from test_proxy import TOKEN, WITH_TOKEN, raw_request

from launcher.proxy.node import ALIVE, LEASE

ROOT = Path(__file__).resolve().parents[2]


def start(tmp_path, node_dir: Path, adapter: dict | None = None):
    config = tmp_path / "proxy.json"
    config.write_text(json.dumps({"upstream": "http://127.0.0.1:9/v1", "adapter_config": adapter or {}}))
    argv = [sys.executable, "-m", "launcher.proxy", "--config", str(config), "--state-dir", str(tmp_path)]
    argv += ["--node-dir", str(node_dir), "--log", str(tmp_path / "proxy.log")]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT), **WITH_TOKEN}
    )
    port = int(proc.stdout.readline().split()[-1])
    return proc, port


def lease(node_dir: Path) -> int:
    fd = os.open(node_dir / LEASE, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_SH)  # as an element's `exec 9>lease; flock -s 9`
    return fd


def test_stays_while_an_element_holds_the_lease_and_stops_by_itself_after_the_last(tmp_path):
    node = tmp_path / "nodes" / "vm"
    node.mkdir(parents=True)
    first, second = lease(node), lease(node)
    proc, port = start(tmp_path, node)
    try:
        assert raw_request(port, "GET", "/proxy/ready", {"Authorization": f"Bearer {TOKEN}"})[0] == 204
        assert raw_request(port, "GET", "/proxy/ready", {"Authorization": "Bearer other"})[0] == 401
        os.close(first)
        time.sleep(5)  # two checks of the lease (node.TICK = 2 s): the second element still uses it
        assert proc.poll() is None
        os.close(second)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert json.loads((tmp_path / "proxy_stats.json").read_text())["requests"] == 0
    assert "no array element on this node uses the proxy any more" in (tmp_path / "proxy.log").read_text()
    assert not (node / ALIVE).exists()  # no longer counted by the other nodes
    os.close(lease(node))  # released at exit: the next element can join at once


def test_each_node_takes_its_share_of_the_caps_of_the_nodes_alive(tmp_path):
    nodes = tmp_path / "nodes"
    for name in ("vm", "other"):
        (nodes / name).mkdir(parents=True)
    (nodes / "other" / ALIVE).touch()  # another node's proxy, alive
    fd = lease(nodes / "vm")
    adapter = {"max_concurrent": 40, "requests_per_second": 10}
    proc, port = start(tmp_path, nodes / "vm", adapter)
    try:

        def caps():
            status, body = raw_request(port, "GET", "/proxy/stats", {})
            return json.loads(body)["concurrency"]["max_concurrent"] if status == 200 else None

        wait_for(lambda: caps() == 20, timeout=20, what="half of max_concurrent on each of two nodes")
        (nodes / "other" / ALIVE).unlink()  # that node's proxy stopped
        wait_for(lambda: caps() == 40, timeout=20, what="the whole cap once this node is alone")
    finally:
        os.close(fd)
        assert proc.wait(timeout=30) == 0
