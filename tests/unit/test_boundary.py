"""The strict boundary: typed, frozen objects or one ConfigError naming the full key."""

import dataclasses

import pytest

from launcher.config.boundary import to_run_spec
from launcher.errors import ConfigError
from launcher.executors.local import LocalConfig


def data(**changes):
    base = {
        "execution": {"output_dir": "out"},
        "target": {"api_endpoint": {"url": "http://127.0.0.1:8000/v1/chat/completions", "model_id": "m"}},
        "evaluation": {"tasks": [{"name": "gsm8k"}]},
        "deployment": {"type": "none"},
    }
    base.update(changes)
    return base


def spec(d):
    return to_run_spec(d, "local", LocalConfig)


def test_valid_config_becomes_frozen_objects():
    s = spec(data())
    assert s.execution == LocalConfig(output_dir="out")
    assert s.target.api_endpoint.type == "chat"
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.target.api_endpoint.url = "x"


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        ({"execution": {"typo": 1}}, "execution.typo", "Allowed keys under execution: output_dir"),
        ({"execution": {"max_parallel": "abc"}}, "execution.max_parallel", "expected an integer"),
        ({"execution": {"max_parallel": True}}, "execution.max_parallel", "expected an integer"),
        (
            {"target": {"api_endpoint": {"url": "http://x/v1", "model_id": "m", "type": "chatt"}}},
            "target.api_endpoint.type",
            "Allowed values: chat, completions",
        ),
        ({"target": {"api_endpoint": {"url": "http://x/v1"}}}, "target.api_endpoint.model_id", "missing"),
        ({"target": {"api_endpoint": {"url": "???", "model_id": "m"}}}, "target.api_endpoint.url", "missing"),
        ({"evaluation": {"tasks": [{"nme": "x"}]}}, "evaluation.tasks[0].nme", "Allowed keys"),
        ({"evaluation": {"tasks": []}}, "evaluation.tasks", "is empty"),
        ({"evaluation": {"tasks": ["gsm8k", "gsm8k"]}}, "evaluation.tasks", "listed twice"),
        ({"evaluation": {"tasks": ["gsm8k"], "only": ["nope"]}}, "evaluation.only", "not a task"),
        (
            {"evaluation": {"tasks": ["gsm8k"], "env_vars": {"A": "not a name"}}},
            "evaluation.env_vars.A",
            "valid",
        ),
        (
            {"evaluation": {"tasks": ["gsm8k"], "params": {"parallelism": 0}}},
            "params.parallelism",
            "at least 1",
        ),
        ({"evaluation": None}, "evaluation", "missing"),
        ({"extra": 1}, "extra", "unknown top-level key"),
    ],
)
def test_bad_input_names_the_key(change, key, words):
    with pytest.raises(ConfigError) as info:
        spec(data(**change))
    message = str(info.value)
    assert key in message and words in message
    assert "\n" not in message


def test_api_key_must_be_a_variable_name_and_value_is_not_echoed():
    d = data(target={"api_endpoint": {"url": "http://x/v1", "model_id": "m", "api_key": "sk-live-123/abc"}})
    with pytest.raises(ConfigError) as info:
        spec(d)
    assert "sk-live-123" not in str(info.value) and "NAME" in str(info.value)


def test_nemo_0_2_spellings_are_mapped():
    d = data(
        target={"api_endpoint": {"url": "http://x/v1", "model_id": "m", "api_key_name": "MY_KEY"}},
        evaluation={
            "env_vars": {"HF_TOKEN": "host:HOST_HF"},
            "nemo_evaluator_config": {"config": {"params": {"parallelism": 7, "max_new_tokens": 99}}},
            "tasks": [
                {"name": "gsm8k", "nemo_evaluator_config": {"config": {"params": {"limit_samples": 5}}}}
            ],
        },
    )
    s = spec(d)
    task = s.evaluation.tasks[0]
    assert s.target.api_endpoint.api_key == "MY_KEY"
    assert s.evaluation.env_vars == {"HF_TOKEN": "HOST_HF"}
    p = s.params(task)
    assert (p.parallelism, p.max_tokens, p.limit_samples) == (7, 99, 5)
    assert s.env_vars(task) == {"HF_TOKEN": "HOST_HF", "API_KEY": "MY_KEY"}


@pytest.mark.parametrize(
    ("evaluation", "key", "words"),
    [
        (
            {"tasks": ["gsm8k"], "env_vars": {"A": "lit:value"}},
            "evaluation.env_vars.A",
            "host environment variable",
        ),
        (
            {"tasks": ["gsm8k"], "nemo_evaluator_config": {"config": {"params": {"top_k": 1}}}},
            "params.top_k",
            "new spelling is evaluation.params",
        ),
        ({"tasks": ["gsm8k"], "nemo_evaluator_config": {"target": {}}}, "nemo_evaluator_config", "params"),
    ],
)
def test_unmappable_nemo_spellings_are_rejected_with_the_new_one(evaluation, key, words):
    with pytest.raises(ConfigError) as info:
        spec(data(evaluation=evaluation))
    assert key in str(info.value) and words in str(info.value)


def test_parameter_layers_task_over_evaluation_over_target():
    d = data(
        target={
            "api_endpoint": {"url": "http://x/v1", "model_id": "m"},
            "generation": {"temperature": 0.5, "max_tokens": 10},
        },
        evaluation={
            "params": {"max_tokens": 20, "parallelism": 3},
            "tasks": [{"name": "gsm8k", "params": {"max_tokens": 30}}, "humaneval"],
        },
    )
    s = spec(d)
    first, second = (s.params(t) for t in s.evaluation.tasks)
    assert (first.temperature, first.max_tokens, first.parallelism) == (0.5, 30, 3)
    assert (second.max_tokens, second.request_timeout) == (20, 120.0)


def test_task_env_vars_win_over_evaluation():
    d = data(
        evaluation={"env_vars": {"A": "H1", "B": "H2"}, "tasks": [{"name": "gsm8k", "env_vars": {"A": "H3"}}]}
    )
    s = spec(d)
    assert s.env_vars(s.evaluation.tasks[0]) == {"A": "H3", "B": "H2"}
