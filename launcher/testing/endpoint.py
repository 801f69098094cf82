"""A local OpenAI-compatible endpoint that knows the benchmarks' answers, for tests and benchmarks.

    python -m launcher.testing.endpoint --port 8000 --mode oracle [--latency 0.05] [--fault-rate 0.2]

Modes: `oracle` answers every known prompt correctly (score 1.0), `wrong` answers every one wrongly (0.0),
`echo` answers "ok" fast without looking anything up (throughput benchmarks). `--fault-rate` makes that
share of requests fail first (500, 503, 429 with Retry-After, dropped connection, a response slower than
`--slow` seconds, malformed JSON, an HTML error page); a retried request is answered normally, so a
client that retries scores exactly as against a clean endpoint. GET /stats gives requests per sample id.
Serves 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from collections import Counter

from aiohttp import web

FAULTS = ("500", "503", "429", "drop", "slow", "malformed", "html")


def answer_book() -> dict[str, tuple[str, object, object]]:
    """prompt text -> (sample id, task, sample) for every benchmark prompt, chat and completions."""
    from launcher.harness.tasks import TASKS

    book = {}
    for task in TASKS.values():
        for sample in task.loader():
            book[sample.prompt] = (sample.id, task, sample)
            if sample.completion_prompt:
                book[sample.completion_prompt] = (sample.id, task, sample)
    return book


def reply_text(task, sample, correct: bool, chat: bool) -> str:
    if task.kind == "code":
        body = sample.reference if correct else "    raise NotImplementedError\n"
        return body if not chat else f"Here it is:\n```python\n{sample.extra['stub']}{body}```\n"
    if task.kind == "number":
        return f"Let me think.\nAnswer: {sample.reference if correct else '-987654'}"
    letters = sample.extra["letters"]
    wrong = next(x for x in letters if x != sample.reference)
    return f"Reasoning...\nAnswer: {sample.reference if correct else wrong}"


class Endpoint:
    def __init__(self, mode: str, latency: float, fault_rate: float, slow: float, seed: int):
        self.mode, self.latency, self.fault_rate, self.slow = mode, latency, fault_rate, slow
        self.random = random.Random(seed)
        self.book = answer_book() if mode in ("oracle", "wrong") else {}
        self.requests: Counter[str] = Counter()
        self.faulted: Counter[str] = Counter()
        self.total = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        chat = request.path.endswith("/chat/completions")
        body = await request.json()
        prompt = body["messages"][-1]["content"] if chat else body["prompt"]
        self.total += 1
        entry = self.book.get(prompt)
        key = entry[0] if entry else f"unknown:{hash(prompt)}"
        self.requests[key] += 1
        if self.latency:
            await asyncio.sleep(self.latency)
        # A sample's first request may fault; its retry is always answered.
        if self.requests[key] == 1 and self.fault_rate and self.random.random() < self.fault_rate:
            self.faulted[key] += 1
            return await self.fault(request, self.random.choice(FAULTS))
        if self.mode == "echo":
            text = "ok"
        elif entry is None:
            text = "I do not know."
        else:
            text = reply_text(entry[1], entry[2], self.mode == "oracle", chat)
        choice = (
            {"index": 0, "message": {"role": "assistant", "content": text}}
            if chat
            else {"index": 0, "text": text}
        )
        return web.json_response(
            {
                "id": "x",
                "object": "chat.completion",
                "model": body.get("model"),
                "choices": [choice],
                "usage": {"completion_tokens": len(text.split())},
            }
        )

    async def fault(self, request: web.Request, kind: str) -> web.StreamResponse:
        if kind in ("500", "503"):
            return web.json_response({"error": "injected"}, status=int(kind))
        if kind == "429":
            return web.json_response({"error": "slow down"}, status=429, headers={"Retry-After": "0.2"})
        if kind == "drop":
            request.transport.close()
            raise asyncio.CancelledError
        if kind == "slow":
            await asyncio.sleep(self.slow)
            return web.json_response({"error": "too late"}, status=504)
        if kind == "malformed":
            return web.Response(text='{"choices": [', content_type="application/json")
        return web.Response(
            text="<html><body>502 Bad Gateway</body></html>", status=502, content_type="text/html"
        )

    async def stats(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {"total": self.total, "requests": dict(self.requests), "faulted": dict(self.faulted)}
        )


async def serve(port: int, endpoint: Endpoint) -> None:
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", endpoint.handle)
    app.router.add_post("/v1/completions", endpoint.handle)
    app.router.add_get("/stats", endpoint.stats)
    app.router.add_get("/v1/models", lambda _r: web.json_response({"data": [{"id": "fake"}]}))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    print(f"listening on {site._server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m launcher.testing.endpoint")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port (printed)")
    parser.add_argument("--mode", choices=("oracle", "wrong", "echo"), default="oracle")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="share of first requests that fail")
    parser.add_argument("--slow", type=float, default=3.0, help="seconds a 'slow' fault takes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    endpoint = Endpoint(args.mode, args.latency, args.fault_rate, args.slow, args.seed)
    try:
        asyncio.run(serve(args.port, endpoint))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
