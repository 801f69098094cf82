"""Async OpenAI-compatible client: bounded connections, retries with backoff and jitter, Retry-After.

Transient failures (429, 5xx, timeouts, dropped connections, malformed or oversized bodies) are retried;
4xx other than 408/409/429 are not. The API key is only ever in the Authorization header.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from dataclasses import dataclass

import aiohttp

MAX_BODY = 10 * 1024 * 1024  # bytes; a larger response is a malformed response
BACKOFF_BASE = 0.5  # seconds, doubled per attempt, full jitter
BACKOFF_CAP = 30.0
RETRY_AFTER_CAP = 120.0
RETRY_STATUS = {408, 409, 429}


class RequestFailed(Exception):
    """The request failed for good (out of retries, or not retryable); str() is safe to record."""


class Transient(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class Reply:
    text: str
    attempts: int
    latency: float
    usage: dict | None


class Client:
    def __init__(
        self,
        url: str,
        model: str,
        chat: bool,
        api_key: str | None,
        parallelism: int,
        timeout: float,
        max_retries: int,
    ):
        self.url, self.model, self.chat = url, model, chat
        self.max_retries = max_retries
        self.headers = {"Content-Type": "application/json"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.parallelism = parallelism
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Client:
        connector = aiohttp.TCPConnector(limit=self.parallelism, force_close=False)
        self.session = aiohttp.ClientSession(connector=connector, headers=self.headers, timeout=self.timeout)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.session.close()

    def payload(self, prompt: str, params: dict) -> dict:
        body = {"model": self.model, **params}
        if self.chat:
            body["messages"] = [{"role": "user", "content": prompt}]
        else:
            body["prompt"] = prompt
        return body

    async def complete(self, payload: dict) -> Reply:
        data = json.dumps(payload).encode()
        started = time.monotonic()
        last = "no attempt made"
        for attempt in range(self.max_retries + 1):
            try:
                text, usage = await self._once(data)
                return Reply(text, attempt + 1, time.monotonic() - started, usage)
            except Transient as err:
                last = str(err)
                if attempt == self.max_retries:
                    break
                delay = random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))
                if err.retry_after is not None:
                    delay = max(delay, min(err.retry_after, RETRY_AFTER_CAP))
                await asyncio.sleep(delay)
        raise RequestFailed(f"out of retries after {self.max_retries + 1} attempts: {last}")

    async def _once(self, data: bytes) -> tuple[str, dict | None]:
        try:
            async with self.session.post(self.url, data=data) as resp:
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
        if len(body) > MAX_BODY:
            raise Transient(f"response larger than {MAX_BODY} bytes")
        try:
            reply = json.loads(body)
            choice = reply["choices"][0]
            text = choice["message"]["content"] if self.chat else choice["text"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise Transient(f"malformed response: {_snippet(body)}") from None
        if text is not None and not isinstance(text, str):
            raise Transient(f"malformed response: content is {type(text).__name__}, not text")
        return text or "", reply.get("usage") if isinstance(reply, dict) else None


async def _read_capped(resp: aiohttp.ClientResponse) -> bytes:
    """The whole body (it may arrive in many pieces), or MAX_BODY + 1 bytes if it is larger."""
    if resp.content_length is not None and resp.content_length <= MAX_BODY:
        return await resp.read()  # the common case, and the fastest: aiohttp reads exactly that length
    chunks, size = [], 0
    async for chunk in resp.content.iter_chunked(1 << 16):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY:
            break
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
