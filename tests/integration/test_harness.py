"""The harness against a real local endpoint: retries, checkpoints, kill -9, SIGTERM, rescore."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def write_config(results: Path, url: str, task: str = "gsm8k", chat: bool = True, **params) -> Path:
    results.mkdir(parents=True, exist_ok=True)
    defaults = {
        "parallelism": 8,
        "request_timeout": 5.0,
        "max_retries": 5,
        "max_error_fraction": 0.05,
        "limit_samples": None,
        "temperature": 0.0,
        "top_p": None,
        "max_tokens": 64,
        "seed": None,
        "stop": None,
    }
    config = {
        "task": task,
        "model_id": "fake",
        "url": url,
        "endpoint_type": "chat" if chat else "completions",
        "api_key_env": "API_KEY",
        "params": {**defaults, **params},
    }
    path = results / "run_config.json"
    path.write_text(json.dumps(config))
    return path


def harness(*args, env=None, **kw):
    return subprocess.run(
        [sys.executable, "-m", "launcher.harness", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        **kw,
    )


def score(results: Path, task: str, metric: str) -> float:
    data = json.loads((results / "results.json").read_text())
    return data["results"]["tasks"][task]["metrics"][metric]["scores"][metric]["value"]


def samples(results: Path) -> list[dict]:
    return [json.loads(line) for line in (results / "samples.jsonl").read_text().splitlines()]


def test_oracle_scores_one_and_writes_results_in_the_expected_shape(endpoint, tmp_path):
    ep = endpoint("oracle")
    config = write_config(tmp_path / "r", ep.url(), limit_samples=40)
    proc = harness("run", "--config", config, env={"API_KEY": "sk-harness-secret-1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert score(tmp_path / "r", "gsm8k", "exact_match") == 1.0
    yml = yaml.safe_load((tmp_path / "r/results.yml").read_text())
    stats = yml["results"]["tasks"]["gsm8k"]["metrics"]["exact_match"]["scores"]["exact_match"]["stats"]
    assert stats == {"stderr": 0.0, "count": 40, "errors": 0}
    assert yml["model_id"] == "fake"
    progress = json.loads((tmp_path / "r/progress.json").read_text())
    assert (progress["done"], progress["total"], progress["errors"]) == (40, 40, 0)
    record = samples(tmp_path / "r")[0]
    assert {"id", "request", "response", "score", "latency", "attempts"} <= set(record)
    for path in (tmp_path / "r").iterdir():
        assert "sk-harness-secret-1" not in path.read_text()
    assert "sk-harness-secret-1" not in proc.stdout + proc.stderr


def test_wrong_answers_score_zero_completions_endpoint(endpoint, tmp_path):
    ep = endpoint("wrong")
    config = write_config(tmp_path / "r", ep.url(chat=False), task="humaneval", chat=False, limit_samples=10)
    proc = harness("run", "--config", config)
    assert proc.returncode == 0, proc.stdout
    assert score(tmp_path / "r", "humaneval", "pass@1") == 0.0


def test_faults_are_retried_every_sample_scored_same_score_as_clean(endpoint, tmp_path):
    ep = endpoint("oracle", fault_rate=0.3, slow=1.5)
    config = write_config(tmp_path / "r", ep.url(), task="truthfulqa_mc1", request_timeout=1.0)
    proc = harness("run", "--config", config)
    assert proc.returncode == 0, proc.stdout
    assert score(tmp_path / "r", "truthfulqa_mc1", "accuracy") == 1.0
    stats = ep.stats()
    assert len(stats["faulted"]) >= 15  # 30% of 100 samples met a fault first
    assert all(r["error"] is None and r["score"] == 1.0 for r in samples(tmp_path / "r"))
    assert max(stats["requests"].values()) == 2  # one fault, one retry


def test_endpoint_down_fails_the_task_clearly_and_keeps_the_record(tmp_path):
    config = write_config(
        tmp_path / "r", "http://127.0.0.1:9/v1/chat/completions", limit_samples=5, max_retries=1
    )
    proc = harness("run", "--config", config)
    assert proc.returncode == 1
    assert "task failed: 5 of 5 samples errored" in proc.stdout and "connection error" in proc.stdout
    assert all(r["error"] for r in samples(tmp_path / "r"))


def start_harness_until(config: Path, results: Path, finished: int) -> subprocess.Popen:
    """The harness in the background, returned once `finished` samples are in its checkpoint."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "launcher.harness", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    deadline = time.monotonic() + 30
    while not (results / "samples.jsonl").exists() or len(samples_tolerant(results)) < finished:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    return proc


def test_kill_9_then_restart_requests_no_finished_sample_again(endpoint, tmp_path):
    ep = endpoint("oracle", latency=0.02)
    results = tmp_path / "r"
    config = write_config(results, ep.url(), parallelism=4, limit_samples=300)
    proc = start_harness_until(config, results, finished=60)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with open(results / "samples.jsonl", "a") as fh:
        fh.write('{"id": "gsm8k-299", "respo')  # a torn last line, as a kill mid-write leaves it
    finished_before = {r["id"] for r in samples_tolerant(results)}
    assert 60 <= len(finished_before) < 300
    rerun = harness("run", "--config", config)
    assert rerun.returncode == 0, rerun.stdout
    requests = ep.stats()["requests"]
    assert all(requests[i] == 1 for i in finished_before), "a finished sample was requested again"
    assert len(samples(results)) == 300 and score(results, "gsm8k", "exact_match") == 1.0


def samples_tolerant(results: Path) -> list[dict]:
    out = []
    for line in (results / "samples.jsonl").read_text().splitlines():
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out


def test_sigterm_stops_promptly_with_a_distinct_code(endpoint, tmp_path):
    ep = endpoint("oracle", latency=0.2)
    results = tmp_path / "r"
    config = write_config(results, ep.url(), parallelism=2, limit_samples=200)
    proc = start_harness_until(config, results, finished=4)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 143 and "stopped by SIGTERM" in out
    assert all(r["score"] == 1.0 for r in samples(results))  # every line parses
    assert json.loads((results / "progress.json").read_text())["done"] == len(samples(results))


def test_rescore_sends_no_request(endpoint, tmp_path):
    ep = endpoint("oracle")
    config = write_config(tmp_path / "r", ep.url(), task="humaneval", limit_samples=8)
    assert harness("run", "--config", config).returncode == 0
    ep.stop()  # nothing to answer now
    before = (tmp_path / "r/results.json").read_text()
    proc = harness("rescore", tmp_path / "r")
    assert proc.returncode == 0, proc.stdout
    assert score(tmp_path / "r", "humaneval", "pass@1") == 1.0
    assert json.loads(before)["results"] == json.loads((tmp_path / "r/results.json").read_text())["results"]


@pytest.mark.parametrize("bad", [{"task": "nope"}, None])
def test_unusable_config_exits_2(tmp_path, bad):
    path = tmp_path / "run_config.json"
    path.write_text("{not json" if bad is None else json.dumps(bad))
    proc = harness("run", "--config", path)
    assert proc.returncode == 2 and "error:" in proc.stdout


def test_a_body_that_arrives_in_pieces_is_read_whole():
    """A long completion arrives in many TCP pieces; the client must not parse the first one alone."""
    import asyncio
    import http.server
    import threading

    from launcher.harness.client import Client

    text = "x" * 300_000
    body = json.dumps({"choices": [{"message": {"content": text}}]}).encode()

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for i in range(0, len(body), 50_000):
                self.wfile.write(body[i : i + 50_000])
                self.wfile.flush()
                time.sleep(0.02)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    async def ask():
        client = Client(
            f"http://127.0.0.1:{server.server_port}/v1/chat/completions", "m", True, None, 1, 10, 0
        )
        async with client:
            return await client.complete(client.payload("hi", {}))

    try:
        reply = asyncio.run(ask())
    finally:
        server.shutdown()
    assert reply.text == text and reply.attempts == 1
