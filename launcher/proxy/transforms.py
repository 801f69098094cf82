"""Pure request/response transforms the proxy applies (no I/O): each one is table-tested on its own."""

from __future__ import annotations

import hashlib
import json
import random
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit, urlunsplit

from launcher.proxy.settings import PayloadSettings, ReasoningSettings, RetrySettings, SystemPromptSettings

COMPLETION_PATHS = ("/chat/completions", "/completions")
# What the client sends that does not change the answer: left out of the cache key.
NOT_IN_KEY = frozenset({"stream", "stream_options", "user"})
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


# What an evaluation asks an OpenAI-compatible endpoint, and nothing else: generating (POST chat/completions
# and completions) and listing the served models (GET models: harnesses and nemo-evaluator check the model
# id with it). Files, fine-tunes, keys, deletes and whatever else a gateway serves under the base path stay
# out of a task's reach, whatever it sends.
ROUTES = {
    "/v1/chat/completions": ("POST",),
    "/v1/completions": ("POST",),
    "/v1/models": ("GET",),
}


def refusal(method: str, raw_path: str) -> tuple[int, str] | None:
    """(status, reason) when a client's request line is not one of ROUTES exactly as sent, else None. The
    path is judged as received (before any decoding): one that a server would read differently once
    normalised (dot segments, `//`, percent-escapes, backslashes) is refused, never cleaned up and sent."""
    path = raw_path.split("?", 1)[0]
    segments = path.split("/")[1:]
    if (
        not path.startswith("/")
        or any(c in path for c in "%\\")
        or any(s in ("", ".", "..") for s in segments)
    ):
        return 400, f"the path {path!r} is not in canonical form (no dot segments, //, %-escapes or \\)"
    methods = ROUTES.get(path)
    if methods is None:
        return 404, f"no route {path}; the proxy serves {', '.join(sorted(ROUTES))}"
    if method not in methods:
        return 405, f"{method} {path} is not served; only {'/'.join(methods)}"
    return None


def upstream_url(upstream: str, path: str) -> str:
    """The upstream URL for a client path, which must be one of ROUTES (a constant, never the client's
    text): `upstream` may be a base (`http://h:8000`, `.../v1`) or the target's full completions URL, as
    the launcher's `target.api_endpoint.url` is; its own query (e.g. an api-version) is kept."""
    if path not in ROUTES:
        raise ValueError(f"{path!r} is not a proxied route")
    parts = urlsplit(upstream)
    base = parts.path.rstrip("/")
    for suffix in COMPLETION_PATHS:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    if base.endswith("/v1"):
        base = base[: -len("/v1")]
    return urlunsplit((parts.scheme, parts.netloc, base + path, parts.query, ""))


def modify_payload(body: dict, settings: PayloadSettings) -> dict:
    """NEL's payload modifier: drop, then rename, then add (added values win)."""
    out = {k: v for k, v in body.items() if k not in settings.remove}
    for old, new in settings.rename.items():
        if old in out:
            out[new] = out.pop(old)
    out.update(settings.add)
    return out


def apply_system_prompt(body: dict, settings: SystemPromptSettings) -> dict:
    """Chat requests only: one system message first; `replace` drops the client's, `prepend`/`append`
    join the configured text before/after it (nemo-evaluator 0.2.8 system_message strategies)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or settings.text is None:
        return body
    existing = [m.get("content") or "" for m in messages if isinstance(m, dict) and m.get("role") == "system"]
    rest = [m for m in messages if not (isinstance(m, dict) and m.get("role") == "system")]
    old = "\n".join(existing)
    if settings.strategy == "replace" or not old:
        text = settings.text
    elif settings.strategy == "prepend":
        text = f"{settings.text}\n{old}"
    else:
        text = f"{old}\n{settings.text}"
    return {**body, "messages": [{"role": "system", "content": text}, *rest]}


def split_reasoning(text: str, settings: ReasoningSettings) -> tuple[str, str | None]:
    """(answer, reasoning or None). Reasoning ends at the end token; it starts at the start token, or
    at the beginning when the start token is null. Unfinished reasoning (start, no end) is kept in the
    answer when `include_if_not_finished`, else the answer is empty."""
    end = text.find(settings.end_token)
    if end >= 0:
        head = text[:end]
        start = head.find(settings.start_token) if settings.start_token else -1
        prefix = head[:start] if start >= 0 else ""
        reasoning = head[start + len(settings.start_token) :] if start >= 0 else head
        return (prefix + text[end + len(settings.end_token) :]).strip(), reasoning
    if settings.start_token and settings.start_token in text:
        return (text if settings.include_if_not_finished else ""), text[text.find(settings.start_token) :]
    return text, None


def strip_reasoning(response: dict, settings: ReasoningSettings) -> tuple[dict, list[dict]]:
    """The response with reasoning removed from every choice, and per-choice metadata
    ({index, reasoning_chars, reasoning_words, finished})."""
    meta = []
    choices = response.get("choices")
    if not isinstance(choices, list):
        return response, meta
    new_choices = []
    for choice in choices:
        if not isinstance(choice, dict):
            new_choices.append(choice)
            continue
        message = choice.get("message")
        chat = isinstance(message, dict)
        text = message.get("content") if chat else choice.get("text")
        if not isinstance(text, str):
            new_choices.append(choice)
            continue
        answer, reasoning = split_reasoning(text, settings)
        if reasoning is None:
            new_choices.append(choice)
            continue
        finished = settings.end_token in text
        meta.append(
            {
                "index": choice.get("index", len(new_choices)),
                "reasoning_chars": len(reasoning),
                "reasoning_words": len(reasoning.split()),
                "finished": finished,
            }
        )
        if chat:
            new_choices.append({**choice, "message": {**message, "content": answer}})
        else:
            new_choices.append({**choice, "text": answer})
    return {**response, "choices": new_choices}, meta


def deterministic(body: dict) -> bool:
    """Whether the same request should get the same answer: greedy (temperature 0) or seeded. Repeats of a
    sampled request (pass@k, several draws per item) must each reach the model, so those are not cached
    unless `cache_sampled`; an absent temperature is the server's default, usually 1."""
    temperature = body.get("temperature")
    return (temperature == 0 and not isinstance(temperature, bool)) or body.get("seed") is not None


def cache_key(upstream: str, path: str, body: dict) -> str:
    """sha256 of the canonical request: the upstream URL (two endpoints behind one caching_dir never answer
    for each other) + path + every body field that can change the answer (the model among them), sorted
    JSON."""
    canonical = {k: v for k, v in body.items() if k not in NOT_IN_KEY}
    text = json.dumps([upstream, path, canonical], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def usage_tokens(response: dict) -> tuple[int, int]:
    usage = response.get("usage") if isinstance(response, dict) else None
    if not isinstance(usage, dict):
        return 0, 0
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return (
        prompt if isinstance(prompt, int) else 0,
        completion if isinstance(completion, int) else 0,
    )


def redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    return text


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds (a number or an HTTP date), None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        import time

        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


def retry_delay(
    attempt: int, retry_after: float | None, settings: RetrySettings, rng: random.Random
) -> float:
    """Seconds before retry number `attempt` (0-based): the server's Retry-After when given (capped),
    else exponential backoff with full jitter in [0.5, 1.5) of the step, capped at backoff_max."""
    if retry_after is not None:
        return min(retry_after, settings.backoff_max)
    step = settings.backoff_base * (2**attempt)
    return min(step * (0.5 + rng.random()), settings.backoff_max)
