"""One row per NEL 0.2.6 spelling: what it becomes in the run spec, or the one-line refusal naming it."""

from __future__ import annotations

import pytest

from launcher.config.boundary import to_run_spec
from launcher.errors import ConfigError
from launcher.executors.local import LocalConfig
from launcher.executors.slurm import SlurmConfig

ENDPOINT = {"url": "http://127.0.0.1:8000/v1/chat/completions", "model_id": "m"}


def nel(executor="local", **top):
    tree = {
        "execution": {"output_dir": "out"},
        "target": {"api_endpoint": dict(ENDPOINT)},
        "evaluation": {"tasks": [{"name": "simple_evals.mmlu"}]},
        "deployment": {"type": "none"},
    }
    tree.update(top)
    cls = LocalConfig if executor == "local" else SlurmConfig
    return to_run_spec(tree, executor, cls)


def task0(s):
    return s.evaluation.tasks[0]


VLLM = {
    "type": "vllm",
    "image": "vllm/vllm-openai:latest",
    "served_model_name": "phi",
    "hf_model_handle": "microsoft/Phi-4-mini-instruct",
    "command": "vllm serve microsoft/Phi-4-mini-instruct --port 8000",
    "tensor_parallel_size": 2,
    "data_parallel_size": 4,
    "extra_args": "--max-model-len 4096",
    "endpoints": {"chat": "/v1/chat/completions", "health": "/health"},
    "env_vars": {"HF_TOKEN": "host:HF_TOKEN", "VLLM_ATTENTION_BACKEND": "lit:FLASH_ATTN"},
}

ACCEPTED = [
    # (description, executor, top-level tree changes, what to read from the spec, expected)
    (
        "api_key_name -> api_key",
        "local",
        {"target": {"api_endpoint": {**ENDPOINT, "api_key_name": "NGC_API_KEY"}}},
        lambda s: s.target.api_endpoint.api_key,
        "NGC_API_KEY",
    ),
    (
        "config.params known names -> typed params",
        "local",
        {
            "evaluation": {
                "nemo_evaluator_config": {"config": {"params": {"parallelism": 2, "max_new_tokens": 64}}},
                "tasks": [
                    {"name": "t", "nemo_evaluator_config": {"config": {"params": {"request_timeout": 9}}}}
                ],
            }
        },
        lambda s: (
            s.params(task0(s)).parallelism,
            s.params(task0(s)).max_tokens,
            s.params(task0(s)).request_timeout,
        ),
        (2, 64, 9.0),
    ),
    (
        "config.params.extra and unknown params kept as pass-through, task over evaluation",
        "local",
        {
            "evaluation": {
                "nemo_evaluator_config": {"config": {"params": {"top_k": 5, "extra": {"a": 1, "b": 1}}}},
                "tasks": [
                    {"name": "t", "nemo_evaluator_config": {"config": {"params": {"extra": {"b": 2}}}}}
                ],
            }
        },
        lambda s: task0(s).nemo_evaluator_config["config"]["params"],
        {"top_k": 5, "extra": {"a": 1, "b": 2}},
    ),
    (
        "task adapter_config typed (interceptors) and flat flags kept",
        "local",
        {
            "evaluation": {
                "tasks": [
                    {
                        "name": "t",
                        "nemo_evaluator_config": {
                            "target": {
                                "api_endpoint": {
                                    "adapter_config": {
                                        "use_caching": True,
                                        "interceptors": [
                                            {"name": "system_message", "config": {"system_message": "a\nb"}}
                                        ],
                                    }
                                }
                            }
                        },
                    }
                ]
            }
        },
        lambda s: task0(s).adapter_config.as_dict(),
        {
            "use_caching": True,
            "interceptors": [
                {"name": "system_message", "enabled": True, "config": {"system_message": "a\nb"}}
            ],
        },
    ),
    (
        "target-level adapter_config typed",
        "local",
        {"target": {"api_endpoint": {**ENDPOINT, "adapter_config": {"use_reasoning": True}}}},
        lambda s: s.target.api_endpoint.adapter_config.settings,
        {"use_reasoning": True},
    ),
    (
        "env_vars host:/runtime:/bare -> host names; lit: -> literal env",
        "local",
        {
            "evaluation": {
                "env_vars": {
                    "A": "host:HOST_A",
                    "B": "runtime:SLURM_JOB_ID",
                    "C": "HOST_C",
                    "D": "lit:1",
                    "TOKENIZERS_PARALLELISM": "lit:false",
                    "MODEL": "lit:Qwen/Qwen3-4B-Instruct-2507",
                },
                "tasks": ["t"],
            }
        },
        lambda s: (s.env_vars(task0(s)), s.literal_env(task0(s))),
        (
            {"A": "HOST_A", "B": "SLURM_JOB_ID", "C": "HOST_C"},
            {"D": "1", "TOKENIZERS_PARALLELISM": "false", "MODEL": "Qwen/Qwen3-4B-Instruct-2507"},
        ),
    ),
    (
        "top-level env_vars reach evaluation and deployment; evaluation level wins",
        "local",
        {
            "env_vars": {"HF_DATASETS_OFFLINE": "lit:1", "X": "lit:top"},
            "evaluation": {"env_vars": {"X": "lit:eval"}, "tasks": ["t"]},
        },
        lambda s: (s.evaluation.literal_env, s.deployment.literal_env),
        ({"HF_DATASETS_OFFLINE": "1", "X": "eval"}, {"HF_DATASETS_OFFLINE": "1", "X": "top"}),
    ),
    (
        "pre_cmd/post_cmd: a task's own replaces the evaluation's",
        "local",
        {
            "evaluation": {
                "pre_cmd": "echo e",
                "post_cmd": "echo p",
                "tasks": [{"name": "t", "pre_cmd": "echo t"}],
            }
        },
        lambda s: s.pre_post(task0(s)),
        ("echo t", "echo p"),
    ),
    (
        "task container, endpoint_type, dataset_dir kept",
        "local",
        {
            "evaluation": {
                "tasks": [
                    {
                        "name": "t",
                        "container": "nvcr.io/nvidia/eval-factory/simple-evals:26.03",
                        "endpoint_type": "completions",
                        "dataset_dir": "/data/sets",
                    }
                ]
            }
        },
        lambda s: (
            task0(s).container,
            task0(s).endpoint_type,
            task0(s).dataset_dir,
            task0(s).dataset_mount_path,
        ),
        ("nvcr.io/nvidia/eval-factory/simple-evals:26.03", "completions", "/data/sets", "/datasets"),
    ),
    (
        "execution.mounts -> RunSpec.mounts",
        "local",
        {
            "execution": {
                "output_dir": "out",
                "mounts": {
                    "deployment": {"/hf": "/root/.cache/huggingface"},
                    "evaluation": {"/d": "/d"},
                    "mount_home": False,
                },
            }
        },
        lambda s: (s.mounts.deployment, s.mounts.evaluation, s.mounts.mount_home),
        ({"/hf": "/root/.cache/huggingface"}, {"/d": "/d"}, False),
    ),
    (
        "local mode: sequential -> max_parallel 1; extra_docker_args string -> list; type: local dropped",
        "local",
        {
            "execution": {
                "type": "local",
                "output_dir": "out",
                "mode": "sequential",
                "extra_docker_args": "--shm-size 1g",
            }
        },
        lambda s: (s.execution.max_parallel, s.execution.extra_docker_args),
        (1, ("--shm-size", "1g")),
    ),
    (
        "Slurm: walltime, num_nodes, gres gpu:N, account, partition",
        "slurm",
        {
            "execution": {
                "type": "slurm",
                "walltime": "02:00:00",
                "num_nodes": 2,
                "gres": "gpu:4",
                "account": "proj",
                "partition": "batch",
            }
        },
        lambda s: (s.execution.time_limit, s.execution.nodes, s.execution.gpus_per_node, s.execution.account),
        ("02:00:00", 2, 4, "proj"),
    ),
    (
        "Slurm: unquoted walltime read by YAML as seconds is turned back into HH:MM:SS",
        "slurm",
        {"execution": {"walltime": 5400}},
        lambda s: s.execution.time_limit,
        "01:30:00",
    ),
    (
        "Slurm: other gres, sbatch_comment, ntasks_per_node, sbatch_extra_flags -> #SBATCH lines",
        "slurm",
        {
            "execution": {
                "gres": "gpu:a100:2",
                "sbatch_comment": "nightly",
                "ntasks_per_node": 2,
                "sbatch_extra_flags": {
                    "exclusive": True,
                    "constraint": "h100",
                    "switches": 1,
                    "reservation": None,
                },
            }
        },
        lambda s: s.execution.extra_sbatch,
        (
            "--gres=gpu:a100:2",
            "--comment=nightly",
            "--ntasks-per-node=2",
            "--exclusive",
            "--constraint=h100",
            "--switches=1",
        ),
    ),
    (
        "Slurm: NEL default-valued keys accepted (num_instances 1, subproject, max_walltime null)",
        "slurm",
        {"execution": {"num_instances": 1, "subproject": "nemo-evaluator-launcher", "max_walltime": None}},
        lambda s: s.execution.nodes,
        1,
    ),
    (
        "endpoint_readiness_timeout -> deployment.startup_timeout",
        "local",
        {"execution": {"output_dir": "out", "endpoint_readiness_timeout": 900}, "deployment": dict(VLLM)},
        lambda s: s.deployment.startup_timeout,
        900,
    ),
    (
        "vllm deployment kept typed: command string, parallelism, health path, env split",
        "local",
        {"deployment": dict(VLLM)},
        lambda s: (
            s.deployment.type,
            s.deployment.shell_command,
            s.deployment.tensor_parallel_size,
            s.deployment.data_parallel_size,
            s.deployment.health_path,
            s.deployment.env_vars,
            s.deployment.literal_env,
        ),
        (
            "vllm",
            "vllm serve microsoft/Phi-4-mini-instruct --port 8000",
            2,
            4,
            "/health",
            {"HF_TOKEN": "HF_TOKEN"},
            {"VLLM_ATTENTION_BACKEND": "FLASH_ATTN"},
        ),
    ),
    (
        "auto_export and export kept (run by the local and slurm executors, pending elsewhere)",
        "local",
        {
            "execution": {"output_dir": "out", "auto_export": {"destinations": ["mlflow"]}},
            "export": {"mlflow": {"tracking_uri": "http://127.0.0.1:5000"}},
        },
        lambda s: (
            s.pending.auto_export,
            list(s.pending.export),
            len(s.pending.report("local")),
            len(s.pending.report("slurm")),
            len(s.pending.report("my_plugin")),
        ),
        ({"destinations": ["mlflow"]}, ["mlflow"], 0, 0, 1),
    ),
]


@pytest.mark.parametrize(
    ("what", "executor", "tree", "read", "expected"), ACCEPTED, ids=[r[0] for r in ACCEPTED]
)
def test_nel_spelling_is_mapped(what, executor, tree, read, expected):
    assert read(nel(executor, **tree)) == expected


REFUSED = [
    (
        {"execution": {"type": "lepton", "output_dir": "out"}},
        "local",
        "execution.type: Lepton is not supported",
    ),
    ({"deployment": {"type": "none", "lepton_config": {}}}, "local", "deployment.lepton_config: Lepton"),
    (
        {"auxiliary_deployments": {"judge": {"type": "vllm"}}},
        "local",
        "auxiliary_deployments.judge: a second model server runs on the Slurm executor only",
    ),
    ({"execution": {"num_instances": 2}}, "slurm", "execution.num_instances: needs a deployment"),
    (
        {"execution": {"max_walltime": "120:00:00"}},
        "slurm",
        "execution.max_walltime: there is no total-time cap",
    ),
    (
        {"execution": {"output_dir": "o", "walltime": "01:00:00"}},
        "local",
        "execution.walltime: is a Slurm setting",
    ),
    ({"execution": {"type": "slurm", "output_dir": "o"}}, "local", "execution.type: 'slurm' does not match"),
    ({"execution": {"output_dir": "o", "mode": "fast"}}, "local", "execution.mode: 'fast' is not allowed"),
    (
        {"execution": {"output_dir": "o", "mounts": {"auxiliary": {"judge": {"/a": "/b"}}}}},
        "local",
        "execution.mounts.auxiliary.judge: names no auxiliary deployment",
    ),
    ({"deployment": {**VLLM, "base_command": "x"}}, "local", "deployment.base_command: is NEL's template"),
    ({"deployment": {**VLLM, "hf_model_handle": None}}, "local", "deployment.checkpoint_path: missing"),
    (
        {"evaluation": {"tasks": [{"name": "t", "config": {}}]}},
        "local",
        "evaluation.tasks[0].config: is not a task key",
    ),
    ({"name": "lepton_job"}, "local", "name: NEL's Lepton job name"),
    (
        {"evaluation": {"tasks": ["t"], "env_vars": {"MY_API_KEY": "lit:abc"}}},
        "local",
        "evaluation.env_vars.MY_API_KEY: a literal for a secret",
    ),
    (
        {"env_vars": {"X": "lit:nvapi-" + "Qw3rTy7" * 5}},
        "local",
        "env_vars.X: a literal for a secret would be written into the run scripts (value not shown)",
    ),
]


@pytest.mark.parametrize(("tree", "executor", "words"), REFUSED, ids=[r[2][:40] for r in REFUSED])
def test_nel_spelling_we_do_not_run_is_refused_by_name(tree, executor, words):
    with pytest.raises(ConfigError) as info:
        nel(executor, **tree)
    message = str(info.value)
    assert words in message and "\n" not in message
    assert "Qw3rTy7" not in message


def test_nel_select_not_null_resolver():
    from omegaconf import OmegaConf

    from launcher.config.legacy import register_resolvers

    register_resolvers()
    register_resolvers()  # idempotent
    command = "vllm serve ${select_not_null:deployment.hf_model_handle,/checkpoint}"
    with_handle = OmegaConf.create({"deployment": {"hf_model_handle": "org/m", "command": command}})
    without = OmegaConf.create({"deployment": {"hf_model_handle": None, "command": command}})
    assert with_handle.deployment.command == "vllm serve org/m"
    assert without.deployment.command == "vllm serve /checkpoint"


def test_relative_slurm_mounts_are_taken_from_the_home_and_saved_absolute():
    """NEL 0.2.6 submits (`ssh user@host sbatch ...`) and checks mounts (`test -d`) from the home."""
    import os

    home = os.path.expanduser("~")
    mounts = {"deployment": {"./hf": "/root/.cache/huggingface"}, "evaluation": {"hf": "/hf", "/abs": "/a"}}
    s = nel("slurm", execution={"output_dir": "/lustre/x", "mounts": {**mounts, "mount_home": False}})
    assert s.mounts.deployment == {f"{home}/hf": "/root/.cache/huggingface"}
    assert s.mounts.evaluation == {f"{home}/hf": "/hf", "/abs": "/a"}
    saved = s.config["execution"]["mounts"]
    assert saved["evaluation"] == s.mounts.evaluation and saved["mount_home"] is False


@pytest.mark.parametrize("key", ["export_image", "launcher_install_cmd", "export_mounts"])
def test_nel_s_export_container_settings_are_refused_by_name(key):
    auto = {"destinations": ["local"], key: "x"}
    with pytest.raises(ConfigError, match=rf"^execution.auto_export.{key}: has no effect here"):
        nel("slurm", execution={"output_dir": "/x", "auto_export": auto})
