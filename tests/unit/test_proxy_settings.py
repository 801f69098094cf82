"""NEL adapter_config spellings -> ProxySettings, and the one-line errors for bad values."""

import json

import pytest

from launcher.proxy.settings import ProxyConfigError, ProxySettings, from_adapter_config, load

URL = "http://h:8000/v1/chat/completions"


def test_defaults_follow_nel():
    s = from_adapter_config({}, upstream=URL)
    assert s == ProxySettings(upstream=URL)
    assert s.cache.enabled is True and s.reasoning.end_token == "</think>"
    assert s.system_prompt.strategy == "prepend" and s.reasoning.include_if_not_finished is True


def test_nel_spellings():
    s = from_adapter_config(
        {
            "use_caching": False,
            "caching_dir": "/c",
            "use_request_logging": True,
            "max_logged_requests": 10,
            "use_reasoning": True,
            "start_reasoning_token": None,
            "end_reasoning_token": "<|end|>",
            "include_if_reasoning_not_finished": False,
            "use_system_prompt": True,
            "custom_system_prompt": "Be brief.",
            "params_to_add": {"top_k": 1},
            "params_to_remove": ["seed"],
            "params_to_rename": {"max_tokens": "max_completion_tokens"},
            "generate_html_report": True,  # NEL-only report: accepted, ignored
        },
        upstream=URL,
        api_key_env="MY_KEY",
    )
    assert (s.cache.enabled, s.cache.cache_dir) == (False, "/c")
    assert (s.log.enabled, s.log.max_requests) == (True, 10)
    assert (s.reasoning.enabled, s.reasoning.start_token, s.reasoning.end_token) == (True, None, "<|end|>")
    assert s.reasoning.include_if_not_finished is False
    assert (s.system_prompt.enabled, s.system_prompt.text) == (True, "Be brief.")
    assert (s.payload.add, s.payload.remove, s.payload.rename) == (
        {"top_k": 1},
        ("seed",),
        {"max_tokens": "max_completion_tokens"},
    )
    assert s.api_key_env == "MY_KEY"


def test_process_reasoning_traces_is_use_reasoning():
    assert from_adapter_config({"process_reasoning_traces": True}, upstream=URL).reasoning.enabled


def test_own_keys():
    s = from_adapter_config(
        {
            "max_concurrent": 8,
            "requests_per_second": 20,
            "tokens_per_second": 1000,
            "max_retries": 0,
            "system_prompt_strategy": "replace",
            "log_max_bytes": 100,
            "log_sample_rate": 0.5,
        },
        upstream=URL,
    )
    assert (s.budget.max_concurrent, s.budget.requests_per_second, s.budget.tokens_per_second) == (
        8,
        20,
        1000,
    )
    assert s.retry.max_retries == 0 and s.system_prompt.strategy == "replace"
    assert (s.log.max_bytes, s.log.sample_rate) == (100, 0.5)


@pytest.mark.parametrize(
    "cfg, names",
    [
        ({"use_cachin": True}, "use_cachin"),
        ({"use_caching": "yes"}, "use_caching"),
        ({"max_concurrent": 0}, "max_concurrent"),
        ({"max_concurrent": 1.5}, "max_concurrent"),
        ({"requests_per_second": float("nan")}, "requests_per_second"),
        ({"max_retries": True}, "max_retries"),
        ({"system_prompt_strategy": "merge"}, "system_prompt_strategy"),
        ({"use_system_prompt": True}, "custom_system_prompt"),
        ({"params_to_remove": "seed"}, "params_to_remove"),
        ({"params_to_add": ["a"]}, "params_to_add"),
        ({"params_to_rename": {"a": 1}}, "params_to_rename"),
    ],
)
def test_bad_values_are_one_line(cfg, names):
    with pytest.raises(ProxyConfigError) as err:
        from_adapter_config(cfg, upstream=URL)
    text = str(err.value)
    assert f"adapter_config.{names}" in text and "\n" not in text


def test_load(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(
        json.dumps({"upstream": URL, "api_key_env": "K", "adapter_config": {"use_caching": False}})
    )
    assert load(path).cache.enabled is False
    path.write_text(json.dumps({"upstream": URL, "key": "x"}))
    with pytest.raises(ProxyConfigError, match="unknown key 'key'"):
        load(path)
    path.write_text("{")
    with pytest.raises(ProxyConfigError, match="cannot read"):
        load(path)


def test_interceptor_list_form():
    cfg = {
        "interceptors": [
            {"name": "system_message", "config": {"system_message": "Hi.", "strategy": "replace"}},
            {
                "name": "reasoning",
                "config": {"end_reasoning_token": "</r>", "enable_reasoning_tracking": True},
            },
            {"name": "request_logging", "config": {"max_requests": 5, "output_dir": "/x"}},
            {"name": "payload_modifier", "config": {"params_to_remove": ["seed"]}},
            {"name": "caching", "enabled": False, "config": {"cache_dir": "/c"}},
            {"name": "endpoint"},
        ],
        "post_eval_hooks": [{"name": "post_eval_report"}],
    }
    s = from_adapter_config(cfg, upstream=URL)
    assert (s.system_prompt.enabled, s.system_prompt.text, s.system_prompt.strategy) == (
        True,
        "Hi.",
        "replace",
    )
    assert (s.reasoning.enabled, s.reasoning.end_token) == (True, "</r>")
    assert (s.log.enabled, s.log.max_requests) == (True, 5)
    assert s.payload.remove == ("seed",)
    assert s.cache.enabled is False  # listed but disabled, as if absent
    with_cache = from_adapter_config(
        {"interceptors": [{"name": "caching", "config": {"cache_dir": "/c"}}]}, upstream=URL
    )
    assert (with_cache.cache.enabled, with_cache.cache.cache_dir) == (True, "/c")


@pytest.mark.parametrize(
    "cfg, expected",
    [
        ({"interceptors": [{"name": "nvcf"}]}, "adapter_config.interceptors='nvcf'"),
        (
            {"interceptors": [{"name": "payload_modifier", "config": {"headers_to_add": {}}}]},
            "adapter_config.interceptors.payload_modifier.headers_to_add",
        ),
        ({"interceptors": {"name": "caching"}}, "adapter_config.interceptors="),
    ],
)
def test_interceptor_list_errors(cfg, expected):
    with pytest.raises(ProxyConfigError) as err:
        from_adapter_config(cfg, upstream=URL)
    assert str(err.value).startswith(expected)
