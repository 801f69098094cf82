"""A NEL catalogue harness writes only results.yml (nemo-evaluator 0.2.8, core/evaluate.py): `status`
(launcher.store.results) and `results`/`export` (launcher.export.source) both read its scores."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.export import source
from launcher.store import results

# The shape nemo-evaluator 0.2.8 + simple-evals 26.3 wrote for gpqa_diamond on 5 items, 3 right
# (tests/integration/test_catalogue_run.py), trimmed to the keys read here.
RESULTS_YML = """\
command: simple_evals --model m --eval_name gpqa_diamond --first_n 5
config:
  output_dir: /results
  params: {limit_samples: 5, task: gpqa_diamond}
  type: gpqa_diamond
git_hash: null
results:
  groups:
    gpqa_diamond:
      metrics:
        score:
          scores:
            micro: {stats: {stddev: 0.48989794855663565, stderr: 0.24494897427831783}, value: 0.6}
  tasks:
    gpqa_diamond:
      metrics:
        score:
          scores:
            micro: {stats: {stddev: 0.48989794855663565, stderr: 0.24494897427831783}, value: 0.6}
"""


def task_run(folder: Path) -> source.TaskRun:
    return source.TaskRun("inv", "inv.0", "simple_evals.gpqa_diamond", folder, folder.parent, "m")


def test_status_and_export_read_the_same_score(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "results/results.yml").write_text(RESULTS_YML)
    (status_score,) = results.scores(tmp_path)
    assert (status_score.task, status_score.metric, status_score.name, status_score.value) == (
        "gpqa_diamond",
        "score",
        "micro",
        0.6,
    )
    assert results.headline(tmp_path) == "micro=0.6000"
    run = source.read_results(task_run(tmp_path))
    (score,) = run.scores
    assert (score.name, score.value, score.stderr) == ("score.micro", 0.6, pytest.approx(0.2449489743))
    assert run.run_config["type"] == "gpqa_diamond"


def test_results_json_wins_and_bad_yaml_is_one_clear_error(tmp_path):
    (tmp_path / "results").mkdir()
    assert source.read_results(task_run(tmp_path)).scores == ()  # no results yet
    (tmp_path / "results/results.yml").write_text("results: [unclosed\n")
    with pytest.raises(source.LauncherError, match="cannot read .*results.yml"):
        source.read_results(task_run(tmp_path))
    (tmp_path / "results/results.json").write_text(
        '{"results": {"tasks": {"t": {"metrics": {"acc": {"scores": {"acc": {"value": 1.0}}}}}}}}'
    )
    (score,) = source.read_results(task_run(tmp_path)).scores
    assert (score.name, score.value) == ("acc", 1.0)
