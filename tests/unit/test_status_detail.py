"""`status --detail`: the endpoint proxy's counters, live from a running proxy (a real `python -m
launcher.proxy` on 127.0.0.1) and from the file it writes when it stops; and how they are printed."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from launcher.api import InvocationStatus
from launcher.cli.render import proxy_lines, render, render_json
from launcher.executors.local import LocalConfig, LocalExecutor, live_proxy_stats
from launcher.model import InvocationRecord, JobStatus, State
from launcher.proxy import wiring

ROOT = Path(__file__).resolve().parents[2]
COUNTERS = {
    "requests": 10, "cache_hits": 4, "upstream_requests": 7, "retries": 1,
    "errors": {"upstream_503": 1, "timeout": 2, "none": 0}, "tokens_in": 50, "tokens_out": 20,
    "latency_ms": {"p50": 51.2, "p95": 80.0},
}  # fmt: skip


def record(folder) -> InvocationRecord:
    return InvocationRecord("abcd1234", str(folder), "local", {}, (), 0.0)


def test_proxy_lines_say_live_or_last_written_and_the_errors_by_kind():
    live = InvocationStatus(record("/x"), [], proxy=COUNTERS, proxy_live=True)
    final = InvocationStatus(record("/x"), [], proxy={"requests": 3})
    none = InvocationStatus(record("/x"), [])
    assert proxy_lines([live, final, none]) == [
        "proxy of abcd1234 (live): 10 req, 4 cached, 7 upstream, 1 retries, 3 errors, 50/20 tok in/out, "
        "p50 51 ms, p95 80 ms; errors: timeout 2, upstream_503 1",
        "proxy of abcd1234 (last written): 3 req, 0 cached, 0 upstream, 0 retries, 0 errors, 0/0 tok in/out",
    ]
    job = JobStatus("abcd1234.0", "t0", State.RUNNING, "/x/t0")
    with_job = InvocationStatus(record("/x"), [job], proxy=COUNTERS, proxy_live=True)
    assert "proxy of" not in render([with_job])  # only with --detail
    assert render([with_job], detail=True).splitlines()[-1].startswith("proxy of abcd1234 (live): 10 req")
    assert json.loads(render_json([with_job]))[0]["proxy"] == {**COUNTERS, "live": True}


def test_counters_are_read_live_from_the_running_proxy_then_from_its_file(tmp_path):
    state = tmp_path / wiring.STATE_DIR
    state.mkdir()
    config = {"upstream": "http://127.0.0.1:9/v1/chat/completions", "adapter_config": {}}
    (tmp_path / wiring.CONFIG_FILE).write_text(json.dumps(config))
    executor = LocalExecutor(LocalConfig())
    assert executor.proxy_stats(record(tmp_path)) is None  # no proxy yet
    proc = subprocess.Popen(
        [sys.executable, "-m", "launcher.proxy", "--config", str(tmp_path / wiring.CONFIG_FILE),
         "--state-dir", str(state), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), wiring.TOKEN_ENV: "x" * 64},
    )  # fmt: skip
    try:
        assert proc.stdout.readline().startswith("listening on")
        deadline = time.monotonic() + 20
        while not (state / "proxy.pid").exists() and time.monotonic() < deadline:  # once it serves
            time.sleep(0.05)
        data, live = executor.proxy_stats(record(tmp_path))
        assert live and data["requests"] == 0 and "latency_ms" in data
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert live_proxy_stats(state) is None  # its pid file names a process that is gone
    data, live = executor.proxy_stats(record(tmp_path))
    assert not live and data["requests"] == 0  # what it wrote when it stopped


def test_a_pid_file_naming_another_process_is_not_asked(tmp_path):
    (tmp_path / "proxy.pid").write_text(f"{os.getpid()}\n")  # pytest, not launcher.proxy
    (tmp_path / "proxy.port").write_text("9\n")
    assert live_proxy_stats(tmp_path) is None
    (tmp_path / "proxy.pid").write_text("not a pid\n")
    assert live_proxy_stats(tmp_path) is None


def test_status_with_proxy_counters_stays_light(tmp_path):
    """A status look (with its proxy counters) imports neither aiohttp nor the Docker SDK (0.5 s each)."""
    state = tmp_path / wiring.STATE_DIR
    state.mkdir(parents=True)
    (state / "proxy_stats.json").write_text(json.dumps(COUNTERS))
    (state / "proxy.pid").write_text("1\n")
    (state / "proxy.port").write_text("9\n")
    (tmp_path / "t0").mkdir()
    (tmp_path / "t0" / "events.log").write_text("queued 1\nstarted 2 1\nexited 3 0\n")
    code = (
        "import sys\n"
        "from launcher import api\n"
        "from launcher.model import InvocationRecord, PlannedJob\n"
        f"rec = InvocationRecord('abcd1234', {str(tmp_path)!r}, 'local', {{}}, "
        "(PlannedJob('abcd1234.0', 't0', 't0', 'img'),), 0.0)\n"
        "one = api.status_of(rec)\n"
        "assert [s.state.value for s in one.jobs] == ['SUCCEEDED'] and one.proxy['requests'] == 10, one\n"
        "heavy = [m for m in ('aiohttp', 'docker') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
