"""`run --config FILE --config-mode raw` as NEL 0.2.6 has it (cli/run.py): the file is the whole config,
nothing is composed, overrides are refused, `-t` still selects tasks."""

from __future__ import annotations

import pytest

# What NEL 0.2.6 saves after a run (~/.nemo-evaluator/run_configs/<id>_config.yml, the file its hint says
# to rerun with --config-mode=raw): its local_basic.yaml example composed and resolved, with its own local
# execution keys and the `user_config_path` record. Written here as data, the shape NEL's dump gives.
NEL_SAVED = """\
execution:
  type: local
  output_dir: {out}
  extra_docker_args: ''
  mode: sequential
  endpoint_readiness_timeout: 600
deployment:
  type: none
target:
  api_endpoint:
    model_id: meta/llama-3.2-3b-instruct
    url: http://127.0.0.1:1/v1/chat/completions
    api_key_name: MY_KEY
evaluation:
  nemo_evaluator_config:
    config:
      params:
        request_timeout: 3600
        parallelism: 1
        limit_samples: 10
  tasks:
  - name: lm-evaluation-harness.ifeval
  - name: simple_evals.gpqa_diamond
  - name: bigcode-evaluation-harness.mbpp-chat
user_config_path: /somewhere/local_basic.yaml
"""


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "saved_config.yml"
    path.write_text(NEL_SAVED.format(out=tmp_path / "out"))
    return path


def dry(cli, *args, **kw):
    return cli("run", *args, "-n", env={"MY_KEY": "k"}, **kw)


def test_a_saved_nel_config_runs_as_it_is(cli, saved, tmp_path):
    proc = dry(cli, "--config", str(saved), "--config-mode", "raw", check_rc=0)
    for task in (
        "lm-evaluation-harness.ifeval",
        "simple_evals.gpqa_diamond",
        "bigcode-evaluation-harness.mbpp-chat",
    ):
        assert f"# ---- {task}/run.sh" in proc.stdout
    assert "nvcr.io/nvidia/eval-factory/simple-evals:26.03" in proc.stdout
    assert "user_config_path" not in proc.stdout  # NEL's provenance record, not a setting
    assert not (tmp_path / "out").exists()  # a dry run writes nothing


def test_nothing_is_composed(cli, tmp_path):
    """Hydra mode adds the packaged defaults (target=local's generation values); raw mode adds nothing, and
    the executor comes from the file."""
    path = tmp_path / "mine.yaml"
    path.write_text(
        "execution: {type: local, output_dir: out}\n"
        "target: {api_endpoint: {url: 'http://127.0.0.1:1/v1/chat/completions', model_id: m}}\n"
        "evaluation: {tasks: [{name: launcher.aime2025,"
        " params: {limit_samples: '${target.api_endpoint.model_id}'}}]}\n"
    )
    proc = dry(cli, "--config", str(path), "--config-mode=raw")
    assert proc.returncode == 2 and "limit_samples" in proc.stderr  # interpolations resolve (here to 'm')
    path.write_text(path.read_text().replace("'${target.api_endpoint.model_id}'", "3"))
    proc = dry(cli, "--config", str(path), "--config-mode", "raw", check_rc=0)
    resolved = proc.stdout.split("# invocation folder")[0]
    assert "generation" not in resolved and "max_tokens" not in resolved
    # the same file the Hydra way needs an executor chosen: raw mode took it from execution.type
    assert dry(cli, "--config", str(path)).returncode == 2


def test_t_selects_tasks(cli, saved):
    proc = dry(
        cli, "--config", str(saved), "--config-mode", "raw", "-t", "simple_evals.gpqa_diamond", check_rc=0
    )
    assert "# ---- simple_evals.gpqa_diamond/run.sh" in proc.stdout
    assert "lm-evaluation-harness.ifeval/run.sh" not in proc.stdout


@pytest.mark.parametrize(
    "extra, words",
    [
        (["-o", "execution.output_dir=/x"], "without overrides or Hydra options: 'execution.output_dir=/x'"),
        (["target.api_endpoint.model_id=x"], "'target.api_endpoint.model_id=x' cannot apply"),
        (["-m"], "'-m' cannot apply"),
    ],
)
def test_overrides_are_refused(cli, saved, extra, words):
    proc = dry(cli, "--config", str(saved), "--config-mode", "raw", *extra)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and words in proc.stderr


@pytest.mark.parametrize(
    "text, words",
    [
        ("defaults: [{execution: local}, _self_]\n", "defaults: --config-mode raw composes nothing"),
        ("execution: {output_dir: o}\n", "execution.type: is missing (--config-mode raw takes the executor"),
        ("execution: {type: k8s}\n", "execution.type: 'k8s' is not an executor"),
        ("execution: {type: lepton}\n", "Lepton is not supported"),
        ("execution: {type: local}\ntarget: {api_key: '${oc.env:SECRET}'}\n", "oc.env"),
        ("- a\n- b\n", "must be a mapping"),
        ("execution: {type: local\n", "is not valid YAML"),
    ],
)
def test_bad_raw_files_are_one_line_exit_2(cli, tmp_path, text, words):
    path = tmp_path / "raw.yaml"
    path.write_text(text)
    proc = dry(cli, "--config", str(path), "--config-mode", "raw")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert words in proc.stderr


def test_mode_needs_a_file_and_a_known_value(cli, saved):
    proc = dry(cli, "--config-mode", "raw", "execution=local")
    assert proc.returncode == 2 and "--config-mode raw needs --config FILE" in proc.stderr
    proc = dry(cli, "--config", str(saved), "--config-mode", "yaml")
    assert proc.returncode == 2 and "--config-mode: 'yaml' is not one of hydra, raw" in proc.stderr
    proc = dry(cli, "--config", "missing.yaml", "--config-mode", "raw")
    assert proc.returncode == 2 and "--config: missing.yaml is not a file" in proc.stderr
    # hydra is the default and can be said
    hydra = saved.with_suffix(".yaml")
    hydra.write_text(saved.read_text())
    proc = dry(cli, "--config", str(hydra), "--config-mode", "hydra", "execution=local")
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("mode", [["--config-mode", "hydra", "execution=local"], ["--config-mode", "raw"]])
def test_nel_user_config_path_is_a_record_both_modes_drop(cli, saved, mode):
    """NEL 0.2.6 replaces `user_config_path` with the path of the --config file it composed and only copies
    that file into the results (api/types.py, common/helpers.py): a value in a file never steers a run.
    Both modes accept it (a NEL saved config runs either way) and keep it out of the saved config."""
    path = saved.rename(saved.with_suffix(".yaml"))  # Hydra reads .yaml only; raw mode either
    proc = dry(cli, "--config", str(path), *mode)
    assert proc.returncode == 0, proc.stderr
    assert "\nuser_config_path:" not in config_of(proc.stdout)


def test_user_config_path_as_an_override_is_dropped_too(cli, saved):
    hydra = saved.with_suffix(".yaml")
    hydra.write_text(saved.read_text().replace("user_config_path", "# user_config_path"))
    proc = dry(
        cli, "--config", str(hydra), "execution=local", "+user_config_path=/elsewhere.yaml", check_rc=0
    )
    assert "\nuser_config_path:" not in config_of(proc.stdout)


def config_of(stdout: str) -> str:
    """The resolved config a dry run prints: the text run writes to .hydra/config.yaml (both are
    layout.to_yaml(spec.config))."""
    return stdout.split("# resolved config\n")[1].split("# invocation folder")[0]


def planned(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("# ---- ")]


@pytest.mark.parametrize(
    "choose",
    [
        ["execution=local", "target=local"],
        ["execution=slurm", "target=local", "execution.launcher_python=/usr/bin/python3"],
        ["execution=slurm/default", "target=local", "target.api_endpoint.proxy=false"],  # NEL's group name
    ],
)
def test_the_saved_config_reruns_in_raw_mode_as_planned(cli, tmp_path, choose):
    """The saved .hydra/config.yaml names its executor (execution.type): `--config-mode raw` on it plans
    the same tasks with the same executor, and would save the same config again."""
    first = cli(
        "run", "-n", *choose, f"execution.output_dir={tmp_path}/out",
        "target.api_endpoint.url=http://127.0.0.1:1/v1/chat/completions",
        "+evaluation.tasks=[launcher.gsm8k_cot_zeroshot,simple_evals.gpqa_diamond]", check_rc=0,
    )  # fmt: skip
    saved = tmp_path / "config.yaml"
    saved.write_text(config_of(first.stdout))
    assert "\n  type: " + ("local" if "local" in choose[0] else "slurm") + "\n" in saved.read_text()
    again = dry(cli, "--config", str(saved), "--config-mode", "raw", check_rc=0)
    assert config_of(again.stdout) == config_of(first.stdout)
    assert planned(again.stdout) == planned(first.stdout)
    assert len(planned(first.stdout)) >= 3  # the executor's script and each task's
