"""Golden files for the rendered scripts, and quoting of hostile values (checked by bash itself)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import GOLDEN_FOLDER, plan_of

from launcher.config.boundary import to_run_spec
from launcher.errors import ConfigError
from launcher.executors.local import LocalConfig

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
FOLDER = GOLDEN_FOLDER


def plan_for(tasks, deployment=None, proxy=False, **execution):
    """`proxy` off by default here: these goldens pin the scripts without it (test_golden_proxy has it)."""
    data = {
        "deployment": deployment or {"type": "none"},
        "execution": {"output_dir": "/data/evals", "user": "1000:1000", **execution},
        "target": {
            "api_endpoint": {
                "url": "http://127.0.0.1:8000/v1/chat/completions",
                "model_id": "m",
                "api_key": "MY_API_KEY",
                "proxy": proxy,
                "proxy_port": 8100,
            }
        },
        "evaluation": {"tasks": tasks, "env_vars": {"HF_TOKEN": "HOST_HF_TOKEN"}},
    }
    spec = to_run_spec(data, "local", LocalConfig)
    return plan_of(spec)


def check_golden(name: str, text: str):
    text = text.replace(sys.executable, "<launcher's python>")  # the checkout's venv: differs per machine
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; rerun with UPDATE_GOLDEN=1 if intended"


def test_golden_scripts():
    plan = plan_for(
        [
            "launcher.gsm8k_cot_zeroshot",
            "launcher.humaneval_chat",
            {
                "name": "custom eval",
                "container": "my/image:1",
                "command": ["run", "--x"],
                "env_vars": {"EXTRA": "HOST_EXTRA"},
            },
        ],
        max_parallel=2,
    )
    check_golden("run_all.sh", plan.files["run_all.sh"])
    check_golden("gsm8k.run.sh", plan.files["launcher.gsm8k_cot_zeroshot/run.sh"])
    check_golden("custom_eval.run.sh", plan.files["custom_eval/run.sh"])
    check_golden("gsm8k.run_config.json", plan.files["launcher.gsm8k_cot_zeroshot/results/run_config.json"])
    check_golden("humaneval.run.sh", plan.files["launcher.humaneval_chat/run.sh"])
    assert plan.host_env == ("HOST_EXTRA", "HOST_HF_TOKEN", "MY_API_KEY")


HOSTILE = [
    "$(touch PWNED)",
    "`touch PWNED`",
    'it\'s "quoted"',
    "semi; touch PWNED",
    "../../escape",
    "ünïcødé ✓",
    "x" * 300,
]


def test_a_task_name_with_a_newline_is_refused_at_the_boundary():
    with pytest.raises(ConfigError, match=r"evaluation.tasks\[0\].name: contains a newline"):
        plan_for([{"name": "new\nline", "container": "img", "command": ["echo"]}])


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_task_names_stay_data(tmp_path, name):
    plan = plan_for([{"name": name, "container": "img", "command": ["echo", name, "$HOME", "`id`"]}])
    (job,) = plan.jobs
    assert "/" not in job.folder and not job.folder.startswith(".") and len(job.folder) <= 64
    script = plan.files[f"{job.folder}/run.sh"]
    # Replace docker with a stub that prints its argv, then run the script for real.
    task_dir = tmp_path / job.folder
    (task_dir / "logs").mkdir(parents=True)
    (task_dir / "run.sh").write_text(script.replace(FOLDER, str(tmp_path)))
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "docker").write_text('#!/usr/bin/env bash\nprintf "%s\\0" "$@"\n')
    (stub / "docker").chmod(0o755)
    env = {"PATH": f"{stub}:{os.environ['PATH']}", "MY_API_KEY": "k", "HOST_HF_TOKEN": "t"}
    subprocess.run(["bash", str(task_dir / "run.sh")], check=True, env=env, cwd=tmp_path)
    log = (task_dir / "logs/output.log").read_text()
    argv = log.split("\n", 1)[1].split("\0")  # after the "=== start" line
    assert f"launcher.task={name}" in argv and f"LAUNCHER_TASK={name}" in argv
    assert argv[-4:-1] == [name, "$HOME", "`id`"]
    assert not list(tmp_path.rglob("PWNED"))
    assert not (tmp_path.parent / "escape").exists()


def test_golden_proxy_in_front_of_a_model_server():
    """The default: run_all.sh starts launcher.proxy after the server; tasks get its URL and, as API_KEY,
    the credential run_all.sh draws for the proxy (by environment: its value is in no file)."""
    deployment = {"type": "server", "name": "llama_cpp", "image": "srv:1", "port": 8011,
                  "command": ["serve", "--port", "8011"]}  # fmt: skip
    plan = plan_for(["launcher.gsm8k_cot_zeroshot"], deployment=deployment, proxy=True, max_parallel=2)
    check_golden("run_all_proxy.sh", plan.files["run_all.sh"].replace(sys.executable, "PYTHON"))
    run_config = json.loads(plan.files["launcher.gsm8k_cot_zeroshot/results/run_config.json"])
    assert (run_config["url"], run_config["api_key_env"]) == (
        "http://127.0.0.1:8100/v1/chat/completions",
        "API_KEY",
    )
    run_sh = plan.files["launcher.gsm8k_cot_zeroshot/run.sh"]
    assert 'API_KEY="${LAUNCHER_PROXY_TOKEN}"' in run_sh and "MY_API_KEY" not in run_sh
    assert json.loads(plan.files["proxy/proxy.json"]) == {
        "adapter_config": {},
        "api_key_env": "MY_API_KEY",
        "upstream": "http://127.0.0.1:8000/v1/chat/completions",
    }
    assert "MY_API_KEY" in plan.host_env  # checked before launch: the proxy reads it
    assert "LAUNCHER_PROXY_TOKEN" not in plan.host_env  # run_all.sh draws it
    subprocess.run(["bash", "-n"], input=plan.files["run_all.sh"], text=True, check=True)


def test_golden_run_all_with_a_model_server():
    deployment = {
        "type": "server",
        "name": "llama_cpp",
        "image": "srv:1",
        "port": 8011,
        "command": ["serve", "--port", "8011"],
        "env_vars": {"HF_TOKEN": "HOST_HF_TOKEN"},
    }
    plan = plan_for(["launcher.gsm8k_cot_zeroshot"], deployment=deployment, max_parallel=2)
    check_golden("run_all_server.sh", plan.files["run_all.sh"])
    assert plan.images == ("srv:1",)
    subprocess.run(["bash", "-n"], input=plan.files["run_all.sh"], text=True, check=True)


def test_golden_slurm_batch_and_pyxis_task_script():
    from launcher.executors.slurm import SlurmConfig

    data = {
        "execution": {
            "output_dir": "/data/evals",
            "user": "1000:1000",
            "partition": "batch",
            "account": "llm",
            "gpus_per_node": 1,
            "extra_sbatch": ["--qos=high"],
            "container_runtime": "pyxis",
        },
        "target": {
            "api_endpoint": {
                "url": "http://127.0.0.1:8000/v1/chat/completions",
                "model_id": "m",
                "api_key": "MY_API_KEY",
            }
        },
        "evaluation": {"tasks": ["launcher.gsm8k_cot_zeroshot", "launcher.aime2025"]},
    }
    spec = to_run_spec(data, "slurm", SlurmConfig)
    plan = plan_of(spec)
    assert "run_all.sh" not in plan.files
    check_golden("sbatch.sh", plan.files["sbatch.sh"].replace(sys.executable, "PYTHON"))
    check_golden("gsm8k.pyxis.run.sh", plan.files["launcher.gsm8k_cot_zeroshot/run.sh"])
    for script in (plan.files["sbatch.sh"], plan.files["launcher.gsm8k_cot_zeroshot/run.sh"]):
        subprocess.run(["bash", "-n"], input=script, text=True, check=True)


def test_run_all_bounds_parallelism():
    plan = plan_for(
        ["launcher.gsm8k_cot_zeroshot", "launcher.humaneval_chat", "launcher.aime2025"], max_parallel=2
    )
    assert "-ge 2 ]; do wait -n; done" in plan.files["run_all.sh"]
    assert (
        "for task in launcher.gsm8k_cot_zeroshot launcher.humaneval_chat launcher.aime2025; do"
        in plan.files["run_all.sh"]
    )


def test_a_task_named_like_the_proxys_folder_gets_another_folder():
    plan = plan_for([{"name": "proxy", "container": "img:1", "command": "true"}], proxy=True)
    [job] = plan.jobs
    assert job.folder != "proxy" and f"{job.folder}/run.sh" in plan.files


@pytest.mark.parametrize("name", ["PATH", "DOCKER_HOST", "LD_PRELOAD", "HOME"])
def test_a_container_variable_never_changes_the_hosts_docker(name):
    """M12: `PATH="$X" docker run -e PATH` would run another docker, DOCKER_HOST another engine."""
    from launcher.errors import ConfigError

    with pytest.raises(ConfigError, match=rf"evaluation.tasks\[0\].env_vars.{name}: this name would"):
        plan_for([{"name": "launcher.gsm8k_cot_zeroshot", "env_vars": {name: "HOST_X"}}])
    with pytest.raises(ConfigError, match=rf"deployment.env_vars.{name}"):
        plan_for(
            ["launcher.gsm8k_cot_zeroshot"],
            deployment={"type": "server", "image": "srv:1", "env_vars": {name: "HOST_X"}},
        )


@pytest.mark.parametrize("name", ["stopping", "rc", "last", "UID", "EUID", "PPID", "RANDOM", "BASHPID"])
@pytest.mark.parametrize("value", ["HOST_X", "lit:1"])
def test_a_container_variable_never_takes_a_scripts_own_name(name, value):
    """N9: `stopping="$X" container docker run` made run.sh exit 143 without running docker; UID, EUID
    and PPID are readonly in bash ("readonly variable", not passed). One line, exit 2, instead."""
    from launcher.errors import ConfigError

    with pytest.raises(
        ConfigError, match=rf"evaluation.tasks\[0\].env_vars.{name}: is a variable of the launcher's"
    ):
        plan_for([{"name": "t", "container": "img:1", "command": ["x"], "env_vars": {name: value}}])
    with pytest.raises(ConfigError, match=rf"deployment.env_vars.{name}: is a variable"):
        plan_for(
            ["launcher.gsm8k_cot_zeroshot"],
            deployment={"type": "server", "image": "srv:1", "env_vars": {name: "HOST_X"}},
        )
    assert plan_for(
        [{"name": "t", "container": "img:1", "command": ["x"], "env_vars": {"STOPPING": "HOST_X"}}]
    )


def test_only_the_launchers_own_placeholder_expands(tmp_path):
    """L6: a literal `$(id -u):$(id -g)` in an argument is data; the default container user expands."""
    plan = plan_for(
        [{"name": "t", "container": "img:1", "command": ["echo", "$(id -u):$(id -g)"]}], user=None
    )
    script = plan.files["t/run.sh"]
    assert '--user "$(id -u):$(id -g)"' in script
    assert "echo '$(id -u):$(id -g)'" in script
