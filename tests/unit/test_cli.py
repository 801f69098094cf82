"""The CLI as a user types it (subprocesses): composition forms, dry runs, Hydra flags, one-line errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLE = ["run", "--config-dir", str(ROOT / "examples"), "--config-name", "local_llama_3_1_8b_instruct"]


def test_help_is_light_and_lists_groups(cli):
    proc = cli("--help", check_rc=0)
    assert "launcher status" in proc.stdout and "target: llama_8b, local" in proc.stdout
    assert "deployment: generic, llama_cpp, nim, none, sglang, trtllm, vllm" in proc.stdout
    assert "execution: local, slurm, and any installed plugin" in proc.stdout
    code = (
        "import sys, launcher.__main__ as m; m.main(['--help']); "
        "heavy = [x for x in ('hydra', 'omegaconf', 'docker', 'structlog', 'importlib.metadata') "
        "if x in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, cwd=ROOT)


def test_verbs_have_help(cli):
    for verb in ("status", "logs", "kill", "resume", "ls", "info"):
        proc = cli(verb, "--help", check_rc=0)
        assert f"usage: launcher {verb}" in proc.stdout


def test_console_script_is_the_same_program():
    exe = Path(sys.executable).with_name("launcher")
    out_script = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    out_module = subprocess.run(
        [sys.executable, "-m", "launcher", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert out_script == out_module


@pytest.mark.parametrize("form", [["execution=local"], ["+execution=local"], ["run", "execution=local"]])
def test_group_selection_forms_dry_run(cli, tmp_path, form):
    proc = cli(*form, "target=local", "-n", check_rc=0)
    assert "# dry run: nothing was written or started" in proc.stdout
    assert (
        "docker run --rm --init" in proc.stdout and "# ---- launcher.gsm8k_cot_zeroshot/run.sh" in proc.stdout
    )
    assert not (tmp_path / "results").exists() and not (tmp_path / "state").exists()


def test_classic_form_with_o_needs_no_secret_and_writes_nothing(cli, tmp_path):
    proc = cli(
        *EXAMPLE,
        "-o",
        "target.api_endpoint.api_key=API_KEY",
        "-o",
        "execution.max_parallel=2",
        "--dry-run",
        env={"API_KEY": ""},
        check_rc=0,
    )
    assert "api_key: API_KEY" in proc.stdout and "-ge 3 ]" in proc.stdout  # 2 tasks + the proxy
    assert 'API_KEY="${API_KEY}"' not in proc.stdout  # the key goes to the endpoint proxy only
    assert '"api_key_env": "API_KEY"' in proc.stdout and "# ---- proxy/proxy.json" in proc.stdout
    assert "# ---- launcher.gpqa_diamond/run.sh" in proc.stdout
    assert list(tmp_path.iterdir()) == [], "a dry run must write nothing"


def test_plus_execution_works_with_a_config_that_has_no_execution_slot(cli, tmp_path):
    (tmp_path / "mine.yaml").write_text(
        "defaults:\n  - _self_\ntarget:\n  api_endpoint: {url: 'http://127.0.0.1:1/v1', model_id: m}\n"
        "evaluation:\n  tasks: [launcher.gsm8k_cot_zeroshot]\n"
    )
    for form in ("+execution=local", "execution=local"):
        proc = cli("--config-dir", str(tmp_path), "--config-name", "mine", form, "-n", check_rc=0)
        assert "max_parallel: 4" in proc.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["target=local"], "execution: not chosen. Add execution=<name> (available: local"),
        (
            ["execution=local", "deployment=nope"],
            "deployment: no option 'nope'. Available: generic, llama_cpp, nim, none, sglang, trtllm, vllm",
        ),
        (["execution=local", "deployment.port=0"], "deployment.port: 0 is not a TCP port"),
        (["execution=nope", "target=local"], "execution: no option 'nope'. Available: local"),
        (["execution=local", "target=nope"], "target: no option 'nope'. Available: llama_8b, local"),
        (
            ["execution=local", "target=local", "execution.typo=1"],
            "execution.typo: unknown key. Allowed keys",
        ),
        (
            ["execution=local", "target=local", "+execution.typo=1"],
            "execution.typo: unknown key. Allowed keys",
        ),
        (["execution=local", "target=local", "execution.max_parallel=abc"], "expected an integer, got 'abc'"),
        (
            ["execution=local", "target=local", "target.api_endpoint.type=chatt"],
            "Allowed values: chat, completions",
        ),
        (["execution=local", "target=local", "evaluation.tasks=[nope]"], "'nope' is not a known task"),
        (
            ["execution=local", "target=local", "evaluation.only=nope"],
            "evaluation.only: 'nope' is not a task",
        ),
        (["execution=local", "target=local", "target.api_endpoint.url=${oops}"], "oops"),
        (["execution=local", "target=local", "evaluation.tasks=[unclosed"], "evaluation.tasks"),
        (["execution=local", "evaluation.only=[]"], "evaluation.only: selects no task"),
        (
            ["execution=local", "deployment=llama_cpp", "deployment.env_vars={A: 'x y'}"],
            "deployment.env_vars.A",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(cli, tmp_path, args, words):
    proc = cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert words in proc.stderr
    assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_invalid_yaml_in_a_team_group_is_one_line(cli, tmp_path):
    (tmp_path / "team" / "target").mkdir(parents=True)
    (tmp_path / "team" / "target" / "bad.yaml").write_text("api_endpoint: [unclosed\n")
    proc = cli("--config-dir", str(tmp_path / "team"), "execution=local", "target=bad", "-n")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_team_groups_by_config_dir_and_searchpath(cli, tmp_path):
    team = tmp_path / "team"
    (team / "target").mkdir(parents=True)
    (team / "evaluation").mkdir()
    (team / "target" / "team_model.yaml").write_text(
        "api_endpoint: {url: 'http://127.0.0.1:9000/v1/completions', model_id: team/m, type: completions}\n"
    )
    (team / "evaluation" / "team_suite.yaml").write_text("tasks: [launcher.aime2025]\n")
    args = ["execution=local", "target=team_model", "evaluation=team_suite", "-n"]
    for extra in (["--config-dir", str(team)], [f"hydra.searchpath=[file://{team}]"]):
        proc = cli(*extra, *args, check_rc=0)
        assert "model_id: team/m" in proc.stdout and "# ---- launcher.aime2025/run.sh" in proc.stdout
    # the team's folder reuses our groups too
    proc = cli(
        "--config-dir", str(team), "execution=local", "target=team_model", "evaluation=math", "-n", check_rc=0
    )
    assert "# ---- launcher.gsm8k_cot_zeroshot/run.sh" in proc.stdout


def test_hydra_cfg_and_info(cli):
    proc = cli("execution=local", "target=local", "--cfg", "job", check_rc=0)
    assert "api_endpoint:" in proc.stdout and "hydra:" not in proc.stdout
    proc = cli("execution=local", "target=local", "--info", "defaults", check_rc=0)
    assert "target/local" in proc.stdout + proc.stderr


def test_multirun_dry_run_groups_jobs_under_one_sweep(cli, tmp_path):
    proc = cli(
        "-m",
        "execution=local",
        "target=local,llama_8b",
        "evaluation.only=launcher.gsm8k_cot_zeroshot,launcher.humaneval_chat",
        "-n",
        check_rc=0,
    )
    folders = [
        ln.split(": ", 1)[1] for ln in proc.stdout.splitlines() if ln.startswith("# invocation folder")
    ]
    assert len(folders) == 4 and len({Path(f).parent for f in folders}) == 1
    assert Path(folders[0]).parent.name.startswith("sweep-")
    assert list(tmp_path.iterdir()) == []


def test_ls_tasks_lists_the_registry(cli):
    proc = cli("ls", "tasks", "--json", check_rc=0)
    rows = json.loads(proc.stdout)
    builtin = {r["name"]: r for r in rows if r["source"] == "built-in"}
    assert set(builtin) == {
        "launcher.gsm8k_cot",
        "launcher.gsm8k_cot_zeroshot",
        "launcher.aime2025",
        "launcher.gpqa_diamond",
        "launcher.hellaswag",
        "launcher.truthfulqa_mc1",
        "launcher.humaneval",
        "launcher.humaneval_chat",
    }
    assert all(r["protocol"] for r in builtin.values()), "every built-in names its reference protocol"
    assert "100 of 10,042" in builtin["launcher.hellaswag"]["subsample"]
    assert len([r for r in rows if r["source"] == "catalogue"]) == 421  # NEL 0.2.6's catalogue
    proc = cli("ls", "tasks", "simple_evals.gpqa", check_rc=0)
    assert "simple_evals.gpqa_diamond" in proc.stdout and "launcher.hellaswag" not in proc.stdout


def test_verbs_on_unknown_ids_fail_clearly(cli):
    for verb in (["status", "abc"], ["logs", "abc"], ["kill", "abc"], ["resume", "abc"], ["info", "abc"]):
        proc = cli(*verb)
        assert proc.returncode == 2 and "no invocation, job or sweep matches 'abc'" in proc.stderr


def test_an_unknown_command_names_the_commands_and_the_closest(cli):
    proc = cli("stauts")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "unknown command 'stauts'" in proc.stderr and "launcher status" in proc.stderr
    assert "run, status, logs, kill, resume, ls, info" in proc.stderr


def test_config_file_task_selection_and_env_file(cli, tmp_path):
    """NEL 0.2's forms: --config FILE as the primary config, -t/--task to select tasks, --env-file."""
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "mine.yaml").write_text(
        "defaults:\n  - _self_\ntarget:\n  api_endpoint: {url: 'http://127.0.0.1:1/v1', model_id: m, "
        "api_key: MY_KEY}\nevaluation:\n  tasks: [launcher.gsm8k_cot_zeroshot, launcher.humaneval_chat,"
        " launcher.aime2025]\n"
    )
    (tmp_path / "env").write_text("# a comment\nexport MY_KEY='from-the-file'\n")
    proc = cli(
        "run",
        "--config",
        "conf/mine.yaml",
        "execution=local",
        "-t",
        "launcher.gsm8k_cot_zeroshot",
        "--task=launcher.aime2025",
        "-n",
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        "# ---- launcher.gsm8k_cot_zeroshot/run.sh" in proc.stdout
        and "# ---- launcher.aime2025/run.sh" in proc.stdout
    )
    assert "launcher.humaneval_chat/run.sh" not in proc.stdout
    assert not (tmp_path / "results").exists()
    # the env file's value satisfies the host-variable check and is written nowhere
    proc = cli(
        "--config",
        "conf/mine.yaml",
        "execution=local",
        "execution.pull=never",
        "--env-file",
        "env",
        "evaluation.tasks=[{name: t, container: 'no-such-image:1', command: [x]}]",
    )
    # past the variable check (the image check, which needs Docker, is what fails here, or the engine)
    assert proc.returncode == 2 and "MY_KEY" not in proc.stderr and "from-the-file" not in proc.stderr
    proc = cli("--config", "conf/missing.yaml", "execution=local", "-n")
    assert proc.returncode == 2 and "--config: conf/missing.yaml is not a file" in proc.stderr
    (tmp_path / "conf" / "saved.yml").write_text((tmp_path / "conf" / "mine.yaml").read_text())
    proc = cli("--config", "conf/saved.yml", "execution=local", "-n")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "rename conf/saved.yml to saved.yaml" in proc.stderr and "--config-mode raw" in proc.stderr


def test_a_sweep_checks_every_job_before_any_starts(cli, tmp_path):
    """M11: the second job's unset host variable stops the sweep before the first job starts."""
    proc = cli(
        "-m",
        "execution=local",
        "target=local",
        "target.api_endpoint.api_key=SET_VAR,UNSET_VAR",
        env={"SET_VAR": "x"},
    )
    assert proc.returncode == 2 and "UNSET_VAR is not set" in proc.stderr, proc.stderr
    assert not (tmp_path / "results").exists() and not (tmp_path / "state").exists()


def test_unknown_execution_key_lists_only_the_chosen_executors_keys(cli):
    """L9: with execution=local, Slurm's keys are not offered as allowed."""
    proc = cli("execution=local", "target=local", "execution.typo=1")
    assert proc.returncode == 2 and "max_parallel" in proc.stderr
    assert "partition" not in proc.stderr and "hostname" not in proc.stderr


def test_oc_env_user_unset_is_one_line_naming_the_key_and_the_fix(tmp_path):
    """NEL's Slurm configs write `username: ${oc.env:USER}`; USER is unset in many containers and cron."""
    config = tmp_path / "nel.yaml"
    config.write_text(
        "defaults: [{execution: slurm/default}, {deployment: none}, _self_]\n"
        "execution: {hostname: login, username: '${oc.env:USER}', account: a, output_dir: /lustre/x}\n"
        "target: {api_endpoint: {url: 'http://127.0.0.1:8000/v1/chat/completions', model_id: m}}\n"
        "evaluation: {tasks: [{name: simple_evals.gpqa_diamond}]}\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "USER"} | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "launcher", "run", "--config", str(config), "-n"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr == (
        "error: execution.username: ${oc.env:USER} reads the environment variable USER, which is not set. "
        "Set USER (e.g. export USER=$(id -un)) or write the value: -o execution.username=<value>\n"
    )


def test_env_file_is_parsed_as_dotenv_and_refuses_loader_and_connection_names(cli, tmp_path):
    """N10: `A=abc # note` is `abc` (python-dotenv); BASH_ENV, LD_PRELOAD, PYTHONPATH, DOCKER_HOST,
    https_proxy, PATH... would reach run_all.sh, the proxy and the exports: one line, exit 2, nothing run."""
    code = (
        "import os, sys; from launcher.cli.argv import load_env_file; load_env_file(sys.argv[1]);"
        " print(repr(os.environ['A']), repr(os.environ['B']), repr(os.environ['C']))"
    )
    (tmp_path / "ok.env").write_text('A=abc # note\nexport B=\'x # not a comment\'\nC="q\\"uoted"\n')
    env = {**{k: v for k, v in os.environ.items() if k not in "ABC"}, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code, "ok.env"], capture_output=True, text=True, env=env)
    assert proc.stdout == "'abc' 'x # not a comment' 'q\"uoted'\n", proc.stderr
    for name in ("BASH_ENV", "LD_PRELOAD", "PYTHONPATH", "DOCKER_HOST", "https_proxy", "PATH", "HOME"):
        (tmp_path / "bad.env").write_text(f"HF_TOKEN=x\n{name}=/tmp/evil\n")
        proc = cli("--env-file", "bad.env", "execution=local", "-n")
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert f"--env-file bad.env: {name}: changes how programs load" in proc.stderr


@pytest.mark.parametrize("host", ["PATH", "LD_PRELOAD", "BASH_ENV", "PYTHONPATH", "http_proxy"])
def test_a_host_variable_name_that_changes_how_programs_run_is_refused(cli, host):
    """N10: over SSH the host variables are exported in the login shell before `exec sbatch`."""
    proc = cli("execution=local", "-n", f"+evaluation.env_vars.MINE={host}")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"evaluation.env_vars.MINE: reads the host variable {host}" in proc.stderr


def test_oc_env_built_by_the_grammar_is_refused_when_resolved(cli, tmp_path):
    """N11: `${oc.decode:'${x}{oc.env:VAR}'}` (x holds `$`) passes a scan of the text for `${oc.env:` and
    rendered the host value into run.sh; the oc.env resolver itself refuses (USER/LOGNAME/HOME pass)."""
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "mine.yaml").write_text(
        "defaults:\n  - _self_\ntarget:\n  api_endpoint: {url: 'http://127.0.0.1:1/v1', model_id: '$'}\n"
        "evaluation:\n  tasks: [launcher.gsm8k_cot_zeroshot]\n  env_vars:\n"
        "    EXTRA: \"lit:${oc.decode:'${target.api_endpoint.model_id}{oc.env:MYTOKEN}'}\"\n"
    )
    proc = cli("--config", "conf/mine.yaml", "execution=local", "-n", env={"MYTOKEN": "s3cret-value-1"})
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "evaluation.env_vars.EXTRA:" in proc.stderr and "would write the value of MYTOKEN" in proc.stderr
    assert "s3cret-value-1" not in proc.stdout + proc.stderr
    (tmp_path / "conf" / "mine.yaml").write_text(
        (tmp_path / "conf" / "mine.yaml").read_text().replace("oc.env:MYTOKEN", "oc.env:USER")
    )
    proc = cli("--config", "conf/mine.yaml", "execution=local", "-n", env={"USER": "someone"})
    assert proc.returncode == 0 and "EXTRA=someone" in proc.stdout, proc.stderr


@pytest.mark.parametrize(
    "override, key",
    [
        (
            "execution.extra_docker_args=[-e,'HF_TOKEN=hf_abcdefghijklmnopq']",
            "execution.extra_docker_args[1]",
        ),
        ("+evaluation.pre_cmd='export HF_TOKEN=abc123'", "evaluation.pre_cmd"),
        ("target.api_endpoint.url=https://me:p4ssw0rd@127.0.0.1:1/v1", "target.api_endpoint.url"),
    ],
)
def test_a_literal_secret_in_command_text_or_a_url_is_refused(cli, override, key):
    """N11: it would be written into run.sh, the docker command line and .hydra/; the value is not shown."""
    proc = cli("execution=local", "-n", override)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"error: {key}: holds ") and "(value not shown)" in proc.stderr
    assert not any(s in proc.stdout + proc.stderr for s in ("hf_abcdefghijklmnopq", "abc123", "p4ssw0rd"))


@pytest.mark.parametrize("group", ["target", "execution", "evaluation", "deployment"])
def test_a_config_group_set_to_null_is_one_line_exit_2(cli, group):
    """L1: Hydra's bare ValueError was `internal error`, exit 1."""
    proc = cli("execution=local", "-n", f"{group}=null")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(
        f"error: {group}: null is not an option of the {group} group. Choose one of: "
    )


def test_the_dry_run_refuses_a_container_user_that_cannot_write_the_results(cli):
    """L3: refused at launch, and now by --dry-run too (one line, exit 2)."""
    proc = cli("execution=local", "-n", "execution.user=65534:65534")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: execution.user: '65534:65534' is not you") and proc.stdout == ""


def test_an_override_that_does_not_parse_never_echoes_a_secret_looking_value(cli):
    proc = cli("execution=local", "-n", "execution.extra_docker_args=[-e,HF_TOKEN=hf_abcdefghijklmnopq]")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "hf_abcdefghijklmnopq" not in proc.stderr and "(value not shown)" in proc.stderr
