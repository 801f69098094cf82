"""The proxy's pure transforms, table-tested."""

import random

import pytest

from launcher.proxy import transforms as tx
from launcher.proxy.settings import PayloadSettings, ReasoningSettings, RetrySettings, SystemPromptSettings


@pytest.mark.parametrize(
    "upstream, path, expected",
    [
        ("http://h:8000/v1/chat/completions", "/v1/chat/completions", "http://h:8000/v1/chat/completions"),
        ("http://h:8000/v1/chat/completions", "/v1/models", "http://h:8000/v1/models"),
        ("http://h:8000/v1/completions", "/v1/chat/completions", "http://h:8000/v1/chat/completions"),
        ("http://h:8000", "/v1/completions", "http://h:8000/v1/completions"),
        ("http://h:8000/v1/", "/v1/models", "http://h:8000/v1/models"),
        (
            "https://api.x.com/serving/v1/chat/completions",
            "/v1/models",
            "https://api.x.com/serving/v1/models",
        ),
        ("http://h:8000/openai", "/v1/models", "http://h:8000/openai/v1/models"),
    ],
)
def test_upstream_url(upstream, path, expected):
    assert tx.upstream_url(upstream, path) == expected


def test_upstream_url_keeps_the_upstreams_query_and_takes_only_routes():
    assert tx.upstream_url("http://h/v1?api-version=2", "/v1/models") == "http://h/v1/models?api-version=2"
    for path in ("/v1/../admin/keys", "/admin", "/v1/files", "/v1/models/../../x"):
        with pytest.raises(ValueError, match="not a proxied route"):
            tx.upstream_url("http://h/gateway/v1", path)


def test_cache_key_names_the_upstream_and_the_model():
    """N3: two endpoints (or models) behind one caching_dir never answer for each other."""
    body = {"model": "m", "messages": [{"role": "user", "content": "q"}], "temperature": 0}
    path = "/v1/chat/completions"
    key = tx.cache_key("http://a:8000/v1", path, body)
    assert key == tx.cache_key("http://a:8000/v1", path, {**body, "stream": False, "user": "u"})
    assert key != tx.cache_key("http://b:8000/v1", path, body)
    assert key != tx.cache_key("http://a:8000/v1", path, {**body, "model": "other"})
    assert key != tx.cache_key("http://a:8000/v1", "/v1/completions", body)


@pytest.mark.parametrize(
    "method, raw_path, expected",
    [
        ("POST", "/v1/chat/completions", None),
        ("POST", "/v1/completions", None),
        ("GET", "/v1/models", None),
        ("GET", "/v1/models?limit=1", None),
        ("GET", "/v1/chat/completions", 405),
        ("DELETE", "/v1/models", 405),
        ("DELETE", "/v1/files/file-abc", 404),
        ("POST", "/v1/embeddings", 404),
        ("POST", "/v1/../admin/keys", 400),
        ("POST", "/v1/%2e%2e/admin/keys", 400),
        ("POST", "/v1/chat%2Fcompletions", 400),
        ("POST", "//v1/chat/completions", 400),
        ("POST", "/v1/./completions", 400),
        ("POST", "/v1\\completions", 400),
        ("POST", "v1/completions", 400),
        ("POST", "/v1/completions/", 400),
    ],
)
def test_refusal(method, raw_path, expected):
    got = tx.refusal(method, raw_path)
    assert (got and got[0]) == expected


@pytest.mark.parametrize(
    "settings, body, expected",
    [
        (PayloadSettings(remove=("seed",)), {"seed": 1, "model": "m"}, {"model": "m"}),
        (
            PayloadSettings(rename={"max_tokens": "max_completion_tokens"}),
            {"max_tokens": 5},
            {"max_completion_tokens": 5},
        ),
        (PayloadSettings(add={"top_k": 1}), {"top_k": 9, "a": 1}, {"top_k": 1, "a": 1}),
        (PayloadSettings(remove=("x",), rename={"y": "z"}, add={"w": 0}), {"x": 1, "y": 2}, {"z": 2, "w": 0}),
        (PayloadSettings(rename={"absent": "b"}), {"a": 1}, {"a": 1}),
    ],
)
def test_modify_payload(settings, body, expected):
    assert tx.modify_payload(body, settings) == expected


USER = {"role": "user", "content": "q"}
SYS = {"role": "system", "content": "old"}


@pytest.mark.parametrize(
    "strategy, messages, expected_system",
    [
        ("replace", [SYS, USER], "new"),
        ("prepend", [SYS, USER], "new\nold"),
        ("append", [SYS, USER], "old\nnew"),
        ("prepend", [USER], "new"),
        ("append", [USER], "new"),
        ("prepend", [SYS, {"role": "system", "content": "two"}, USER], "new\nold\ntwo"),
    ],
)
def test_system_prompt(strategy, messages, expected_system):
    out = tx.apply_system_prompt({"messages": messages}, SystemPromptSettings(True, "new", strategy))
    assert out["messages"] == [{"role": "system", "content": expected_system}, USER]


def test_system_prompt_leaves_completions_alone():
    body = {"prompt": "p"}
    assert tx.apply_system_prompt(body, SystemPromptSettings(True, "new", "replace")) is body


R = ReasoningSettings(enabled=True)


@pytest.mark.parametrize(
    "settings, text, answer, reasoning",
    [
        (R, "<think>a b</think>\n\nAnswer: 4", "Answer: 4", "a b"),
        (R, "no reasoning here", "no reasoning here", None),
        (R, "<think>unfinished", "<think>unfinished", "<think>unfinished"),
        (
            ReasoningSettings(True, include_if_not_finished=False),
            "<think>unfinished",
            "",
            "<think>unfinished",
        ),
        (ReasoningSettings(True, start_token=None), "plain thoughts</think>42", "42", "plain thoughts"),
        (ReasoningSettings(True, "[R]", "[/R]"), "pre [R]x y z[/R] post", "pre  post", "x y z"),
        (R, "</think>only end", "only end", ""),
    ],
)
def test_split_reasoning(settings, text, answer, reasoning):
    assert tx.split_reasoning(text, settings) == (answer, reasoning)


def test_strip_reasoning_chat_and_completions():
    chat = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "<think>abc</think>ok"}}]}
    out, meta = tx.strip_reasoning(chat, R)
    assert out["choices"][0]["message"]["content"] == "ok"
    assert meta == [{"index": 0, "reasoning_chars": 3, "reasoning_words": 1, "finished": True}]
    assert chat["choices"][0]["message"]["content"] == "<think>abc</think>ok"  # input untouched
    comp = {"choices": [{"index": 0, "text": "<think>x y</think> 7"}, {"index": 1, "text": "8"}]}
    out, meta = tx.strip_reasoning(comp, R)
    assert [c["text"] for c in out["choices"]] == ["7", "8"]
    assert [m["index"] for m in meta] == [0]


@pytest.mark.parametrize("response", [{}, {"choices": None}, {"choices": [None, {"message": None}]}])
def test_strip_reasoning_odd_shapes(response):
    assert tx.strip_reasoning(response, R) == (response, [])


UP = "http://h:8000/v1"


def test_cache_key_canonical():
    a = tx.cache_key(UP, "/v1/chat/completions", {"model": "m", "messages": [USER], "temperature": 0})
    b = tx.cache_key(
        UP, "/v1/chat/completions", {"temperature": 0, "messages": [USER], "model": "m", "stream": False}
    )
    assert a == b
    assert a != tx.cache_key(UP, "/v1/completions", {"model": "m", "messages": [USER], "temperature": 0})
    assert a != tx.cache_key(
        UP, "/v1/chat/completions", {"model": "m", "messages": [USER], "temperature": 0.5}
    )
    assert a != tx.cache_key(
        UP, "/v1/chat/completions", {"model": "m", "messages": [USER], "temperature": 0, "seed": 1}
    )


@pytest.mark.parametrize(
    "response, expected",
    [
        ({"usage": {"prompt_tokens": 3, "completion_tokens": 4}}, (3, 4)),
        ({"usage": {"completion_tokens": 4}}, (0, 4)),
        ({"usage": None}, (0, 0)),
        ({}, (0, 0)),
        ([], (0, 0)),
    ],
)
def test_usage_tokens(response, expected):
    assert tx.usage_tokens(response) == expected


def test_redact():
    assert tx.redact("Bearer sk-123 and sk-123", ("sk-123",)) == "Bearer <redacted> and <redacted>"
    assert tx.redact("x", ("",)) == "x"


@pytest.mark.parametrize(
    "value, expected", [("2", 2.0), ("0.2", 0.2), ("-1", 0.0), (None, None), ("soon", None)]
)
def test_retry_after_seconds(value, expected):
    assert tx.retry_after_seconds(value) == expected


def test_retry_after_http_date_in_the_past_is_zero():
    assert tx.retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_retry_delay():
    s = RetrySettings(backoff_base=1.0, backoff_max=5.0)
    rng = random.Random(0)
    assert tx.retry_delay(0, 2.5, s, rng) == 2.5
    assert tx.retry_delay(0, 99, s, rng) == 5.0
    for attempt, (low, high) in enumerate([(0.5, 1.5), (1.0, 3.0), (2.0, 5.0), (5.0, 5.0)]):
        assert low <= tx.retry_delay(attempt, None, s, rng) <= high


@pytest.mark.parametrize(
    "body, expected",
    [
        ({"temperature": 0}, True),
        ({"temperature": 0.0}, True),
        ({"temperature": 0.7, "seed": 3}, True),
        ({"temperature": 0.7}, False),
        ({}, False),  # the server's default temperature
        ({"temperature": 0.7, "seed": None}, False),
        ({"temperature": False}, False),
    ],
)
def test_deterministic(body, expected):
    assert tx.deterministic(body) is expected
