"""The endpoint proxy: an aiohttp server on 127.0.0.1 that forwards OpenAI-compatible requests to one
upstream, for clients that present the invocation's credential (wiring.TOKEN_ENV) on the routes an evaluation
uses (transforms.ROUTES), adding the key (read here, from the host environment, by name) and applying the
interceptors of `settings.py` in this order: payload modifier, system prompt, cache lookup, budget + retries,
reasoning stripping, cache store, request log, counters."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import random
import socket
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from launcher.proxy import transforms as tx
from launcher.proxy.limiter import TASK_HEADER, Limiter
from launcher.proxy.settings import ProxySettings
from launcher.proxy.stats import STATS_FILE, Stats, write_atomic
from launcher.proxy.wiring import PID_FILE, PROGRESS_PATH, READY_PATH

log = logging.getLogger("launcher.proxy")

# The client's own timeout (launcher.harness.client), applied to each attempt upstream from when it is
# sent, not to the time the request waits here (the queue, Retry-After): bounded by request_timeout.
TIMEOUT_HEADER = "X-Launcher-Timeout"
# Never forwarded upstream: the client's credentials (the proxy adds the real key), hop-by-hop headers,
# what aiohttp sets itself, and ours.
DROP_REQUEST = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "accept-encoding",
        "te",
        "upgrade",
        TASK_HEADER.lower(),
        TIMEOUT_HEADER.lower(),
    }
)
DROP_RESPONSE = frozenset(
    {"content-length", "content-encoding", "transfer-encoding", "connection", "keep-alive"}
)


class TooLarge(Exception):
    pass


async def read_capped(up: aiohttp.ClientResponse, cap: int) -> bytes:
    """The whole (decompressed) body, or TooLarge past `cap` bytes; one read when the length is known."""
    if up.content_length is not None and "Content-Encoding" not in up.headers:
        if up.content_length > cap:
            raise TooLarge(up.content_length)
        return await up.read()
    chunks, size = [], 0
    async for chunk in up.content.iter_any():
        size += len(chunk)
        if size > cap:
            raise TooLarge(size)
        chunks.append(chunk)
    return b"".join(chunks)


def well_formed(data: bytes) -> bool:
    """Only a whole OpenAI-shaped answer is cached: a torn or malformed body must be asked for again,
    never served to every retry (the client retries it, the cache would answer the same)."""
    try:
        reply = json.loads(data)
    except (ValueError, RecursionError):
        return False
    return isinstance(reply, dict) and isinstance(reply.get("choices"), list) and bool(reply["choices"])


def error_response(status: int, kind: str, message: str) -> web.Response:
    return web.json_response(
        {"error": {"message": f"proxy: {message}", "type": kind, "code": status}}, status=status
    )


class Proxy:
    def __init__(self, settings: ProxySettings, state_dir: Path, api_key: str | None, files=(None, None)):
        self.settings, self.state_dir, self.key = settings, state_dir, api_key
        self.secrets = (api_key,) if api_key else ()
        self.key_bytes = api_key.encode() if api_key else b""
        self.stats = Stats()
        self.budget: Limiter | None = None
        self.session: aiohttp.ClientSession | None = None
        self.rng = random.Random()
        self.pending: dict[str, asyncio.Future] = {}  # cache key -> the answer of the request in flight
        self.cache, self.reqlog = files  # __main__.open_files: opened before the proxy said it is ready

    # ---- lifecycle ------------------------------------------------------------------------------------
    async def start(self) -> None:
        r = self.settings.retry
        self.budget = Limiter(self.settings.budget)
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
            timeout=aiohttp.ClientTimeout(total=r.request_timeout, sock_connect=r.connect_timeout),
            skip_auto_headers=("User-Agent",),
        )

    async def close(self) -> None:
        if self.session:
            await self.session.close()
        if self.reqlog:
            self.reqlog.close()
        if self.cache:
            self.cache.close()
        self.write_stats()

    def snapshot(self) -> dict:
        data = self.stats.snapshot(self.budget)
        if self.reqlog:
            data["log"] = {"written": self.reqlog.written, "dropped": self.reqlog.dropped}
        return data

    def write_stats(self) -> None:
        try:
            write_atomic(self.state_dir / STATS_FILE, self.snapshot())
        except OSError as err:
            log.warning("cannot write %s: %s", STATS_FILE, err)

    # ---- handlers -------------------------------------------------------------------------------------
    async def handle_stats(self, _request: web.Request) -> web.Response:
        return web.json_response(self.snapshot())

    async def handle_progress(self, _request: web.Request) -> web.Response:
        return web.Response(status=204)  # a sink: the count is read from the task's own file (wiring)

    async def handle_models(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        self.stats.requests += 1
        return await self.forward(request, b"", started, transform=False)

    async def handle_completions(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        self.stats.requests += 1
        raw = await request.read()
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("not a JSON object")
        except RecursionError:
            self.stats.errors["bad_request"] += 1
            return error_response(400, "invalid_request_error", "the request body is nested too deeply")
        except ValueError as err:
            self.stats.errors["bad_request"] += 1
            return error_response(
                400, "invalid_request_error", f"the request body is not a JSON object: {err}"
            )
        s = self.settings
        new = tx.modify_payload(body, s.payload) if s.payload.active else body
        if s.system_prompt.enabled:
            new = tx.apply_system_prompt(new, s.system_prompt)
        if new is not body:
            raw = json.dumps(new, ensure_ascii=False).encode()
        stream = new.get("stream") is True
        key = mine = None
        cacheable = self.settings.cache.cache_sampled or tx.deterministic(new)
        if self.cache is not None and not stream and cacheable:
            key = tx.cache_key(self.settings.upstream, request.path, new)
            hit = self.cache.get(key)
            if hit is None and key in self.pending:  # the same request is on its way: share its answer
                hit = await asyncio.shield(self.pending[key])
            if hit is not None:
                self.stats.cache_hits += 1
                return self.finish(request, new, 200, hit, started, "hit")
            if key not in self.pending:
                mine = self.pending[key] = asyncio.get_running_loop().create_future()
        try:
            return await self.forward(request, raw, started, transform=True, body=new, key=key, stream=stream)
        finally:
            if mine is not None:
                if self.pending.get(key) is mine:
                    del self.pending[key]
                if not mine.done():
                    mine.set_result(None)  # no answer stored: the waiters ask upstream themselves

    # ---- forwarding -----------------------------------------------------------------------------------
    def upstream_headers(self, request: web.Request) -> dict:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in DROP_REQUEST}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        headers["Accept-Encoding"] = "identity"  # bodies are read, capped and parsed here
        return headers

    async def forward(
        self,
        request: web.Request,
        raw: bytes,
        started: float,
        *,
        transform: bool,
        body: dict | None = None,
        key: str | None = None,
        stream: bool = False,
    ) -> web.StreamResponse:
        url = tx.upstream_url(self.settings.upstream, request.path)  # a route admit() let through
        headers = self.upstream_headers(request)
        retry = self.settings.retry
        task = request.headers.get(TASK_HEADER, "")
        throttled_until = time.perf_counter() + retry.request_timeout  # 429s are waited out until then
        timeout = attempt_timeout(request.headers.get(TIMEOUT_HEADER), retry)
        attempt = 0
        while True:
            last = attempt == retry.max_retries
            ticket = await self.budget.acquire(task)
            tokens, status, wait, timed_out = 0, None, None, False
            if request.transport is None or request.transport.is_closing():
                # The client gave up while it queued (its own timeout): nobody would read the answer.
                self.budget.release(ticket, None)
                self.stats.errors["client_gone"] += 1
                return error_response(499, "client_closed", "the client closed the connection while queued")
            try:
                self.stats.upstream_requests += 1
                async with self.session.request(
                    request.method, url, data=raw or None, headers=headers, **timeout
                ) as up:
                    status = up.status
                    if status == 429 and time.perf_counter() < throttled_until:
                        # Waited out here (the limiter holds every request until Retry-After) and retried
                        # without spending an attempt: the task never sees it.
                        await up.read()
                        self.stats.errors["upstream_429"] += 1
                        after = tx.retry_after_seconds(up.headers.get("Retry-After"))
                        wait = min(retry.backoff_base if after is None else after, retry.backoff_max)
                        continue
                    if up.status in tx.RETRY_STATUSES and not last:
                        await up.read()
                        self.stats.retries += 1
                        self.stats.errors[f"upstream_{up.status}"] += 1
                        delay = tx.retry_delay(
                            attempt, tx.retry_after_seconds(up.headers.get("Retry-After")), retry, self.rng
                        )
                    elif stream and up.status == 200:
                        return await self.relay_stream(request, up, started)
                    else:
                        try:
                            data = await read_capped(up, self.settings.max_response_bytes)
                        except TooLarge:
                            self.stats.errors["too_large"] += 1
                            self.stats.responses["502"] += 1
                            return error_response(
                                502,
                                "upstream_too_large",
                                f"the upstream's answer is larger than max_response_bytes"
                                f" ({self.settings.max_response_bytes})",
                            )
                        if self.key_bytes and self.key_bytes in data:  # an upstream echoing the key
                            data = data.replace(self.key_bytes, b"<redacted>")
                        if transform and up.status == 200:
                            tokens = self.count_tokens(data)
                        return self.finish(
                            request,
                            body,
                            up.status,
                            data,
                            started,
                            "miss" if key else "off",
                            up,
                            key,
                            transform,
                        )
            except (aiohttp.ClientError, asyncio.TimeoutError) as err:
                kind = "timeout" if isinstance(err, asyncio.TimeoutError) else "connection"
                timed_out = kind == "timeout"
                self.stats.errors[kind] += 1
                if last:
                    code = 504 if timed_out else 502
                    self.stats.responses[str(code)] += 1
                    message = tx.redact(
                        f"upstream {url} {'timed out' if kind == 'timeout' else 'unreachable'} after "
                        f"{attempt + 1} attempt(s): {type(err).__name__}: {err}",
                        self.secrets,
                    )
                    log.warning("%s", message)
                    return error_response(code, f"upstream_{kind}", message)
                self.stats.retries += 1
                delay = tx.retry_delay(attempt, None, retry, self.rng)
            finally:
                self.budget.release(ticket, status, tokens, wait, timed_out)
            attempt += 1
            await asyncio.sleep(delay)

    def count_tokens(self, data: bytes) -> int:
        try:
            tokens_in, tokens_out = tx.usage_tokens(json.loads(data))
        except ValueError:
            return 0
        self.stats.tokens_in += tokens_in
        self.stats.tokens_out += tokens_out
        return tokens_in + tokens_out

    def finish(
        self,
        request: web.Request,
        body: dict | None,
        status: int,
        data: bytes,
        started: float,
        cache: str,
        upstream: aiohttp.ClientResponse | None = None,
        key: str | None = None,
        transform: bool = True,
    ) -> web.Response:
        """The client's response from an upstream (or cached) body: store, strip reasoning, log, count."""
        headers = {"X-Proxy-Cache": cache}
        content_type = "application/json"
        if upstream is not None:
            content_type = upstream.headers.get("Content-Type", content_type)
        if status == 200 and transform:
            if key is not None and cache == "miss" and well_formed(data):
                self.cache.put(key, data)
                waiting = self.pending.get(key)
                if waiting is not None and not waiting.done():
                    waiting.set_result(data)  # identical requests that came meanwhile
            if self.settings.reasoning.enabled:
                data, meta = self.strip(data)
                if meta:
                    headers["X-Proxy-Reasoning-Chars"] = ",".join(str(m["reasoning_chars"]) for m in meta)
        if status != 200:
            self.stats.errors[f"upstream_{status}"] += 1
        self.stats.responses[str(status)] += 1
        elapsed = time.perf_counter() - started
        self.stats.latencies.append(elapsed)
        if self.reqlog is not None:
            self.reqlog.record(request.path, status, cache, elapsed, body, data)
        response = web.Response(body=data, status=status, headers=headers)
        response.content_type = content_type.split(";")[0]
        return response

    def strip(self, data: bytes) -> tuple[bytes, list[dict]]:
        try:
            parsed = json.loads(data)
        except ValueError:
            return data, []
        if not isinstance(parsed, dict):
            return data, []
        stripped, meta = tx.strip_reasoning(parsed, self.settings.reasoning)
        if not meta:
            return data, meta
        self.stats.reasoning_chars += sum(m["reasoning_chars"] for m in meta)
        stripped["proxy_reasoning"] = meta
        return json.dumps(stripped, ensure_ascii=False).encode(), meta

    async def relay_stream(
        self, request: web.Request, up: aiohttp.ClientResponse, started: float
    ) -> web.StreamResponse:
        """SSE passed through chunk by chunk, untouched (no cache, no reasoning stripping for streams)."""
        response = web.StreamResponse(status=up.status)
        for name, value in up.headers.items():
            if name.lower() not in DROP_RESPONSE:
                response.headers[name] = value
        response.headers["X-Proxy-Cache"] = "off"
        await response.prepare(request)
        try:
            async for chunk in up.content.iter_any():
                if self.key_bytes and self.key_bytes in chunk:
                    chunk = chunk.replace(self.key_bytes, b"<redacted>")
                await response.write(chunk)
        except (aiohttp.ClientError, asyncio.TimeoutError) as err:
            # Too late for a status or a retry: the client sees the stream end early.
            self.stats.errors["stream_broken"] += 1
            log.warning(
                "upstream stream broke off: %s", tx.redact(f"{type(err).__name__}: {err}", self.secrets)
            )
        else:
            self.stats.responses["200"] += 1
        await response.write_eof()
        self.stats.latencies.append(time.perf_counter() - started)
        return response


# Open without the credential: the progress sink (nemo-evaluator's interceptor posts there without our
# header; nothing is read or forwarded) and the counters `launcher status` asks for.
OPEN = frozenset({("POST", PROGRESS_PATH), ("GET", "/proxy/stats")})


def attempt_timeout(header: str | None, retry) -> dict:
    """The session.request timeout of each attempt upstream: the client's (X-Launcher-Timeout, seconds)
    when it is shorter than request_timeout, else the session's."""
    try:
        seconds = float(header) if header else 0.0
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < retry.request_timeout:  # also NaN
        return {}
    return {"timeout": aiohttp.ClientTimeout(total=seconds, sock_connect=retry.connect_timeout)}


def admit(token: str):
    """The middleware every request passes first: the credential, then the route exactly as sent
    (transforms.refusal); a handler's unexpected error is one log line and a 500, never a traceback."""
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def middleware(request: web.Request, handler) -> web.StreamResponse:
        if (request.method, request.raw_path) not in OPEN:
            given = request.headers.get("Authorization", "").encode("utf-8", "replace")
            if not hmac.compare_digest(given, expected):
                return error_response(
                    401, "authentication_error", "present the task's API_KEY as `Authorization: Bearer`"
                )
            if (request.method, request.raw_path) == ("GET", READY_PATH):  # the credential is right
                return web.Response(status=204)
            refused = tx.refusal(request.method, request.raw_path)
            if refused is not None:
                return error_response(refused[0], "invalid_request_error", refused[1])
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception as err:  # noqa: BLE001  # one line for the log, the client gets a 500
            log.error("%s %s: %s: %s", request.method, request.path, type(err).__name__, err)
            return error_response(500, "proxy_error", f"internal error ({type(err).__name__})")

    return middleware


def build_app(proxy: Proxy, token: str) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[admit(token)])
    app.router.add_get("/proxy/stats", proxy.handle_stats)
    app.router.add_post(PROGRESS_PATH, proxy.handle_progress)
    app.router.add_post("/v1/chat/completions", proxy.handle_completions)
    app.router.add_post("/v1/completions", proxy.handle_completions)
    app.router.add_get("/v1/models", proxy.handle_models, allow_head=False)
    return app


async def serve(
    proxy: Proxy,
    sock: socket.socket,
    stop: asyncio.Event,
    token: str,
    grace: float = 5.0,
    node_dir: Path | None = None,
) -> None:
    """Serve on the listening `sock` until `stop` is set, to clients that present `token`; then let
    in-flight requests finish for up to `grace` seconds. `node_dir`: shared by a Slurm node's array
    elements (launcher.proxy.node), which also sets `stop` once none uses it."""
    await proxy.start()
    runner = web.AppRunner(build_app(proxy, token), access_log=None, shutdown_timeout=grace)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    (proxy.state_dir / PID_FILE).write_text(f"{os.getpid()}\n")  # serving: status may ask it live
    port = sock.getsockname()[1]
    log.info("proxy on 127.0.0.1:%d -> %s", port, tx.redact(proxy.settings.upstream, proxy.secrets))

    async def periodic() -> None:
        while True:
            await asyncio.sleep(proxy.settings.stats_interval)
            proxy.write_stats()

    writer = asyncio.create_task(periodic())
    watcher = None
    if node_dir is not None:
        from launcher.proxy import node

        watcher = asyncio.create_task(node.watch(node_dir, proxy.budget, proxy.settings.budget, stop))
    try:
        await stop.wait()
    finally:
        writer.cancel()
        if watcher is not None:
            watcher.cancel()
        await runner.cleanup()
        await proxy.close()
