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
    # hydra is the default and can be said (NEL's provenance key is raw mode's alone)
    hydra = saved.with_suffix(".yaml")
    hydra.write_text(saved.read_text().replace("user_config_path", "# user_config_path"))
    proc = dry(cli, "--config", str(hydra), "--config-mode", "hydra", "execution=local")
    assert proc.returncode == 0, proc.stderr
