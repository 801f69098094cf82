"""The request/response log: JSONL, one record per proxied request, secrets redacted, capped in count
and bytes, optionally sampled. This module owns that format (fields: time, path, status, cache, latency_ms,
request, response)."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from launcher.proxy.settings import LogSettings
from launcher.proxy.transforms import redact

FILE = "proxy_requests.jsonl"  # in the proxy's state folder


class RequestLog:
    def __init__(self, path: str | Path, settings: LogSettings, secrets: tuple[str, ...], seed: int = 0):
        self.path, self.settings, self.secrets = Path(path), settings, secrets
        self.rng = random.Random(seed)
        self.written = self.bytes = self.dropped = 0
        self.file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (kept open for the proxy's life)

    def record(self, path: str, status: int, cache: str, latency: float, request, response: bytes) -> None:
        s = self.settings
        if s.sample_rate < 1.0 and self.rng.random() >= s.sample_rate:
            return
        if (s.max_requests is not None and self.written >= s.max_requests) or self.bytes >= s.max_bytes:
            self.dropped += 1
            return
        try:
            response_value = json.loads(response)
        except ValueError:
            response_value = response.decode(errors="replace")
        line = json.dumps(
            {
                "time": round(time.time(), 3),
                "path": path,
                "status": status,
                "cache": cache,
                "latency_ms": round(latency * 1000, 2),
                "request": request,
                "response": response_value,
            },
            ensure_ascii=False,
        )
        line = redact(line, self.secrets) + "\n"
        if self.bytes + len(line) > s.max_bytes:
            self.dropped += 1
            self.bytes = s.max_bytes
            return
        self.file.write(line)
        self.written += 1
        self.bytes += len(line)

    def close(self) -> None:
        self.file.close()
