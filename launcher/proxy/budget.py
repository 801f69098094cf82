"""One request budget shared by every client of the proxy: max concurrent upstream requests, requests
per second (evenly spaced) and tokens per second (spent after each answer; new requests wait while the
budget is overdrawn)."""

from __future__ import annotations

import asyncio
import time

from launcher.proxy.settings import BudgetSettings


class Budget:
    def __init__(self, settings: BudgetSettings):
        self.settings = settings
        self.slots = asyncio.Semaphore(settings.max_concurrent)
        self.next_start = 0.0
        self.tokens = float(settings.tokens_per_second or 0)
        self.tokens_at = time.monotonic()
        self.in_flight = self.max_in_flight = 0

    async def acquire(self) -> None:
        await self.slots.acquire()
        try:
            await self._pace()
        except BaseException:
            self.slots.release()
            raise
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def release(self, tokens: int = 0) -> None:
        self.in_flight -= 1
        if self.settings.tokens_per_second:
            self._refill()
            self.tokens -= tokens
        self.slots.release()

    def _refill(self) -> None:
        now = time.monotonic()
        rate = self.settings.tokens_per_second
        self.tokens = min(float(rate), self.tokens + (now - self.tokens_at) * rate)
        self.tokens_at = now

    async def _pace(self) -> None:
        rate = self.settings.requests_per_second
        if rate:
            now = time.monotonic()
            start = max(now, self.next_start)
            self.next_start = start + 1.0 / rate
            if start > now:
                await asyncio.sleep(start - now)
        if self.settings.tokens_per_second:
            self._refill()
            while self.tokens < 0:
                await asyncio.sleep(-self.tokens / self.settings.tokens_per_second)
                self._refill()
