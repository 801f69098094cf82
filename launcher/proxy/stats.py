"""Live counters of the proxy (GET /proxy/stats, <state-dir>/proxy_stats.json). This module owns that
format: requests, upstream_requests, cache_hits, retries, errors (by kind), responses (by status),
tokens_in, tokens_out, latency_ms (p50, p95 over the last 10,000 requests), in_flight, max_in_flight, and
concurrency (launcher.proxy.limiter: the limit now and settled, max_concurrent, queued, upstream_429,
upstream_5xx, overloads, waited_s)."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import Counter, deque
from pathlib import Path

STATS_FILE = "proxy_stats.json"


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Stats:
    def __init__(self):
        self.started = time.time()
        self.requests = self.upstream_requests = self.cache_hits = self.retries = 0
        self.tokens_in = self.tokens_out = 0
        self.errors: Counter[str] = Counter()
        self.responses: Counter[str] = Counter()
        self.latencies: deque[float] = deque(maxlen=10_000)
        self.reasoning_chars = 0

    def snapshot(self, budget=None) -> dict:
        lat = list(self.latencies)
        p50, p95 = percentile(lat, 0.5), percentile(lat, 0.95)
        return {
            "started": round(self.started, 3),
            "uptime_s": round(time.time() - self.started, 3),
            "requests": self.requests,
            "upstream_requests": self.upstream_requests,
            "cache_hits": self.cache_hits,
            "retries": self.retries,
            "errors": dict(self.errors),
            "responses": dict(self.responses),
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "reasoning_chars": self.reasoning_chars,
            "latency_ms": {
                "p50": None if p50 is None else round(p50 * 1000, 3),
                "p95": None if p95 is None else round(p95 * 1000, 3),
            },
            "in_flight": budget.in_flight if budget else 0,
            "max_in_flight": budget.max_in_flight if budget else 0,
            "concurrency": budget.snapshot() if budget else {},
        }


def write_atomic(path: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w") as out:
        json.dump(data, out, indent=1)
    os.replace(tmp, path)


def read(state_dir: Path) -> dict | None:
    """The last written counters of a proxy (None when it never wrote any or the file is unreadable)."""
    try:
        data = json.loads((Path(state_dir) / STATS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def combine(many: list[dict]) -> dict:
    """Counters of several proxies (one per Slurm array element) as one: counts add up; percentiles of
    different proxies do not, so the latency is the slowest proxy's (named `latency_ms_max`)."""
    out: dict = {"proxies": len(many), "errors": Counter(), "responses": Counter()}
    worst: dict[str, float] = {}
    for stats in many:
        for key in ("requests", "upstream_requests", "cache_hits", "retries", "tokens_in", "tokens_out"):
            value = stats.get(key)
            out[key] = out.get(key, 0) + (value if isinstance(value, int) else 0)
        for key in ("errors", "responses"):
            counts = stats.get(key)
            if isinstance(counts, dict):
                out[key].update({k: v for k, v in counts.items() if isinstance(v, int)})
        for q, value in (stats.get("latency_ms") or {}).items():
            if isinstance(value, (int, float)):
                worst[q] = max(worst.get(q, value), value)
        for key, value in (stats.get("concurrency") or {}).items():  # each proxy has its own budget
            if isinstance(value, (int, float)):
                out.setdefault("concurrency", {})[key] = out.get("concurrency", {}).get(key, 0) + value
    out["errors"], out["responses"] = dict(out["errors"]), dict(out["responses"])
    out["latency_ms_max"] = worst
    return out


def summary(stats: dict) -> str:
    """One short line for `launcher status` (e.g. a PROXY column or `status --detail`)."""
    errors = sum(v for v in (stats.get("errors") or {}).values() if isinstance(v, int))
    latency = stats.get("latency_ms") or stats.get("latency_ms_max") or {}
    slowest = " (slowest proxy)" if "latency_ms_max" in stats else ""
    parts = [f"{stats['proxies']} proxies"] if "proxies" in stats else []
    parts += [
        f"{stats.get('requests', 0)} req",
        f"{stats.get('cache_hits', 0)} cached",
        f"{stats.get('upstream_requests', 0)} upstream",
        f"{stats.get('retries', 0)} retries",
        f"{errors} errors",
        f"{stats.get('tokens_in', 0)}/{stats.get('tokens_out', 0)} tok in/out",
    ]
    for q in ("p50", "p95"):
        if isinstance(latency.get(q), (int, float)):
            parts.append(f"{q} {latency[q]:.0f} ms{slowest}")
    c = stats.get("concurrency") or {}
    if "settled" in c:
        parts.append(
            f"concurrency settled {c['settled']} (now {c.get('limit')}, cap {c.get('max_concurrent')}),"
            f" {c.get('upstream_429', 0)} x 429, {c.get('upstream_5xx', 0)} x 5xx,"
            f" {c.get('waited_s', 0):.1f} s waited"
        )
    return ", ".join(parts)
