"""The harness against a real local endpoint (launcher.testing.endpoint, its own process) with the test
tasks of tests/harness_tasks.py: retries, checkpoints, kill -9, SIGTERM, scoring off the loop, log-prob
alignment, repeats, secrets, hostile bodies, and code in the sandbox container."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from helpers import write_run_config

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
ENV = {**os.environ, "PYTHONPATH": f"{ROOT}:{TESTS}"}


class Endpoint:
    def __init__(self, *args: str):
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "launcher.testing.endpoint",
                "--port",
                "0",
                "--tasks",
                "harness_tasks",
                *args,
            ],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **ENV, "HOSTILE_PORT": os.environ.get("HOSTILE_PORT", "9")},
        )
        line = self.proc.stdout.readline()
        assert line.startswith("listening on "), line
        self.base = f"http://127.0.0.1:{int(line.split()[-1])}"

    def url(self, chat: bool = True) -> str:
        return f"{self.base}/v1/chat/completions" if chat else f"{self.base}/v1/completions"

    def stats(self) -> dict:
        import urllib.request

        with urllib.request.urlopen(f"{self.base}/stats", timeout=10) as resp:
            return json.load(resp)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture
def endpoint():
    started: list[Endpoint] = []

    def start(*args: str) -> Endpoint:
        started.append(Endpoint(*args))
        return started[-1]

    yield start
    for ep in started:
        ep.stop()


def harness(*args, tasks: str = "harness_tasks", env=None, **kw):
    return subprocess.run(
        [sys.executable, "-m", "launcher.harness", "--tasks", tasks, *map(str, args)],
        capture_output=True,
        text=True,
        env={**ENV, **(env or {})},
        timeout=120,
        **kw,
    )


def task_results(results: Path, task: str) -> dict:
    return json.loads((results / "results.json").read_text())["results"]["tasks"][task]


def value(results: Path, task: str, metric: str) -> float:
    return task_results(results, task)["metrics"][metric]["scores"][metric]["value"]


def samples(results: Path) -> list[dict]:
    out = []
    for line in (results / "samples.jsonl").read_text().splitlines():
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out


def test_oracle_scores_one_results_carry_protocol_samples_and_errors(endpoint, tmp_path):
    ep = endpoint("--mode", "oracle")
    r = tmp_path / "r"
    proc = harness("run", "--config", write_run_config(r, ep.url(), params={"limit_samples": 40}))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    entry = yaml.safe_load((r / "results.yml").read_text())["results"]["tasks"]["add"]
    assert entry["metrics"]["exact_match"]["scores"]["exact_match"] == {
        "value": 1.0,
        "stats": {"stderr": 0.0, "count": 40, "errors": 0},
    }
    assert entry["protocol"].startswith("test task") and entry["chance"] == 0.0
    assert entry["samples"]["subsample"] == "first 40 of 300 items (limit_samples)"
    record = samples(r)[0]
    assert record["calls"][0]["finish_reason"] == "stop" and record["calls"][0]["usage"]["total_tokens"] > 0
    progress = json.loads((r / "progress.json").read_text())
    assert (progress["done"], progress["total"], progress["errors"]) == (40, 40, 0)


def test_wrong_answers_score_zero_on_a_completions_endpoint(endpoint, tmp_path):
    ep = endpoint("--mode", "wrong")
    config = write_run_config(tmp_path / "r", ep.url(chat=False), chat=False, params={"limit_samples": 10})
    assert harness("run", "--config", config).returncode == 0
    assert value(tmp_path / "r", "add", "exact_match") == 0.0


def test_faults_are_retried_and_score_as_a_clean_endpoint(endpoint, tmp_path):
    ep = endpoint("--mode", "oracle", "--fault-rate", "0.3", "--slow", "1.5")
    config = write_run_config(tmp_path / "r", ep.url(), params={"limit_samples": 100, "request_timeout": 1.0})
    proc = harness("run", "--config", config)
    assert proc.returncode == 0, proc.stdout
    assert value(tmp_path / "r", "add", "exact_match") == 1.0
    assert len(ep.stats()["faulted"]) >= 15 and max(ep.stats()["requests"].values()) == 2


def test_errors_are_counted_apart_and_fail_the_run_above_the_limit(endpoint, tmp_path):
    ep = endpoint("--mode", "oracle", "--fault-rate", "0.3", "--faults", "500", "--fault-persist")
    config = write_run_config(tmp_path / "r", ep.url(), params={"limit_samples": 60, "max_retries": 1})
    proc = harness("run", "--config", config)
    assert proc.returncode == 1 and "task failed:" in proc.stdout and "HTTP 500" in proc.stdout
    entry = task_results(tmp_path / "r", "add")
    errors = entry["errors"]["count"]
    assert 5 < errors < 40 and entry["metrics"]["exact_match"]["scores"]["exact_match"]["value"] == 1.0
    assert entry["metrics"]["exact_match"]["scores"]["exact_match"]["stats"]["count"] == 60 - errors


def test_endpoint_down_fails_clearly_and_keeps_the_records(tmp_path):
    config = write_run_config(
        tmp_path / "r", "http://127.0.0.1:9/v1/chat/completions", params={"limit_samples": 5}
    )
    proc = harness("run", "--config", config)
    assert (
        proc.returncode == 1 and "5 of 5 samples errored" in proc.stdout and "connection error" in proc.stdout
    )
    assert all(r["error"] for r in samples(tmp_path / "r"))


def start_until(config: Path, results: Path, finished: int, tasks: str = "harness_tasks") -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "launcher.harness", "--tasks", tasks, "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    deadline = time.monotonic() + 30
    while not (results / "samples.jsonl").exists() or len(samples(results)) < finished:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    return proc


def test_kill_9_then_restart_requests_no_finished_sample_again(endpoint, tmp_path):
    ep = endpoint("--mode", "oracle", "--latency", "0.02")
    r = tmp_path / "r"
    config = write_run_config(r, ep.url(), params={"parallelism": 4})
    proc = start_until(config, r, finished=60)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with open(r / "samples.jsonl", "a") as fh:
        fh.write('{"key": "add-299", "respo')  # a torn last line, as a kill mid-write leaves it
    finished = {x["key"] for x in samples(r)}
    assert 60 <= len(finished) < 300
    rerun = harness("run", "--config", config)
    assert rerun.returncode == 0, rerun.stdout
    from harness_tasks import ADD

    requests = ep.stats()["requests"]
    for sample in ADD.load():
        if sample.id in finished:
            prompt = [{"role": "user", "content": f"{sample.input}\nEnd with 'Answer: <number>'."}]
            assert requests["chat:" + json.dumps(prompt, sort_keys=True)] == 1, (
                "a finished sample was asked again"
            )
    assert len(samples(r)) == 300 and value(r, "add", "exact_match") == 1.0


def test_sigterm_stops_promptly_with_a_distinct_code(endpoint, tmp_path):
    ep = endpoint("--mode", "oracle", "--latency", "0.2")
    r = tmp_path / "r"
    proc = start_until(write_run_config(r, ep.url(), params={"parallelism": 2}), r, finished=4)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 143 and "stopped by SIGTERM" in out
    assert json.loads((r / "progress.json").read_text())["done"] == len(samples(r))


def test_a_scorer_that_never_returns_costs_its_sample_not_the_loop(endpoint, tmp_path):
    """A scorer stuck in a backtracking regex (it holds the GIL) runs in a worker process: requests go on,
    the sample errors after score_timeout, and SIGTERM mid-scoring still ends the run at once."""
    ep = endpoint("--mode", "echo")
    r = tmp_path / "r"
    config = write_run_config(r, ep.url(), task="frozen", params={"score_timeout": 1.0})
    proc = harness("run", "--config", config, tasks="harness_tasks:FROZEN_TASKS")
    assert proc.returncode == 1, proc.stdout
    assert all("scoring took longer than 1 s" in x["error"] for x in samples(r)) and len(samples(r)) == 3

    (r / "samples.jsonl").unlink()
    write_run_config(r, ep.url(), task="frozen", params={"score_timeout": 600.0})
    running = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "launcher.harness",
            "--tasks",
            "harness_tasks:FROZEN_TASKS",
            "run",
            "--config",
            str(r / "run_config.json"),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    deadline = time.monotonic() + 30
    while ep.stats()["total"] < 6:  # this run's 3 requests answered: the loop runs while the scorers spin
        assert time.monotonic() < deadline and running.poll() is None
        time.sleep(0.05)
    running.send_signal(signal.SIGTERM)
    out, _ = running.communicate(timeout=15)
    assert running.returncode == 143 and "stopped by SIGTERM" in out


def test_loglikelihood_multiple_choice_oracle_wrong_and_subsample(endpoint, tmp_path):
    for mode, expected in (("oracle", 1.0), ("wrong", 0.0)):
        ep = endpoint("--mode", mode)
        r = tmp_path / mode
        proc = harness("run", "--config", write_run_config(r, ep.url(chat=False), task="choice", chat=False))
        assert proc.returncode == 0, proc.stdout
        assert value(r, "choice", "acc") == expected and value(r, "choice", "acc_norm") == expected
        entry = task_results(r, "choice")
        assert (
            entry["chance"] == 0.25
            and entry["samples"]["subsample"] == "6 hand-written items of a notional 60"
        )
        assert samples(r)[0]["calls"][0]["kind"] == "loglikelihood"


@pytest.mark.parametrize(
    ("logprobs", "reason"),
    [("shifted", "prompt log-probabilities are misaligned"), ("none", "returns no prompt log-probabilities")],
)
def test_an_endpoint_with_unusable_logprobs_fails_the_task_with_the_reason(
    endpoint, tmp_path, logprobs, reason
):
    ep = endpoint("--mode", "oracle", "--logprobs", logprobs)
    r = tmp_path / "r"
    proc = harness("run", "--config", write_run_config(r, ep.url(chat=False), task="choice", chat=False))
    assert (
        proc.returncode == 1 and reason in proc.stdout and "cannot run against this endpoint" in proc.stdout
    )
    assert not (r / "results.json").exists()  # never a chance-level score


def test_a_chat_endpoint_for_a_completions_only_task_is_a_config_error(tmp_path):
    config = write_run_config(tmp_path / "r", "http://127.0.0.1:9/v1/x", task="choice")
    proc = harness("run", "--config", config)
    assert proc.returncode == 2 and "runs against completions endpoints" in proc.stdout


def test_repeats_keys_per_item_mean_then_task_mean(endpoint, tmp_path):
    ep = endpoint("--mode", "oracle")
    r = tmp_path / "r"
    assert harness("run", "--config", write_run_config(r, ep.url(), task="repeats")).returncode == 0
    assert sorted(x["key"] for x in samples(r))[:4] == ["add-0#0", "add-0#1", "add-0#2", "add-0#3"]
    entry = task_results(r, "repeats")
    assert entry["samples"]["repeats"] == 4 and value(r, "repeats", "exact_match") == 0.5
    assert entry["metrics"]["exact_match"]["scores"]["exact_match"]["stats"]["count"] == 5
    write_run_config(r, ep.url(), task="repeats", repeats=2)  # the run config's repeats win over the task's
    assert harness("score", r).returncode == 0 and task_results(r, "repeats")["samples"]["repeats"] == 2


def test_secret_values_are_redacted_from_everything_stored_or_printed(endpoint, tmp_path):
    ep = endpoint("--mode", "oracle", "--fault-rate", "1", "--faults", "leak-auth")
    r = tmp_path / "r"
    config = write_run_config(r, ep.url(), params={"limit_samples": 5}, redact_env=["HF_TOKEN"])
    secrets = {"API_KEY": "sk-harness-secret-1", "HF_TOKEN": "hf_other_secret_2"}
    proc = harness("run", "--config", config, env=secrets)
    assert proc.returncode == 1 and "[redacted $API_KEY]" in proc.stdout
    assert all("[redacted $API_KEY]" in x["error"] for x in samples(r))
    for path in r.iterdir():
        assert not any(v in path.read_text() for v in secrets.values()), path
    assert not any(v in proc.stdout + proc.stderr for v in secrets.values())


def test_a_gzip_bomb_is_capped_on_decompressed_bytes(endpoint, tmp_path):
    ep = endpoint("--mode", "oracle", "--fault-rate", "1", "--faults", "gzip-bomb", "--fault-persist")
    r = tmp_path / "r"
    # request_timeout: the endpoint compresses its 1 GiB bomb at the first request (seconds on a busy machine)
    params = {"limit_samples": 2, "max_retries": 0, "parallelism": 1, "request_timeout": 120.0}
    config = write_run_config(r, ep.url(), params=params)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "launcher.harness",
            "--tasks",
            "harness_tasks",
            "run",
            "--config",
            str(config),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 1, out
    assert all("response larger than 10485760 bytes" in x["error"] for x in samples(r))
    # A 1 GiB body: inflated, the harness would pass 1 GiB; capped at 10 MiB it stays far below 512 MiB.
    assert usage.ru_maxrss < 512 * 1024, f"{usage.ru_maxrss} KiB: the 1 GiB body was inflated"


def test_a_deeply_nested_reply_errors_that_sample_only(endpoint, tmp_path):
    ep = endpoint("--mode", "oracle", "--fault-rate", "0.2", "--faults", "deep-json", "--fault-persist")
    r = tmp_path / "r"
    config = write_run_config(
        r, ep.url(), params={"limit_samples": 50, "max_retries": 0, "max_error_fraction": 1}
    )
    proc = harness("run", "--config", config)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    errors = [x for x in samples(r) if x["error"]]
    assert errors and all("malformed response" in x["error"] for x in errors) and len(samples(r)) == 50
    assert value(r, "add", "exact_match") == 1.0


def test_forged_checkpoint_lines_are_ignored(endpoint, tmp_path):
    ep = endpoint("--mode", "wrong")
    r = tmp_path / "r"
    config = write_run_config(r, ep.url(), params={"limit_samples": 8})
    assert harness("run", "--config", config).returncode == 0
    forged = {
        "key": "add-0",
        "id": "add-0",
        "error": None,
        "output": {"response": "x"},
        "scores": {"exact_match": 1.0},
    }
    extra = {**forged, "key": "add-999", "id": "add-999"}
    with open(r / "samples.jsonl", "a") as fh:
        fh.write(json.dumps(forged) + "\n" + json.dumps(extra) + "\n")
    assert harness("run", "--config", config).returncode == 0
    assert value(r, "add", "exact_match") == 0.0 and task_results(r, "add")["errors"]["attempts"] == 8


def test_score_sends_no_request(endpoint, tmp_path):
    ep = endpoint("--mode", "oracle")
    r = tmp_path / "r"
    config = write_run_config(r, ep.url(), params={"limit_samples": 8})
    assert harness("run", "--config", config).returncode == 0
    ep.stop()
    before = json.loads((r / "results.json").read_text())["results"]
    assert harness("score", r).returncode == 0
    assert json.loads((r / "results.json").read_text())["results"] == before


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ({"task": "nope", "model_id": "m", "url": "u"}, "known tasks: add, choice, code, repeats"),
        (
            {"task": "add", "model_id": "m", "url": "u", "params": {"max_error_fraction": -1}},
            "max_error_fraction",
        ),
        (None, "not valid JSON"),
    ],
)
def test_unusable_config_exits_2_with_one_line(tmp_path, config, says):
    path = tmp_path / "run_config.json"
    path.write_text("{not json" if config is None else json.dumps(config))
    proc = harness("run", "--config", path)
    assert proc.returncode == 2 and says in proc.stdout and "Traceback" not in proc.stdout + proc.stderr


def test_code_task_phases_on_the_host(endpoint, tmp_path):
    """run saves responses and executes nothing; execute (here on the host, as an unused uid) prints
    verdicts; score turns them into results. The container variant is below."""
    if os.geteuid() != 0:
        pytest.skip("execute changes uid: needs root")
    for mode, expected in (("oracle", 1.0), ("wrong", 0.0)):
        ep = endpoint("--mode", mode)
        r = tmp_path / mode
        run = harness("run", "--config", write_run_config(r, ep.url(), task="code"))
        assert run.returncode == 0 and "not executed yet" in run.stdout and not (r / "results.json").exists()
        execute = harness("execute", r, "--uid", "64124", "--python", "/usr/bin/python3")
        assert execute.returncode == 0, execute.stdout + execute.stderr
        (r / "verdicts.jsonl").write_text(execute.stdout)
        assert len(execute.stdout.splitlines()) == 4
        again = harness("execute", r, "--uid", "64124", "--python", "/usr/bin/python3")
        assert again.stdout == ""  # judged programs are not run twice
        assert harness("score", r).returncode == 0 and value(r, "code", "pass@1") == expected


def test_a_body_that_arrives_in_pieces_is_read_whole():
    import asyncio
    import http.server

    from launcher.harness.client import Client, Settings

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
        url = f"http://127.0.0.1:{server.server_port}/v1/chat/completions"
        async with Client(Settings(url, "m", None, 1, 10, 0)) as client:
            return await client.post({"messages": []})

    try:
        reply = asyncio.run(ask())
    finally:
        server.shutdown()
    assert reply.body["choices"][0]["message"]["content"] == text and reply.attempts == 1


# ---- the sandbox container ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox_image(request):
    """The harness image (conftest's harness_image); LAUNCHER_TEST_HARNESS_IMAGE names another build of
    this checkout's harness (e.g. a worktree's own tag) without touching the shared one."""
    own = os.environ.get("LAUNCHER_TEST_HARNESS_IMAGE")
    return own or request.getfixturevalue("harness_image")


def test_hostile_programs_in_the_sandbox_container_fail_and_nothing_escapes(
    endpoint, tmp_path, sandbox_image
):
    """The execute phase as run.sh runs it (contract.sandbox_argv): each hostile program fails its sample;
    the witness, run last, finds no process of the sandbox uid left and passes."""
    from launcher.harness.contract import sandbox_argv

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    os.environ["HOSTILE_PORT"] = str(port)  # the endpoint bakes it into the "connect" reply
    try:
        ep = endpoint("--mode", "oracle", "--tasks", "harness_tasks:hostile_tasks")
    finally:
        del os.environ["HOSTILE_PORT"]
    r = tmp_path / "results"
    config = write_run_config(r, ep.url(chat=False), task="hostile", chat=False)
    run = harness(
        "run", "--config", config, tasks="harness_tasks:hostile_tasks", env={"API_KEY": "sk-in-run"}
    )
    assert run.returncode == 0, run.stdout + run.stderr
    before = (r / "samples.jsonl").read_text()
    argv = sandbox_argv(sandbox_image, str(r))
    image_at = argv.index(sandbox_image)
    argv[image_at:image_at] = ["-v", f"{TESTS / 'harness_tasks.py'}:/opt/harness/src/harness_tasks.py:ro"]
    argv[argv.index("launcher.harness") + 1 : argv.index("launcher.harness") + 1] = [
        "--tasks",
        "harness_tasks:hostile_tasks",
    ]
    os.chown(r, 1000, 1000)  # as a user's results folder is: 0700 and not root's
    os.chmod(r, 0o700)
    with open(r / "verdicts.jsonl", "w") as out:
        proc = subprocess.run(argv, stdout=out, stderr=subprocess.PIPE, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    with pytest.raises(TimeoutError):
        listener.accept()  # nothing connected to the host
    verdicts = {json.loads(x)["key"]: json.loads(x) for x in (r / "verdicts.jsonl").read_text().splitlines()}
    from harness_tasks import HOSTILE

    assert set(verdicts) == set(HOSTILE)
    why = {
        "environ": "no secret readable",
        "connect": "Error: [Errno",  # no network: connection refused or network unreachable
        "write_results": "/results/samples.jsonl",  # denied (root's file) on a read-only mount
        "fork_bomb": "Resource temporarily unavailable",
        "grandchild": "timed out",
        "witness": "passed",
    }
    for key, verdict in verdicts.items():
        assert verdict["passed"] is (key == "witness"), (key, verdict)
        assert why[key] in verdict["detail"], (key, verdict)
    assert (r / "samples.jsonl").read_text() == before
    score = harness("score", r, tasks="harness_tasks:hostile_tasks")
    assert score.returncode == 0 and value(r, "hostile", "pass@1") == pytest.approx(1 / len(HOSTILE))
