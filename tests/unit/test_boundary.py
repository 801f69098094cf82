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
        "evaluation": {"tasks": [{"name": "launcher.gsm8k_cot_zeroshot"}]},
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
        (
            {"evaluation": {"tasks": ["launcher.aime2025", "launcher.aime2025", "launcher.aime2025.1"]}},
            "evaluation.tasks[2].name",
            "also the id of the repeated task",
        ),
        (
            {"evaluation": {"tasks": ["launcher.gsm8k_cot_zeroshot"], "only": ["nope"]}},
            "evaluation.only",
            "not a task",
        ),
        (
            {"evaluation": {"tasks": ["launcher.gsm8k_cot_zeroshot"], "env_vars": {"A": "not a name"}}},
            "evaluation.env_vars.A",
            "valid",
        ),
        (
            {"evaluation": {"tasks": ["launcher.gsm8k_cot_zeroshot"], "params": {"parallelism": 0}}},
            "params.parallelism",
            "at least 1",
        ),
        (
            {"evaluation": {"tasks": ["launcher.gsm8k_cot_zeroshot"], "params": {"shards": 0}}},
            "evaluation.tasks[0].params.shards",
            "at least 1",
        ),
        (
            {"evaluation": {"tasks": [{"name": "launcher.gsm8k_cot_zeroshot", "shards": 1001}]}},
            "evaluation.tasks[0].shards",
            "from 1 to 1000",
        ),
        (
            {"evaluation": {"tasks": [{"name": "launcher.gsm8k_cot_zeroshot", "shards": "8"}]}},
            "evaluation.tasks[0].shards",
            "expected an integer",
        ),
        ({"evaluation": None}, "evaluation", "is null"),
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
                {
                    "name": "launcher.gsm8k_cot_zeroshot",
                    "nemo_evaluator_config": {"config": {"params": {"limit_samples": 5}}},
                }
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
            {"tasks": ["launcher.gsm8k_cot_zeroshot"], "env_vars": {"HF_TOKEN": "lit:whatever"}},
            "evaluation.env_vars.HF_TOKEN",
            "host:<VARIABLE_NAME>",
        ),
        (
            {"tasks": ["launcher.gsm8k_cot_zeroshot"], "nemo_evaluator_config": "abc"},
            "evaluation.nemo_evaluator_config",
            "mapping",
        ),
        (
            {"tasks": ["launcher.gsm8k_cot_zeroshot"], "nemo_evaluator_config": {"config": "abc"}},
            "evaluation.nemo_evaluator_config.config",
            "mapping",
        ),
    ],
)
def test_unmappable_nemo_spellings_are_rejected_by_name(evaluation, key, words):
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
            "tasks": [
                {"name": "launcher.gsm8k_cot_zeroshot", "params": {"max_tokens": 30}},
                "launcher.humaneval_chat",
            ],
        },
    )
    s = spec(d)
    first, second = (s.params(t) for t in s.evaluation.tasks)
    assert (first.temperature, first.max_tokens, first.parallelism) == (0.5, 30, 3)
    assert (second.max_tokens, second.request_timeout) == (20, 120.0)


def test_task_env_vars_win_over_evaluation():
    d = data(
        evaluation={
            "env_vars": {"A": "H1", "B": "H2"},
            "tasks": [{"name": "launcher.gsm8k_cot_zeroshot", "env_vars": {"A": "H3"}}],
        }
    )
    s = spec(d)
    assert s.env_vars(s.evaluation.tasks[0]) == {"A": "H3", "B": "H2"}


# Issue 12: each case below was accepted (or crashed) before; now one line naming the key.
TOKEN = "hf_" + "aB3dE5gH7jK9mN1pQ3sT5vX7z"  # a made-up token shape, not a real credential


def one_line_error(d) -> str:
    with pytest.raises(ConfigError) as info:
        spec(d)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message
    return message


ENDPOINT = {"url": "http://127.0.0.1:8000/v1/chat/completions", "model_id": "m"}


@pytest.mark.parametrize("bad", ["gpu\ntouch pwned #", "a\rb", "a\x00b", "a\x1bb", "a\u2028b", "a\tb"])
@pytest.mark.parametrize(
    ("where", "key"),
    [
        (lambda v: {"execution": {"output_dir": v}}, "execution.output_dir"),
        (lambda v: {"execution": {"extra_docker_args": ["--x", v]}}, "execution.extra_docker_args[1]"),
        (lambda v: {"evaluation": {"tasks": [{"name": v}]}}, "evaluation.tasks[0].name"),
        (
            lambda v: {"evaluation": {"tasks": ["launcher.gsm8k_cot_zeroshot"], "env_vars": {"A": v}}},
            "evaluation.env_vars.A",
        ),
        (lambda v: {"target": {"api_endpoint": {**ENDPOINT, "model_id": v}}}, "target.api_endpoint.model_id"),
        (
            lambda v: {"deployment": {"type": "server", "image": "x", "command": ["a", v]}},
            "deployment.command[1]",
        ),
    ],
)
def test_h3_control_characters_are_refused_everywhere(bad, where, key):
    message = one_line_error(data(**where(bad)))
    assert message.startswith(key) and "Write the value on one line" in message


def test_h3_control_characters_in_keys_are_refused():
    message = one_line_error(
        data(evaluation={"tasks": ["launcher.gsm8k_cot_zeroshot"], "env_vars": {"A\nB": "H"}})
    )
    assert "a key contains a newline" in message


def test_h3_slurm_strings_are_refused():
    from launcher.executors.slurm import SlurmConfig

    for key in ("partition", "account", "time_limit"):
        with pytest.raises(ConfigError, match=f"execution.{key}: contains a newline"):
            to_run_spec(data(execution={key: "gpu\ntouch pwned #"}), "slurm", SlurmConfig)
    with pytest.raises(ConfigError, match=r"execution.extra_sbatch\[0\]: contains a newline"):
        to_run_spec(data(execution={"extra_sbatch": ["--qos=x\nrm -rf ~"]}), "slurm", SlurmConfig)


def test_h3_free_text_written_to_its_own_file_keeps_its_newlines():
    s = spec(
        data(evaluation={"tasks": [{"name": "launcher.gsm8k_cot_zeroshot", "pre_cmd": "set -e\npip list\n"}]})
    )
    assert s.pre_post(s.evaluation.tasks[0]) == ("set -e\npip list\n", "")
    message = one_line_error(
        data(evaluation={"tasks": [{"name": "launcher.gsm8k_cot_zeroshot", "pre_cmd": "a\x00b"}]})
    )
    assert "NUL" in message


@pytest.mark.parametrize("name", ["hostname", "username"])
def test_m6_ssh_names_starting_with_a_dash_are_refused(name):
    from launcher.executors.slurm import SlurmConfig

    with pytest.raises(ConfigError, match=f"execution.{name}: .*option"):
        to_run_spec(data(execution={name: "-oProxyCommand=touch pwned"}), "slurm", SlurmConfig)


def test_m6_ssh_ends_its_options_before_the_destination(tmp_path, monkeypatch):
    from launcher.executors.slurm.shell import SSH

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    argv = SSH("login", "me", 22, ()).command(["squeue"])
    assert argv[-3:] == ["--", "me@login", "squeue"]


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        (
            {
                "evaluation": {
                    "tasks": ["launcher.gsm8k_cot_zeroshot"],
                    "params": {"max_error_fraction": -0.1},
                }
            },
            "max_error_fraction",
            "0 and 1",
        ),
        (
            {"evaluation": {"tasks": ["launcher.gsm8k_cot_zeroshot"], "params": {"max_error_fraction": 1.5}}},
            "max_error_fraction",
            "0 and 1",
        ),
        (
            {"evaluation": {"tasks": ["launcher.gsm8k_cot_zeroshot"], "params": {"request_timeout": 0}}},
            "request_timeout",
            "more than 0",
        ),
        (
            {"evaluation": {"tasks": ["launcher.gsm8k_cot_zeroshot"], "params": {"request_timeout": -5}}},
            "request_timeout",
            "more than 0",
        ),
        (
            {
                "evaluation": {
                    "tasks": ["launcher.gsm8k_cot_zeroshot"],
                    "params": {"temperature": float("nan")},
                }
            },
            "temperature",
            "finite",
        ),
        (
            {"evaluation": {"tasks": ["launcher.gsm8k_cot_zeroshot"], "params": {"top_p": float("inf")}}},
            "top_p",
            "finite",
        ),
        ({"execution": {"stop_grace": -1}}, "execution.stop_grace", "0 or more"),
        ({"target": None}, "target", "is null"),
        ({"execution": None}, "execution", "is null"),
        ({"deployment": None}, "deployment", "deployment=none"),
        (
            {"evaluation": {"tasks": [{"name": "x", "container": "Bad/Image"}]}},
            "container",
            "image reference",
        ),
        (
            {"evaluation": {"tasks": [{"name": "x", "container": "--privileged"}]}},
            "container",
            "image reference",
        ),
        ({"deployment": {"type": "server", "image": "--privileged"}}, "deployment.image", "image reference"),
        ({"execution": {"output_dir": "/data/a:b"}}, "execution.output_dir", "':'"),
    ],
)
def test_l1_l2_values_that_broke_later_are_refused(change, key, words):
    message = one_line_error(data(**change))
    assert key in message and words in message


@pytest.mark.parametrize("remote", ["results", "~/results", "./x"])
def test_l2_remote_output_dir_must_be_absolute(remote):
    from launcher.executors.slurm import SlurmConfig

    with pytest.raises(ConfigError, match="execution.remote_output_dir: .*absolute.*full path"):
        to_run_spec(data(execution={"remote_output_dir": remote}), "slurm", SlurmConfig)


def test_good_image_references_pass():
    from launcher.config.values import is_image_reference

    good = [
        "vllm/vllm-openai:latest",
        "nvcr.io/nvidia/eval-factory/simple-evals:26.03",
        "localhost:5000/a/b:1",
        "launcher-harness:0.1.0",
        "alpine@sha256:" + "a" * 64,
        "Registry.Example.com/x/y",
    ]
    bad = ["Bad/Image", "--privileged", "a b", "x:", "UPPER", "a//b", ""]
    assert [is_image_reference(g) for g in good] == [True] * len(good)
    assert [is_image_reference(b) for b in bad] == [False] * len(bad)


def test_l3_another_container_user_is_refused_with_why():
    import os

    from launcher.config.boundary import check_machine

    s = spec(data(execution={"output_dir": "out", "user": f"{os.getuid() + 1}:0"}))
    with pytest.raises(ConfigError, match="execution.user: .*private \\(0700\\)"):
        check_machine(s)
    check_machine(spec(data(execution={"output_dir": "out", "user": f"{os.getuid()}:{os.getgid()}"})))


@pytest.mark.parametrize(
    "d",
    [
        data(evaluation={"tasks": ["launcher.gsm8k_cot_zeroshot"], "env_vars": {"HF_TOKEN": TOKEN}}),
        data(target={"api_endpoint": {**ENDPOINT, "api_key": TOKEN}}),
        data(target={"api_endpoint": {**ENDPOINT, "type": TOKEN}}),
        data(execution={"max_parallel": TOKEN}),
        data(evaluation={"tasks": [{"name": "x", "container": TOKEN}]}),
        data(evaluation={"tasks": ["launcher.gsm8k_cot_zeroshot"], "env_vars": {"HF_TOKEN": "lit:" + TOKEN}}),
        data(
            evaluation={
                "tasks": ["launcher.gsm8k_cot_zeroshot"],
                "env_vars": {"SOME_VAR": "lit:sk-" + "x1Y2" * 6},
            }
        ),
    ],
)
def test_l4_a_value_that_looks_like_a_secret_is_never_echoed(d):
    message = one_line_error(d)
    assert TOKEN not in message and "x1Y2" not in message and "(value not shown)" in message


def test_l4_names_and_ids_are_not_taken_for_secrets():
    from launcher.config.values import looks_secret

    for plain in [
        "HF_TOKEN_FOR_GPQA_DIAMOND",
        "meta/llama-3.1-8b-instruct",
        "NGC_API_KEY",
        "launcher.gsm8k_cot_zeroshot",
        "nvcr.io/nvidia/eval-factory/simple-evals:26.03",
        "/path/to/checkpoint/Model-7B-v2",
        "Qwen/Qwen3-4B-Instruct-2507",
        "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16",
        "123e4567-e89b-12d3-a456-426614174000",
    ]:
        assert not looks_secret(plain), plain
    for secret in [
        TOKEN,
        "sk-proj-" + "a1B2c3D4" * 3,
        "nvapi-" + "Zx9" * 8,
        "AKIA" + "ABCDEFGH12345678",
        "ghp_" + "a1B2" * 9,
        "xq7Rk2Lp9Vn4Tz8Yw3Bc6Hd1",
    ]:
        assert looks_secret(secret), secret


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (
            {"target": {"api_endpoint": {"api_key": "${oc.env:OPENAI_API_KEY}"}}},
            "target.api_endpoint.api_key",
        ),
        ({"evaluation": {"env_vars": {"HF": "${oc.env:HF_TOKEN}"}}}, "evaluation.env_vars.HF"),
        ({"evaluation": {"tasks": [{"name": "x", "command": ["a", "--k=${oc.env:K,dflt}"]}]}}, "command[1]"),
        ({"execution": {"extra_sbatch": ["${env:SECRET}"]}}, "execution.extra_sbatch[0]"),
    ],
)
def test_l5_env_interpolation_is_refused_with_the_by_name_fix(raw, key):
    from launcher.config.boundary import refuse_env_interpolation

    with pytest.raises(ConfigError) as info:
        refuse_env_interpolation(raw)
    assert key in str(info.value) and "host:" in str(info.value)


def test_l5_identity_variables_stay_allowed():
    from launcher.config.boundary import refuse_env_interpolation

    refuse_env_interpolation({"execution": {"username": "${oc.env:USER}"}, "hydra": {"x": "${oc.env:ANY}"}})


def test_missing_value_the_user_wrote_wins_over_a_default():
    from launcher.config.boundary import user_missing_keys

    user_file = {
        "defaults": ["_self_"],
        "execution": {"hostname": "???", "account": "???", "output_dir": "x"},
    }
    keys = user_missing_keys(user_file, ["execution.account=proj"])
    assert keys == ("execution.hostname",)
    from launcher.executors.slurm import SlurmConfig

    with pytest.raises(ConfigError, match="execution.hostname: missing required value"):
        to_run_spec(data(execution={"hostname": None}), "slurm", SlurmConfig, missing_keys=keys)


def test_a_missing_value_in_a_list_item_is_filled_by_hydra_s_spelling_of_it():
    """NEL's judge tasks write `url: ???` inside evaluation.tasks; the override is tasks.<i>.<key>=..."""
    from launcher.config.boundary import user_missing_keys

    user_file = {
        "evaluation": {"tasks": [{"name": "a"}, {"name": "b", "judge": {"url": "???", "id": "???"}}]}
    }
    keys = user_missing_keys(user_file, ["evaluation.tasks.1.judge.url=http://j"])
    assert keys == ("evaluation.tasks[1].judge.id",)
    with pytest.raises(ConfigError, match=r"add evaluation\.tasks\.1\.judge\.id=\.\.\. to the command"):
        to_run_spec(data(), "local", LocalConfig, missing_keys=keys)


def test_unknown_execution_key_lists_only_the_chosen_executors_keys():
    message = one_line_error(data(execution={"hostname": "x"}))
    assert "Allowed keys under execution: output_dir" in message
    assert "partition" not in message and "hostname," not in message


def test_shards_on_the_task_beat_the_task_params_and_the_evaluation_default():
    tasks = [
        {"name": "launcher.gsm8k_cot_zeroshot", "shards": 3, "params": {"shards": 5}},
        {"name": "launcher.aime2025", "params": {"shards": 5}},
        {"name": "launcher.gpqa_diamond"},
    ]
    s = spec(data(evaluation={"tasks": tasks, "params": {"shards": 2}}))
    assert [s.shards(t) for t in s.evaluation.tasks] == [3, 5, 2]
    assert spec(data()).shards(spec(data()).evaluation.tasks[0]) == 1


@pytest.mark.parametrize(
    "key, value, found",
    [
        ("execution.extra_docker_args[1]", "HF_TOKEN=hf_abcdefghijklmnop", "a literal value for HF_TOKEN"),
        ("execution.extra_docker_args[1]", "MY_API_KEY=short", "a literal value for MY_API_KEY"),
        ("evaluation.pre_cmd", "export OPENAI_API_KEY='sk-x'\nrun", "a literal value for OPENAI_API_KEY"),
        (
            "evaluation.tasks[0].post_cmd",
            "curl -H 'x: Zx9fQ2mLr8TpVw3KsY7d'",
            "a token that looks like a secret",
        ),
        ("target.api_endpoint.url", "https://me:p4ss@api.example/v1", "a password in a URL (user:password@)"),
        ("deployment.command", "serve --url http://u:pw@h/x", "a password in a URL (user:password@)"),
        ("evaluation.pre_cmd", "export HF_TOKEN=$MY_HF_TOKEN; export HF_HOME=/cache", None),
        ("execution.extra_docker_args[0]", "--shm-size=16g", None),
        ("target.api_endpoint.model_id", "meta/llama-3.1-8b-instruct", None),
        ("target.api_endpoint.url", "https://user@api.example/v1", None),
        ("evaluation.tasks[0].name", "TOKEN=abc", None),  # not command text
    ],
)
def test_embedded_secret(key, value, found):
    """N11: literal credentials in docker's extra args, pre/post commands, server commands or URL
    userinfo would be written into run.sh, the dry run and .hydra/."""
    from launcher.config.boundary import embedded_secret

    assert embedded_secret(value, key) == found
