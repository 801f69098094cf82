"""RunConfig: today's files read unchanged, precedence of params, one-line errors; phases and sandbox argv."""

import json
from pathlib import Path

import pytest

from launcher.harness.contract import ConfigError, RunConfig, phases, sandbox_argv

GOLDEN = Path(__file__).resolve().parents[1] / "golden/gsm8k.run_config.json"
# A run config as launcher 0.1 wrote it (before target_params, repeats and redact_env existed).
FIRST_ROUND = {
    "task": "gsm8k",
    "model_id": "m",
    "url": "http://127.0.0.1:8000/v1/chat/completions",
    "endpoint_type": "chat",
    "api_key_env": "API_KEY",
    "params": {"parallelism": 16, "limit_samples": None, "request_timeout": 120.0, "max_retries": 5},
}


def test_first_round_run_config_reads_unchanged_and_round_trips():
    config = RunConfig.from_json(json.dumps(FIRST_ROUND))
    assert (config.task, config.endpoint_type, config.api_key_env) == ("gsm8k", "chat", "API_KEY")
    assert config.target_params == {} and config.repeats is None and config.redact_env == ()
    assert RunConfig.from_json(config.to_json()) == config
    assert config.effective_params({})["parallelism"] == 16
    assert not config.proxied and "proxied" not in config.to_json()  # written only behind the proxy
    proxied = RunConfig.from_json(json.dumps({**FIRST_ROUND, "proxied": True}))
    assert proxied.proxied and RunConfig.from_json(proxied.to_json()) == proxied


def test_the_host_writes_what_the_harness_reads():
    config = RunConfig.from_json(GOLDEN.read_text())  # rendered by the host (tests/unit/test_render.py)
    assert (config.task, config.endpoint_type, config.redact_env) == (
        "gsm8k_cot_zeroshot",
        "chat",
        ("API_KEY", "HF_TOKEN"),
    )


@pytest.mark.parametrize(
    ("params", "defaults", "target", "expected"),
    [
        ({}, {}, {}, None),  # nothing set: the built-in (None: the endpoint's own default)
        ({}, {}, {"max_tokens": 512}, 512),  # the target's
        ({}, {"max_tokens": 32768}, {"max_tokens": 512}, 32768),  # a task's default beats the target
        ({"max_tokens": 64}, {"max_tokens": 32768}, {"max_tokens": 512}, 64),  # the evaluation beats both
        ({"max_tokens": None}, {"max_tokens": 32768}, {}, 32768),  # None inherits
    ],
)
def test_effective_params_precedence(params, defaults, target, expected):
    config = RunConfig("t", "m", "u", params=params, target_params=target)
    assert config.effective_params(defaults)["max_tokens"] == expected


def test_repeats_from_the_run_config_win():
    assert RunConfig("t", "m", "u", repeats=3).effective_params({"repeats": 8})["repeats"] == 3


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"params": {"max_error_fraction": -0.1}}, "params.max_error_fraction"),
        ({"params": {"request_timeout": 0}}, "params.request_timeout"),
        ({"params": {"temperature": float("nan")}}, "params.temperature"),
        ({"params": {"parallelism": 0}}, "params.parallelism"),
        ({"params": {"stop": 5}}, "params.stop"),
        ({"target_params": {"top_p": 2}}, "params.top_p"),
        ({"repeats": 0}, "'repeats'"),
        ({"endpoint_type": "grpc"}, "'endpoint_type'"),
        ({"task": ""}, "'task'"),
        ({"redact_env": "API_KEY"}, "'redact_env'"),
    ],
)
def test_bad_values_are_one_line_naming_the_key(change, key):
    data = {**json.loads(GOLDEN.read_text()), **change}
    if "params" in change:
        data["params"] = {**json.loads(GOLDEN.read_text())["params"], **change["params"]}
    with pytest.raises(ConfigError) as err:
        RunConfig.from_json(json.dumps(data))
    assert key in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("text", ["{not json", "[]", "[" * 100_000])
def test_unreadable_run_config(text):
    with pytest.raises(ConfigError):
        RunConfig.from_json(text)


def test_secret_names_are_the_key_and_redact_env():
    config = RunConfig("t", "m", "u", api_key_env="API_KEY", redact_env=("HF_TOKEN", "API_KEY"))
    assert config.secret_names() == ("API_KEY", "HF_TOKEN")


def test_phases_of_a_code_task_and_the_sandbox_argv():
    assert [p.name for p in phases(False)] == ["run"]
    run, execute, score = phases(True)
    assert (run.container, execute.container, score.container) == ("task", "sandbox", "task")
    assert execute.stdout == "verdicts.jsonl"
    argv = sandbox_argv("img:1", "/x/results")
    joined = " ".join(argv)
    for flag in (
        "--network none",
        "--read-only",
        "--cap-drop ALL",
        "--pids-limit 128",
        "--memory 1g",
        "no-new-privileges",
        "-v /x/results:/results:ro",
        "--user 0",
    ):
        assert flag in joined
    assert "-e" not in argv and "--env" not in argv and "--env-file" not in argv
    assert argv[argv.index("img:1") + 1 :] == list(execute.argv)
