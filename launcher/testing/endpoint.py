"""A local OpenAI-compatible endpoint that knows the benchmarks' answers, for tests and benchmarks.

    python -m launcher.testing.endpoint --port 8000 --mode oracle [--logprobs aligned|shifted|none]
        [--latency 0.05] [--fault-rate 0.2] [--faults 500,drop] [--fault-persist] [--tasks MODULE]
        [--capacity 16 [--overflow 429|queue] [--retry-after 1]]

Modes: `oracle` answers every known request so that the task scores 1.0, `wrong` so that it scores 0.0,
`echo` answers "ok" fast without looking anything up (throughput benchmarks), `random` answers each
request as `oracle` or as `wrong`, chosen by a hash of `--seed` and the request (the same request always
gets the same answer, in any order and from any client). Nothing is task-specific:
at start every task of `--tasks` (a module with TASKS, default the built-in benchmarks) is solved with a
recording model to learn the requests it sends; then
- a generation prompt gets the first candidate reply ("#### N", "The answer is N.", "Answer: N",
  "\\boxed{N}", option letters...) whose `task.score` gives the headline 1.0 (oracle) or 0.0 (wrong);
  a code task's prompt gets `sample.extra["canonical_solution"]` (oracle) or a body that raises (wrong);
- a log-likelihood request (completions, echo + logprobs) gets high log-probs on the continuation the
  scorer needs as the most likely one (oracle) and very low ones there (wrong).
`--logprobs shifted` reports every prompt token's log-prob as llama-cpp-python 0.3.x does (of the token
after itself, abetlen/llama-cpp-python#1983); `none` returns log-probs for the generated token only, as
llama.cpp's server does. Replies carry finish_reason and usage.

`--correct-share S` (oracle): a generation sample is answered right only when a hash of its sample key
falls below S, so it scores about S; the items answered right at a lower share are a subset of those at
a higher one (paired comparisons of two "models" with a known difference).

`--fault-rate` makes that share of first requests fail (500, 503, 429 with Retry-After, dropped
connection, a response slower than `--slow` seconds, malformed JSON, an HTML error page; `--faults`
picks kinds, including `gzip-bomb` (a small gzip body inflating past any sane cap), `deep-json` (a
100,000-deep nested array) and `leak-auth` (a 400 whose body echoes the Authorization header)); a
retried request is answered normally unless `--fault-persist`. GET /stats gives requests per sample.

`--capacity K` serves at most K requests at once (each taking `--latency`). Above it, `--overflow 429`
(a hosted API's limit) answers 429 with `Retry-After: --retry-after` at once, without counting the
request; `--overflow queue` (a vLLM-like server) queues it, and a request takes
latency x (0.5 + 0.5 x busy/K): a batch slows as it grows, and the throughput levels off at K (its knee).
Serves 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import re
import sys
import time
import zlib
from collections import Counter
from typing import Any

from aiohttp import web

FAULTS = ("500", "503", "429", "drop", "slow", "malformed", "html")
EXTRA_FAULTS = ("gzip-bomb", "deep-json", "leak-auth")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
TOKEN = re.compile(r"\s*\w+|\s*[^\w\s]|\s+")  # words and punctuation, each with its leading whitespace
HIGH, LOW, PLAIN, SHIFTED = -0.01, -50.0, -0.05, -8.0  # log-probs per token


# ---- learning the answers from the tasks themselves ----------------------------------------------------


class Recorder:
    """An api.Model that records the requests a task's `solve` sends and answers them from a script."""

    def __init__(self, endpoint_type: str, reply: str = "", gold: int | None = None):
        self.endpoint_type, self.reply, self.gold = endpoint_type, reply, gold
        self.prompts: list[Any] = []
        self.pairs: list[tuple[str, str]] = []

    async def generate(self, prompt, **params):
        from launcher.harness.api import Generation

        self.prompts.append(prompt)
        return Generation(self.reply, "stop", {"prompt_tokens": 1, "completion_tokens": 1})

    async def loglikelihood(self, context: str, continuation: str):
        index = len(self.pairs)
        self.pairs.append((context, continuation))
        return (0.0, True) if index == self.gold else (-1000.0, False)


def request_key(endpoint_type: str, prompt) -> str:
    if endpoint_type == "chat":
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        return "chat:" + json.dumps(messages, sort_keys=True)
    return "completions:" + prompt


def candidates(sample) -> list[str]:
    t = str(sample.target).strip()
    out = [
        f"#### {t}",
        f"The answer is {t}.",
        f"Answer: {t}",
        f"\\boxed{{{t}}}",
        f"The final answer is {t}",
        t,
    ]
    letters = LETTERS[: max(len(sample.choices), 4)]
    out += [f"Answer: {x}" for x in letters] + [f"The answer is ({x})." for x in letters]
    return [*out, "I do not know."]


def code_reply(sample, correct: bool, chat: bool) -> str:
    body = sample.extra.get("canonical_solution", "") if correct else "    raise NotImplementedError\n"
    return f"```python\n{sample.input}{body}\n```\n" if chat else body


async def solve_with(task, sample, endpoint_type: str, repeat: int, reply: str = "", gold: int | None = None):
    from launcher.harness.api import Context

    model = Recorder(endpoint_type, reply, gold)
    ctx = Context(params={}, repeat=repeat, endpoint_type=endpoint_type)
    output = await task.solve(sample, model, ctx)
    return model, output


def headline(task, sample, output) -> float | None:
    try:
        return float(task.score(sample, output)[0][task.metrics[0]])
    except Exception:
        return None


def total(task, sample, output) -> float:
    """The sum of every metric (oracle: a reply every filter credits, e.g. both of GSM8K's)."""
    try:
        return sum(float(v) for v in task.score(sample, output)[0].values())
    except Exception:
        return 0.0


# request key -> the key of the sample that sends it (GET /stats also counts requests per sample)
SAMPLE_OF: dict[str, str] = {}


async def learn(tasks, correct: bool) -> tuple[dict[str, str], dict[str, tuple[int, bool]]]:
    """(request key -> reply text, completions prompt -> (context length, is the wanted best))."""
    replies: dict[str, str] = {}
    logprobs: dict[str, tuple[int, bool]] = {}
    want = 1.0 if correct else 0.0
    for task in tasks:
        samples = task.load()
        for endpoint_type in task.endpoint_types:
            for sample in samples:
                for repeat in range(task.repeats):
                    seen, _ = await solve_with(task, sample, endpoint_type, repeat)
                    if seen.pairs:
                        gold = None
                        for j in range(len(seen.pairs)):
                            _, output = await solve_with(task, sample, endpoint_type, repeat, gold=j)
                            if headline(task, sample, output) == 1.0:
                                gold = j
                                break
                        for i, (context, continuation) in enumerate(seen.pairs):
                            logprobs[context + continuation] = (len(context), (i == gold) == correct)
                    if not seen.prompts:
                        continue
                    if task.program is not None:
                        text = code_reply(sample, correct, endpoint_type == "chat")
                    else:
                        text, best = None, None
                        for candidate in candidates(sample):
                            _, output = await solve_with(task, sample, endpoint_type, repeat, reply=candidate)
                            if headline(task, sample, output) == want:
                                rank = total(task, sample, output) * (1 if correct else -1)
                                if best is None or rank > best:
                                    text, best = candidate, rank
                    if text is not None:
                        for prompt in seen.prompts:
                            replies[request_key(endpoint_type, prompt)] = text
                    sample_key = sample.id if task.repeats == 1 else f"{sample.id}#{repeat}"
                    for prompt in seen.prompts:
                        SAMPLE_OF[request_key(endpoint_type, prompt)] = sample_key
    return replies, logprobs


# ---- log-probabilities ----------------------------------------------------------------------------------


def prompt_logprobs(prompt: str, generated: str, known: tuple[int, bool] | None, mode: str) -> dict:
    tokens = [m.group(0) for m in TOKEN.finditer(prompt)]
    offsets, pos = [], 0
    for tok in tokens:
        offsets.append(pos)
        pos += len(tok)
    values: list[float | None] = []
    for i, (tok, off) in enumerate(zip(tokens, offsets, strict=True)):
        if mode == "shifted":
            values.append(SHIFTED)  # the log-prob of repeating the token just seen: always unlikely
        elif i == 0:
            values.append(None)
        elif known is not None and off + len(tok) > known[0]:
            values.append(HIGH if known[1] else LOW)
        else:
            values.append(PLAIN)
    tops = [
        None if v is None else ({tok: v} if v >= PLAIN else {tok: v, "<best>": HIGH})
        for tok, v in zip(tokens, values, strict=True)
    ]
    return {
        "tokens": [*tokens, generated],
        "text_offset": [*offsets, len(prompt)],
        "token_logprobs": [*values, -0.5],
        "top_logprobs": [*tops, {generated: -0.5}],
    }


def share_of(sample_key: str) -> float:
    """A fixed point in [0, 1) per sample (the same on every machine and run)."""
    return int.from_bytes(hashlib.sha256(sample_key.encode()).digest()[:8], "big") / 2**64


# ---- the server ------------------------------------------------------------------------------------------


class Endpoint:
    def __init__(self, mode: str, latency: float, fault_rate: float, slow: float, seed: int, **options):
        self.mode, self.latency, self.fault_rate, self.slow = mode, latency, fault_rate, slow
        self.logprobs_mode = options.get("logprobs", "aligned")
        self.faults = tuple(options.get("faults") or FAULTS)
        self.persist = bool(options.get("persist"))
        self.random = random.Random(seed)
        self.replies: dict[str, str] = {}
        self.known_logprobs: dict[str, tuple[int, bool]] = {}
        self.share = options.get("correct_share")
        self.wrong_replies: dict[str, str] = {}
        if mode in ("oracle", "wrong", "random"):
            from launcher.harness.api import registry

            tasks = list(registry(options.get("tasks") or "launcher.harness.benchmarks").values())
            self.replies, self.known_logprobs = asyncio.run(learn(tasks, mode != "wrong"))
            if mode == "oracle" and self.share is not None:
                self.wrong_replies, _ = asyncio.run(learn(tasks, False))
            if mode == "random":
                wrong_replies, wrong_logprobs = asyncio.run(learn(tasks, False))
                right = lambda text: zlib.crc32(f"{seed}:{text}".encode()) % 2 == 0  # noqa: E731
                self.replies = {
                    k: v if right(k) else wrong_replies.get(k, v) for k, v in self.replies.items()
                }
                self.known_logprobs = {  # one choice per context: all of its continuations agree
                    k: v if right(k[: v[0]]) else wrong_logprobs.get(k, v)
                    for k, v in self.known_logprobs.items()
                }
        self.requests: Counter[str] = Counter()  # per request (its key: endpoint type + prompt)
        self.samples: Counter[str] = Counter()  # per sample key of the task that sends it (oracle/wrong)
        self.faulted: Counter[str] = Counter()
        self.doomed: set[str] = set()
        self.total = 0
        self.capacity, self.overflow = options.get("capacity"), options.get("overflow", "429")
        self.retry_after = options.get("retry_after", 1.0)
        self.slots = asyncio.Semaphore(self.capacity) if self.capacity else None
        self.busy = self.peak = self.turned_away = 0
        self.first = self.last = None  # monotonic: the first request's arrival, the last answer

    async def handle(self, request: web.Request) -> web.StreamResponse:
        chat = request.path.endswith("/chat/completions")
        body = await request.json()
        prompt = body["messages"] if chat else body["prompt"]
        key = request_key("chat" if chat else "completions", prompt)
        self.first = self.first or time.monotonic()
        if self.capacity and self.overflow == "429" and self.busy >= self.capacity:
            self.turned_away += 1
            headers = {"Retry-After": f"{self.retry_after:g}"}
            return web.json_response({"error": "over capacity"}, status=429, headers=headers)
        self.total += 1
        self.requests[key] += 1
        self.samples[SAMPLE_OF.get(key, key)] += 1
        if self.slots is not None:
            async with self.slots:
                self.busy += 1
                self.peak = max(self.peak, self.busy)
                try:
                    slowdown = 0.5 + 0.5 * self.busy / self.capacity if self.overflow == "queue" else 1.0
                    await asyncio.sleep(self.latency * slowdown)
                finally:
                    self.busy -= 1
        elif self.latency:
            await asyncio.sleep(self.latency)
        first = self.requests[key] == 1
        if first and self.fault_rate and self.random.random() < self.fault_rate:
            self.doomed.add(key)
        if key in self.doomed and (first or self.persist):
            self.faulted[key] += 1
            return await self.fault(request, self.random.choice(self.faults))
        generated = " x"
        text = "ok" if self.mode == "echo" else self.replies.get(key, "I do not know.")
        if key in self.wrong_replies and share_of(SAMPLE_OF.get(key, key)) >= self.share:
            text = self.wrong_replies[key]
        if chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        else:
            choice = {"index": 0, "text": text, "finish_reason": "stop"}
            if body.get("echo") and body.get("logprobs") is not None:
                choice["text"] = prompt + generated
                if self.logprobs_mode == "none":
                    choice["logprobs"] = {
                        "tokens": [generated],
                        "text_offset": [len(prompt)],
                        "token_logprobs": [-0.5],
                        "top_logprobs": [{generated: -0.5}],
                    }
                else:
                    known = self.known_logprobs.get(prompt) if self.mode != "echo" else None
                    choice["logprobs"] = prompt_logprobs(prompt, generated, known, self.logprobs_mode)
                choice["finish_reason"] = "length"
        words = len(str(prompt).split())
        self.last = time.monotonic()
        return web.json_response(
            {
                "id": "x",
                "object": "chat.completion" if chat else "text_completion",
                "model": body.get("model"),
                "choices": [choice],
                "usage": {
                    "prompt_tokens": words,
                    "completion_tokens": len(text.split()),
                    "total_tokens": words + len(text.split()),
                },
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
        if kind == "gzip-bomb":
            return web.Response(
                body=gzip_bomb(), headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
            )
        if kind == "deep-json":
            return web.Response(text="[" * 100_000 + "]" * 100_000, content_type="application/json")
        if kind == "leak-auth":
            leaked = request.headers.get("Authorization", "")
            return web.json_response({"error": f"invalid credentials: {leaked}"}, status=400)
        return web.Response(
            text="<html><body>502 Bad Gateway</body></html>", status=502, content_type="text/html"
        )

    async def stats(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {
                "total": self.total,
                "requests": dict(self.requests),
                "samples": dict(self.samples),
                "faulted": dict(self.faulted),
                "turned_away": self.turned_away,  # --capacity with --overflow 429
                "peak": self.peak,  # most requests served at once (--capacity)
                # the first request's arrival to the last answer
                "span_s": round(self.last - self.first, 3) if self.last else 0.0,
            }
        )


_BOMB: list[bytes] = []


def gzip_bomb(size: int = 1 << 30) -> bytes:
    """`size` bytes of spaces (valid JSON whitespace), gzip-compressed to about 1/1000 of that."""
    if not _BOMB:
        packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        chunk = b" " * (1 << 20)
        _BOMB.append(b"".join([*(packer.compress(chunk) for _ in range(size >> 20)), packer.flush()]))
    return _BOMB[0]


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
    parser.add_argument("--mode", choices=("oracle", "wrong", "echo", "random"), default="oracle")
    parser.add_argument("--logprobs", choices=("aligned", "shifted", "none"), default="aligned")
    parser.add_argument(
        "--tasks", default=None, help="module whose TASKS the oracle learns (default: built-ins)"
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="share of first requests that fail")
    parser.add_argument(
        "--faults", default=",".join(FAULTS), help=f"kinds: {', '.join(FAULTS + EXTRA_FAULTS)}"
    )
    parser.add_argument(
        "--fault-persist", action="store_true", help="a faulted request faults on every retry"
    )
    parser.add_argument("--slow", type=float, default=3.0, help="seconds a 'slow' fault takes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--correct-share", type=float, default=None, help="oracle: answer about this share of samples right"
    )
    parser.add_argument("--capacity", type=int, default=None, help="requests served at once (K)")
    parser.add_argument("--overflow", choices=("429", "queue"), default="429", help="above --capacity")
    parser.add_argument("--retry-after", type=float, default=1.0, help="seconds, with --overflow 429")
    args = parser.parse_args(argv)
    if args.correct_share is not None and not (0 <= args.correct_share <= 1 and args.mode == "oracle"):
        parser.error("--correct-share: a share between 0 and 1, with --mode oracle")
    faults = tuple(f for f in args.faults.split(",") if f)
    unknown = sorted(set(faults) - set(FAULTS + EXTRA_FAULTS))
    if unknown:
        parser.error(f"--faults: unknown kinds {unknown}; allowed: {', '.join(FAULTS + EXTRA_FAULTS)}")
    endpoint = Endpoint(
        args.mode,
        args.latency,
        args.fault_rate,
        args.slow,
        args.seed,
        logprobs=args.logprobs,
        faults=faults,
        persist=args.fault_persist,
        tasks=args.tasks,
        correct_share=args.correct_share,
        capacity=args.capacity,
        overflow=args.overflow,
        retry_after=args.retry_after,
    )
    try:
        asyncio.run(serve(args.port, endpoint))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
