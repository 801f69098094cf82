"""Async OpenAI-compatible client: bounded connections, retries with backoff and jitter, Retry-After.

Transient failures (429, 5xx, timeouts, dropped connections, malformed or oversized bodies) are retried;
4xx other than 408/409/429 are not. The API key is only ever in the Authorization header. The body cap
counts decompressed bytes: compressed bodies are inflated here, never by aiohttp, so a gzip bomb stops
at MAX_BODY.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
import zlib
from dataclasses import dataclass

import aiohttp

MAX_BODY = 10 * 1024 * 1024  # decompressed bytes; a larger response is a malformed response
BACKOFF_BASE = 0.5  # seconds, doubled per attempt, full jitter
BACKOFF_CAP = 30.0
RETRY_AFTER_CAP = 120.0
CONNECT_TIMEOUT = 30.0  # behind the endpoint proxy, which times the rest (Settings.proxied)
# ... but a proxy alive and stuck must not hang the task forever: past this (or 10x the timeout, if
# longer) an attempt behind it fails as a timeout. Long enough for any fair queue of a real invocation.
PROXIED_BACKSTOP = 3600.0
RETRY_STATUS = {408, 409, 429}
WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class RequestFailed(Exception):
    """The request failed for good (out of retries, or not retryable)."""


class Transient(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Settings:
    url: str
    model_id: str
    api_key: str | None = None
    parallelism: int = 16
    timeout: float = 120.0
    max_retries: int = 5
    task: str | None = None  # sent as X-Launcher-Task: the endpoint proxy queues each task apart
    # Behind the launcher's endpoint proxy: `timeout` is sent as X-Launcher-Timeout and the proxy applies
    # it to each attempt upstream from when it sends it (a 504 past it), so the time a request waits in
    # the proxy's queue or out a Retry-After is not spent against it; here only connecting is timed.
    proxied: bool = False


@dataclass
class Reply:
    body: dict  # the parsed JSON object
    attempts: int
    latency: float


class Client:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.headers = {"Content-Type": "application/json", "Accept-Encoding": "gzip, deflate"}
        if settings.api_key:
            self.headers["Authorization"] = f"Bearer {settings.api_key}"
        if settings.task:
            self.headers["X-Launcher-Task"] = settings.task
        if settings.proxied:
            self.headers["X-Launcher-Timeout"] = f"{settings.timeout:g}"
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Client:
        connector = aiohttp.TCPConnector(limit=self.settings.parallelism)
        self.session = aiohttp.ClientSession(
            connector=connector,
            headers=self.headers,
            timeout=(
                aiohttp.ClientTimeout(
                    total=max(PROXIED_BACKSTOP, 10 * self.settings.timeout), sock_connect=CONNECT_TIMEOUT
                )
                if self.settings.proxied
                else aiohttp.ClientTimeout(total=self.settings.timeout)
            ),
            auto_decompress=False,  # _read_capped inflates with a cap
        )
        return self

    async def __aexit__(self, *exc) -> None:
        await self.session.close()

    async def post(self, payload: dict, url: str | None = None) -> Reply:
        data = json.dumps(payload).encode()
        started = time.monotonic()
        last, retries = "no attempt made", self.settings.max_retries
        for attempt in range(retries + 1):
            try:
                body = await self._once(url or self.settings.url, data)
                return Reply(body, attempt + 1, time.monotonic() - started)
            except Transient as err:
                last = str(err)
                if attempt == retries:
                    break
                delay = random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))
                if err.retry_after is not None:
                    delay = max(delay, min(err.retry_after, RETRY_AFTER_CAP))
                await asyncio.sleep(delay)
        raise RequestFailed(f"out of retries after {retries + 1} attempts: {last}")

    async def _once(self, url: str, data: bytes) -> dict:
        try:
            async with self.session.post(url, data=data) as resp:
                status = resp.status
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                body = await _read_capped(resp)
        except asyncio.TimeoutError:
            raise Transient("request timed out") from None
        except aiohttp.ClientError as err:
            raise Transient(f"connection error: {type(err).__name__}") from None
        if status >= 500 or status in RETRY_STATUS:
            raise Transient(f"HTTP {status}", retry_after)
        if status >= 400:
            raise RequestFailed(f"HTTP {status}: {_snippet(body)}")
        try:
            reply = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: a deeply nested body
            raise Transient(f"malformed response: {_snippet(body)}") from None
        if not isinstance(reply, dict):
            raise Transient(f"malformed response: {_snippet(body)}")
        return reply


class TooLarge(Transient):
    def __init__(self):
        super().__init__(f"response larger than {MAX_BODY} bytes")


async def _read_capped(resp: aiohttp.ClientResponse) -> bytes:
    """The whole decompressed body; TooLarge past MAX_BODY decompressed bytes."""
    encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        if resp.content_length is not None and resp.content_length <= MAX_BODY:
            return await resp.read()  # the common case, and the fastest: aiohttp reads exactly that length
        inflate = None
    elif encoding in WBITS:
        inflate = zlib.decompressobj(WBITS[encoding])
    else:
        raise Transient(f"unsupported Content-Encoding {encoding!r}")
    chunks, size = [], 0
    async for chunk in resp.content.iter_chunked(1 << 16):
        if inflate is not None:
            try:
                chunk = inflate.decompress(chunk, MAX_BODY + 1 - size)  # never more than the cap
            except zlib.error:
                raise Transient(f"malformed {encoding} body") from None
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY or (inflate is not None and inflate.unconsumed_tail):
            raise TooLarge()
    return b"".join(chunks)


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _snippet(body: bytes) -> str:
    text = body[:120].decode("utf-8", "replace").replace("\n", " ").strip()
    return repr(text) if text else "(empty body)"
