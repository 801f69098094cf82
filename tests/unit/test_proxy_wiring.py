"""What executors use to put the proxy in front of the tasks: pure pieces, table-tested, plus the rendered
bash run for real (a proxy process started, readiness-checked and stopped by the script's trap)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import free_port

from launcher.proxy import stats as proxy_stats
from launcher.proxy import wiring
from launcher.proxy.settings import ProxyConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "url, expected",
    [
        ("http://10.0.0.1:8000/v1/chat/completions", "http://127.0.0.1:9/v1/chat/completions"),
        ("https://api.x.com/serving/v1/completions", "http://127.0.0.1:9/v1/completions"),
        ("http://h:8000/v1", "http://127.0.0.1:9/v1"),
        ("http://h:8000/v1/chat/completions/", "http://127.0.0.1:9/v1/chat/completions"),
    ],
)
def test_task_url(url, expected):
    assert wiring.task_url(url, 9) == expected


def test_proxy_config_and_switch():
    endpoint = {
        "url": "http://h/v1/chat/completions",
        "api_key": "MY_KEY",
        "adapter_config": {"use_caching": False},
    }
    assert wiring.proxy_config(endpoint) == {
        "upstream": "http://h/v1/chat/completions",
        "api_key_env": "MY_KEY",
        "adapter_config": {"use_caching": False},
    }
    assert (
        wiring.proxy_config(endpoint, upstream="http://127.0.0.1:8011")["upstream"] == "http://127.0.0.1:8011"
    )
    assert wiring.enabled(endpoint) and wiring.enabled({**endpoint, "proxy": True})
    assert not wiring.enabled({**endpoint, "proxy": False})
    with pytest.raises(ProxyConfigError, match="adapter_config.use_cache"):
        wiring.proxy_config({**endpoint, "adapter_config": {"use_cache": True}})


def test_stats_summary(tmp_path):
    assert proxy_stats.read(tmp_path) is None
    (tmp_path / proxy_stats.STATS_FILE).write_text("{torn")
    assert proxy_stats.read(tmp_path) is None
    data = {"requests": 10, "cache_hits": 4, "upstream_requests": 7, "retries": 1,
            "errors": {"upstream_503": 1}, "tokens_in": 50, "tokens_out": 20,
            "latency_ms": {"p50": 51.2, "p95": 80.0}}  # fmt: skip
    (tmp_path / proxy_stats.STATS_FILE).write_text(json.dumps(data))
    assert proxy_stats.summary(proxy_stats.read(tmp_path)) == (
        "10 req, 4 cached, 7 upstream, 1 retries, 1 errors, 50/20 tok in/out, p50 51 ms, p95 80 ms"
    )


def test_counters_of_several_proxies_combine():
    """Slurm runs one proxy per array element: counts add up, latency is the slowest proxy's."""
    a = {
        "requests": 10,
        "cache_hits": 4,
        "upstream_requests": 7,
        "errors": {"upstream_503": 1},
        "responses": {"200": 9},
        "tokens_in": 50,
        "tokens_out": 20,
        "latency_ms": {"p50": 51.2, "p95": 80.0},
    }
    b = {"requests": 5, "upstream_requests": 5, "errors": {"upstream_503": 2, "timeout": 1},
         "responses": {"200": 5}, "tokens_in": "x", "latency_ms": {"p50": 60.0, "p95": None}}  # fmt: skip
    both = proxy_stats.combine([a, b])
    assert (both["requests"], both["cache_hits"], both["tokens_in"], both["tokens_out"]) == (15, 4, 50, 20)
    assert both["errors"] == {"upstream_503": 3, "timeout": 1} and both["responses"] == {"200": 14}
    assert proxy_stats.summary(both) == (
        "2 proxies, 15 req, 4 cached, 12 upstream, 0 retries, 4 errors, 50/20 tok in/out,"
        " p50 60 ms (slowest proxy), p95 80 ms (slowest proxy)"
    )


def test_the_adaptive_budget_in_the_summary_and_added_up_over_proxies():
    one = {"requests": 3, "concurrency": {"limit": 12, "settled": 16, "max_concurrent": 64, "queued": 0,
           "upstream_429": 3, "upstream_5xx": 1, "overloads": 4, "waited_s": 41.25}}  # fmt: skip
    assert proxy_stats.summary(one).endswith(
        "concurrency settled 16 (now 12, cap 64), 3 x 429, 1 x 5xx, 41.2 s waited"
    )
    both = proxy_stats.combine([one, one, {"requests": 1}])  # each Slurm element: its own budget
    assert both["concurrency"]["settled"] == 32 and both["concurrency"]["waited_s"] == 82.5


@pytest.mark.parametrize(
    "written, tasks, expected",
    [
        ([], ["a", "b"], None),  # proxy off or not started
        (["."], ["a", "b"], (1, "all tasks of the invocation")),  # local: one proxy per invocation
        (["."], [], (1, "all tasks of the invocation")),
        (["a", "."], ["a"], (2, "this task")),  # Slurm element: the task's own proxy wins
        (["a", "."], ["b"], (1, "all tasks of the invocation")),
        (["a"], ["a", "b"], (2, "each task's own proxy, added up")),  # one element's proxy wrote
        (["a", "b"], ["a", "b"], (5, "each task's own proxy, added up")),
    ],
)
def test_read_stats_finds_the_counters_where_the_proxies_write_them(tmp_path, written, tasks, expected):
    requests = {".": 1, "a": 2, "b": 3}
    for folder in written:
        (tmp_path / folder / wiring.STATE_DIR).mkdir(parents=True)
        counters = proxy_stats.Stats()  # the proxy's own writer and format
        counters.requests = requests[folder]
        proxy_stats.write_atomic(
            tmp_path / folder / wiring.STATE_DIR / proxy_stats.STATS_FILE, counters.snapshot()
        )
    found = wiring.read_stats(tmp_path, [tmp_path / t for t in tasks])
    assert (found and (found[0]["requests"], found[1])) == expected
    if expected and expected[1].startswith("each"):
        assert found[0]["proxies"] == len(written)


def test_node_proxies_counts_add_up_and_each_nodes_concurrency_is_its_latest_proxys(tmp_path):
    """Slurm's node proxies: one folder per start (<node>/<starter's job id>); a node's earlier proxies
    (before a resume) add their counts, not their limit."""
    starts = [("vm", "7", 100.0, 2, 16), ("vm", "9", 200.0, 3, 8), ("other", "8", 150.0, 4, 4)]
    for node, job, started, requests, limit in starts:
        folder = tmp_path / wiring.STATE_DIR / "nodes" / node / job
        folder.mkdir(parents=True)
        snap = {"started": started, "requests": requests}
        snap["concurrency"] = {"limit": limit, "settled": limit, "max_concurrent": 64, "upstream_429": 1}
        proxy_stats.write_atomic(folder / proxy_stats.STATS_FILE, snap)
    (tmp_path / wiring.STATE_DIR / "nodes" / "vm" / "lease").touch()  # the lock files are no proxy's
    found, what = wiring.read_stats(tmp_path, [])
    assert what == "each node's proxy, added up (all tasks of the invocation)"
    assert (found["proxies"], found["requests"]) == (3, 9)
    concurrency = found["concurrency"]
    assert (concurrency["limit"], concurrency["max_concurrent"], concurrency["upstream_429"]) == (12, 128, 3)


def script(tmp_path: Path, upstream: str, body: str) -> Path:
    (tmp_path / "logs").mkdir()
    (tmp_path / wiring.STATE_DIR).mkdir()
    (tmp_path / wiring.CONFIG_FILE).write_text(json.dumps({"upstream": upstream, "adapter_config": {}}))
    path = tmp_path / "run_all.sh"
    path.write_text(
        'set -u\ncd "$(dirname "$0")" || exit 1\ntrap stop_proxy EXIT\ntrap \'exit 143\' TERM INT\n'
        + wiring.render_start(sys.executable, free_port(), ready_timeout=20)
        + body
    )
    return path


def run(path: Path, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        ["bash", str(path)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw
    )


def test_rendered_start_serves_then_stops_with_the_script(tmp_path):
    path = script(
        tmp_path,
        "http://127.0.0.1:9/v1/chat/completions",
        'echo "port $(cat proxy/proxy.port) pid $proxy_pid"\n',
    )
    proc = run(path)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    pid = int(out.split()[-1])
    assert out.startswith("port ")
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    assert proxy_stats.read(tmp_path / "proxy") is not None  # SIGTERM from the trap wrote the counters
    assert "listening on" in (tmp_path / "logs/proxy.log").read_text()


def test_the_script_draws_a_credential_its_tasks_present_and_writes_it_nowhere(tmp_path):
    """N1: the proxy run_all.sh starts answers only the credential the script drew (exported to its
    tasks, i.e. the containers' API_KEY); another client without it gets 401; no file holds it."""
    ask = (
        "import http.client, os, sys\n"
        "c = http.client.HTTPConnection('127.0.0.1', int(sys.argv[1]), timeout=10)\n"
        "token = os.environ['LAUNCHER_PROXY_TOKEN']\n"
        "auth = {'Authorization': 'Bearer ' + token} if sys.argv[2] == 'y' else {}\n"
        "c.request('POST', '/v1/chat/completions', body=b'[', headers=auth)\n"
        "print(c.getresponse().status)\n"
    )
    (tmp_path / "ask.py").write_text(ask)
    path = script(
        tmp_path,
        "http://127.0.0.1:9/v1/chat/completions",
        f'port=$(cat proxy/proxy.port)\n{sys.executable} ask.py "$port" y\n'
        f'{sys.executable} ask.py "$port" n\necho "token $LAUNCHER_PROXY_TOKEN"\n',
    )
    proc = run(path)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    with_token, without, token_line = out.splitlines()
    assert (with_token, without) == ("400", "401")  # the body `[` is refused only once admitted
    token = token_line.split()[1]
    assert len(token) == 64 and int(token, 16) >= 0
    assert all(token not in f.read_text(errors="replace") for f in tmp_path.rglob("*") if f.is_file())
    again = run(path).communicate(timeout=60)[0].splitlines()[-1].split()[1]
    assert again != token  # drawn anew each time the proxy starts


def test_killed_script_leaves_no_proxy(tmp_path):
    path = script(tmp_path, "http://127.0.0.1:9/v1", 'echo "pid $proxy_pid"\nsleep 60 & wait\n')
    proc = run(path, start_new_session=True)
    pid = int(proc.stdout.readline().split()[-1])
    os.killpg(proc.pid, signal.SIGTERM)  # what `launcher kill` does to the script's group
    proc.wait(timeout=30)
    deadline = time.monotonic() + 20
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists()


def test_proxy_that_cannot_start_fails_the_script_with_a_reason(tmp_path):
    path = script(tmp_path, "http://127.0.0.1:9/v1", "echo unreachable\n")
    (tmp_path / wiring.CONFIG_FILE).write_text("{}")  # no upstream: the proxy exits 2 at once
    (tmp_path / "events.log").write_text("")
    proc = run(path)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "unreachable" not in out
    assert "the endpoint proxy exited before it was ready; see logs/proxy.log" in err
    assert "exited" in (tmp_path / "events.log").read_text()


def test_plan_from_the_run_spec_endpoint():
    class Endpoint:  # the RunSpec's dataclass, as the executors pass it
        url = "http://h/v1/completions"
        api_key = "K"
        proxy = True
        proxy_port = 8123
        adapter_config = {"use_caching": False}

    port, files = wiring.plan(Endpoint(), "0000abcd")
    assert port == 8123
    assert json.loads(files[wiring.CONFIG_FILE])["adapter_config"] == {"use_caching": False}
    Endpoint.proxy = False
    assert wiring.plan(Endpoint(), "0000abcd") is None
    port, _ = wiring.plan({"url": "http://h/v1", "api_key": None}, "0000abcd")
    assert port == wiring.port_for("0000abcd")  # 0 or absent: drawn from the invocation id


def test_port_for_is_stable_and_below_the_ephemeral_range():
    ports = {wiring.port_for(f"{n:08x}") for n in range(2000)}
    assert wiring.port_for("0000abcd") == wiring.port_for("0000abcd")
    assert min(ports) >= 20000 and max(ports) < 32768 and len(ports) > 1800
