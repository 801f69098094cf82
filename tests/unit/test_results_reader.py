"""launcher.store.results, the one reader of a task's results: export sees what status sees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from export_fixtures import invocation

from launcher.errors import LauncherError
from launcher.export import source
from launcher.store import layout, results

DOC = {
    "results": {
        "tasks": {
            "gsm8k_cot": {
                "metrics": {"exact_match": {"scores": {"strict": {"value": 0.5, "stats": {"stderr": 0.1}}}}},
                "protocol": "p",
                "headline": "exact_match",
                "samples": {"items": 8, "size": 1319, "subsample": "first 8", "repeats": 1},
            }
        }
    },
    "model_id": "from-results",
    "chance": 0.0,
    "finished_at": "2026-01-01T00:00:00Z",
    "config": {"model_id": "from-results"},
}


@pytest.mark.parametrize(
    ("doc", "task", "found"),
    [
        (DOC, "gsm8k_cot", ("gsm8k_cot", 8, 0.0, "first 8", "p")),
        (DOC, "gsm8k", ("gsm8k_cot", 8, 0.0, "first 8", "p")),  # the only entry, named otherwise (NEL)
        # launcher 0.1: samples a count, protocol and chance at the top level
        (
            {
                "results": {"tasks": {"a": {"metrics": {}}, "b": {}}},
                "samples": 3,
                "protocol": "q",
                "chance": 0.25,
            },
            "a",
            ("a", 3, 0.25, None, "q"),
        ),
        ({"results": {"tasks": {"a": {}, "b": {}}}}, "c", None),  # several entries, none named c
        # a repeated task's id <name>.<position>: the harness named its entry by the name
        ({"results": {"tasks": {"mmlu": {}, "mmlu_stem": {}}}}, "mmlu.2", ("mmlu", None, None, None, "")),
        ({"results": {"tasks": {"a.1": {}, "a": {}}}}, "a.1", ("a.1", None, None, None, "")),  # exact first
        ({"results": {"tasks": [1, 2]}}, "a", None),  # a custom task's shape
        # a harness that scores only a group (nemo-evaluator's `groups`, as NEL's bfcl writes it)
        ({"results": {"tasks": {}, "groups": {"bfcl": {}}}}, "bfclv3_ast", ("bfcl", None, None, None, "")),
        # tasks first when there are both
        ({"results": {"tasks": {"a": {}}, "groups": {"g": {}}}}, "g", ("a", None, None, None, "")),
    ],
)
def test_entry(tmp_path, doc, task, found):
    (tmp_path / "results").mkdir()
    (tmp_path / layout.TASK_RESULTS_JSON).write_text(json.dumps(doc))
    entry = results.read(tmp_path).entry(task)
    got = entry and (entry.task, entry.items, entry.chance, entry.subsample, entry.protocol)
    assert got == found


def test_nel_results_yml_alone_is_read_by_status_and_export(tmp_path):
    a = invocation(tmp_path / "runs", "m", {"gsm8k": [True]})
    task_dir = Path(a.folder, "gsm8k")
    (task_dir / layout.TASK_RESULTS_JSON).unlink()
    (task_dir / layout.TASK_RESULTS_YML).write_text(yaml.safe_dump(DOC))
    assert results.headline(task_dir) == "strict=0.5000"
    (run,) = source.load([a.invocation_id])
    assert (run.model, run.samples, run.scores[0].name, run.scores[0].stderr) == (
        "m",  # the run record's model, never the task-written file's (N7)
        8,
        "exact_match.strict",
        0.1,
    )


def test_a_corrupt_results_file_is_no_score_for_status_and_one_line_for_export(tmp_path):
    a = invocation(tmp_path / "runs", "m", {"t": [True]})
    task_dir = Path(a.folder, "t")
    (task_dir / layout.TASK_RESULTS_JSON).write_text('{"results": ')
    assert results.scores(task_dir) == []
    with pytest.raises(LauncherError, match=r"cannot read .*results\.json: Expecting value"):
        source.load([a.invocation_id])
    (task_dir / layout.TASK_RESULTS_JSON).unlink()
    (task_dir / layout.TASK_RESULTS_YML).write_text("a: [")
    with pytest.raises(LauncherError, match=r"cannot read .*results\.yml: while parsing"):
        source.load([a.invocation_id])
