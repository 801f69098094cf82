"""api.Model over an OpenAI-compatible endpoint: `generate` (chat or completions) and `loglikelihood`
(completions with echo + logprobs, the way lm-evaluation-harness 0.4.x's local-completions model asks:
max_tokens 1, echo, logprobs 1, temperature 0; the continuation's entries are summed, the generated token
dropped, greedy = every entry equals its top_logprobs maximum).

Without a tokenizer here, continuation tokens are found by `text_offset`: those starting at or after the
context's last character, plus one that straddles the boundary. lm-eval tokenizes context + continuation
and the context alone and takes the difference; for what the built-ins ask (a context without a trailing
space, " " + option) both give the same tokens on every option of HellaSwag and TruthfulQA-MC1 with the demo
model's tokenizer (tests/integration/test_loglikelihood_continuation.py); they part only where a token
straddles the boundary, which that test also shows. Prompt log-probabilities are probed once
per endpoint before the first log-likelihood: servers that return none (llama.cpp's own server) or
report them shifted by one (llama-cpp-python 0.3.x, abetlen/llama-cpp-python#1983: entry i is the
probability of token i after token i) raise api.Unsupported instead of producing chance-level scores.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from launcher.harness.api import Generation, Unsupported
from launcher.harness.client import Client, RequestFailed
from launcher.harness.contract import GENERATION_KEYS

# A counting sequence: any language model predicts its tail tokens almost surely when the entries are
# aligned (mean log-prob near 0); a shifted report gives each token the probability of repeating itself.
PROBE_CONTEXT = "1, 2, 3, 4, 5, 6"
PROBE_CONTINUATION = ", 7, 8, 9, 10, 11, 12, 13, 14, 15, 16"
PROBE_MIN_MEAN = -2.0  # mean log-prob per continuation token an aligned endpoint exceeds


def completions_url(url: str) -> str:
    return url[: -len("/chat/completions")] + "/completions" if url.endswith("/chat/completions") else url


class EndpointModel:
    def __init__(self, client: Client, endpoint_type: str, params: dict[str, Any]):
        self.client = client
        self.endpoint_type = endpoint_type
        self.defaults = {k: params[k] for k in GENERATION_KEYS if params.get(k) is not None}
        self._probe: asyncio.Future | None = None

    async def generate(self, prompt: str | list[dict], **params: Any) -> tuple[Generation, dict]:
        body = {"model": self.client.settings.model_id, **self.defaults, **params}
        if self.endpoint_type == "chat":
            body["messages"] = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        elif isinstance(prompt, str):
            body["prompt"] = prompt
        else:
            raise Unsupported("this task sends chat messages; it needs a chat endpoint")
        reply = await self.client.post(body)
        try:
            choice = reply.body["choices"][0]
            text = choice["message"]["content"] if self.endpoint_type == "chat" else choice["text"]
        except (KeyError, IndexError, TypeError):
            raise RequestFailed("malformed response: no choices[0] text") from None
        if text is not None and not isinstance(text, str):
            raise RequestFailed(f"malformed response: content is {type(text).__name__}, not text")
        usage = reply.body.get("usage") if isinstance(reply.body.get("usage"), dict) else None
        finish = choice.get("finish_reason") if isinstance(choice.get("finish_reason"), str) else None
        gen = Generation(text or "", finish, usage)
        return gen, {"kind": "generate", "finish_reason": finish, "usage": usage, **_meta(reply)}

    async def loglikelihood(self, context: str, continuation: str) -> tuple[tuple[float, bool], dict]:
        if self.endpoint_type != "completions":
            raise Unsupported(
                "log-likelihood scoring needs a completions endpoint (target.api_endpoint.type)"
            )
        if self._probe is None:
            self._probe = asyncio.ensure_future(self._check_alignment())
        await asyncio.shield(self._probe)  # raises the probe's Unsupported for every caller
        entries, reply = await self._prompt_logprobs(context, continuation)
        total = sum(lp for lp, _ in entries)
        greedy = all(lp >= top - 1e-6 for lp, top in entries)
        return (total, greedy), {"kind": "loglikelihood", **_meta(reply)}

    async def _prompt_logprobs(
        self, context: str, continuation: str
    ) -> tuple[list[tuple[float, float]], Any]:
        body = {
            "model": self.client.settings.model_id,
            "prompt": context + continuation,
            "max_tokens": 1,
            "temperature": 0,
            "echo": True,
            "logprobs": 1,
        }
        reply = await self.client.post(body, completions_url(self.client.settings.url))
        try:
            logprobs = reply.body["choices"][0].get("logprobs") or {}
        except (KeyError, IndexError, TypeError, AttributeError):
            raise RequestFailed("malformed response: no choices[0]") from None
        return continuation_entries(logprobs, len(context), len(context) + len(continuation)), reply

    async def _check_alignment(self) -> None:
        try:
            entries, _ = await self._prompt_logprobs(PROBE_CONTEXT, PROBE_CONTINUATION)
        except NoPromptLogprobs as err:
            raise Unsupported(
                f"the endpoint returns no prompt log-probabilities with echo ({err}); log-likelihood tasks "
                "need a server that does (vLLM, or llama-cpp-python started with logits_all)"
            ) from None
        mean = sum(lp for lp, _ in entries) / len(entries)
        if mean < PROBE_MIN_MEAN:
            raise Unsupported(
                f"the endpoint's prompt log-probabilities are misaligned (probe '{PROBE_CONTEXT}"
                f"{PROBE_CONTINUATION}': mean {mean:.2f} per token, an aligned endpoint gives > "
                f"{PROBE_MIN_MEAN}; llama-cpp-python shifts them by one, abetlen/llama-cpp-python#1983)"
            )


class NoPromptLogprobs(RequestFailed):
    pass


def continuation_entries(logprobs: dict, start: int, end: int) -> list[tuple[float, float]]:
    """(log-prob, best log-prob at that position) of each token in characters [start, end) of the prompt."""
    offsets, tokens = logprobs.get("text_offset"), logprobs.get("tokens")
    values, tops = logprobs.get("token_logprobs"), logprobs.get("top_logprobs") or []
    if not (isinstance(offsets, list) and isinstance(values, list) and isinstance(tokens, list)):
        raise NoPromptLogprobs("no text_offset / token_logprobs / tokens in choices[0].logprobs")
    if not offsets or offsets[0] != 0 or len(values) != len(offsets) or len(tokens) != len(offsets):
        raise NoPromptLogprobs("the log-probabilities do not cover the prompt from its first character")
    picked = [i for i, off in enumerate(offsets) if isinstance(off, int) and start <= off < end]
    before = [i for i, off in enumerate(offsets) if isinstance(off, int) and off < start]
    if (
        before
        and isinstance(tokens[before[-1]], str)
        and offsets[before[-1]] + len(tokens[before[-1]]) > start
    ):
        picked.insert(0, before[-1])  # a token spanning the boundary belongs to the continuation
    if not picked:
        raise NoPromptLogprobs("no entry for the continuation's tokens")
    out = []
    for i in picked:
        value = values[i]
        if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
            raise NoPromptLogprobs(f"token_logprobs[{i}] is {value!r}")
        top = tops[i] if i < len(tops) and isinstance(tops[i], dict) and tops[i] else {}
        best = max((v for v in top.values() if isinstance(v, int | float)), default=value)
        out.append((float(value), float(best)))
    return out


def _meta(reply) -> dict:
    return {"attempts": reply.attempts, "latency": round(reply.latency, 4)}


class SampleModel:
    """What a task's `solve` sees for one sample: the endpoint model, with every call's metadata
    (finish_reason, usage, attempts, latency) kept for the sample's record."""

    def __init__(self, model: EndpointModel):
        self.model, self.endpoint_type, self.calls = model, model.endpoint_type, []

    async def generate(self, prompt: str | list[dict], **params: Any) -> Generation:
        gen, meta = await self.model.generate(prompt, **params)
        self.calls.append(meta)
        return gen

    async def loglikelihood(self, context: str, continuation: str) -> tuple[float, bool]:
        result, meta = await self.model.loglikelihood(context, continuation)
        self.calls.append(meta)
        return result
