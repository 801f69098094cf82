"""`launcher compare` and `launcher.api.compare` on real invocation folders written by the harness's own
writers (tests/export_fixtures.py), and the refusals of runs that do not pair."""

import json
from pathlib import Path

import pytest
from export_fixtures import invocation

from launcher import api
from launcher.export import source
from launcher.harness import aggregate, checkpoint
from launcher.paired import compare, records
from launcher.paired.compare import NotPaired


def outcomes(n: int, wrong_every: int, also_wrong: set[int] = frozenset()) -> list[bool]:
    return [i % wrong_every != 0 and i not in also_wrong for i in range(n)]


def test_paired_counts_and_delta(tmp_path):
    base = invocation(tmp_path, "m", {"gsm8k": outcomes(400, 5)})  # 80 %
    cand = invocation(tmp_path, "m", {"gsm8k": outcomes(400, 5, {1, 2, 3, 4, 6, 7, 8, 9})})
    c = api.compare(base.invocation_id, cand.invocation_id)
    (t,) = c.tasks
    assert (t.task, t.metric, t.stats.n) == ("gsm8k", "accuracy", 400)
    assert (t.stats.improved, t.stats.regressed, t.stats.tied) == (0, 8, 392)
    assert t.stats.delta == pytest.approx(-8 / 400)
    assert t.stats.test == "mcnemar" and t.stats.p_value == pytest.approx(2 / 2**8)
    assert t.regressed_items == tuple(f"s{i}" for i in (1, 2, 3, 4, 6, 7, 8, 9)) and t.improved_items == ()


def test_cli_formats_and_job_ids(tmp_path, cli):
    base = invocation(tmp_path, "m", {"gsm8k": outcomes(50, 5), "mmlu": outcomes(50, 4)})
    cand = invocation(tmp_path, "m", {"gsm8k": outcomes(50, 2), "mmlu": outcomes(50, 4)})
    out = cli("compare", base.invocation_id, cand.invocation_id, "--format", "json", check_rc=0).stdout
    data = json.loads(out)
    assert [t["task"] for t in data["tasks"]] == ["gsm8k", "mmlu"]
    assert data["tasks"][1]["delta"] == 0 and data["tasks"][1]["p_value"] == 1.0
    text = cli("compare", f"{base.invocation_id}.0", f"{cand.invocation_id}.0", check_rc=0).stdout
    assert "gsm8k  accuracy  50" in text and "mmlu" not in text.split("\n\n")[1]
    md = cli(
        "compare", base.invocation_id, cand.invocation_id, "--task", "mmlu", "--format", "markdown"
    ).stdout
    assert "| mmlu | accuracy | 50 |" in md
    bad = cli("compare", base.invocation_id, cand.invocation_id, "--format", "yaml", check_rc=2)
    assert bad.stderr.strip().count("\n") == 0 and "allowed: text, json, markdown" in bad.stderr


def test_errored_items_are_left_out_and_stated(tmp_path, cli):
    base = invocation(tmp_path, "m", {"gsm8k": outcomes(40, 5)}, errors=2)
    cand = invocation(tmp_path, "m", {"gsm8k": outcomes(40, 5)}, errors=2)
    (t,) = api.compare(base.invocation_id, cand.invocation_id).tasks
    assert t.stats.n == 40 and t.errored == (2, 2)
    text = cli("compare", base.invocation_id, cand.invocation_id, check_rc=0).stdout
    assert "2 item(s) errored in BASE, 2 in CAND" in text


def _rewrite(folder: Path, task: str, edit) -> None:
    path = folder / task / "results" / "results.json"
    doc = json.loads(path.read_text())
    edit(doc["results"]["tasks"][task])
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda e: e.update(protocol="another protocol"), "differ in protocol"),
        (lambda e: e["samples"].update(items=30), "differ in item limit"),
        (lambda e: e["samples"].update(subsample="first 40 of 1319 items"), "differ in subsample"),
    ],
)
def test_different_protocols_limits_subsamples_are_refused(tmp_path, cli, edit, message):
    base = invocation(tmp_path, "m", {"gsm8k": outcomes(40, 5)})
    cand = invocation(tmp_path, "m", {"gsm8k": outcomes(40, 5)})
    _rewrite(Path(cand.folder), "gsm8k", edit)
    proc = cli("compare", base.invocation_id, cand.invocation_id, check_rc=2)
    assert message in proc.stderr and proc.stderr.count("\n") == 1 and proc.stdout == ""


def test_different_sample_sets_are_refused_naming_the_items(tmp_path):
    base = invocation(tmp_path, "m", {"gsm8k": outcomes(40, 5)})
    cand = invocation(tmp_path, "m", {"gsm8k": outcomes(40, 5)})
    samples = Path(cand.folder) / "gsm8k" / "results" / "samples.jsonl"
    samples.write_text(samples.read_text().replace('"key": "s3"', '"key": "x3"'))
    with pytest.raises(NotPaired, match=r"1 only in BASE \(s3\); 1 only in CAND \(x3\)"):
        api.compare(base.invocation_id, cand.invocation_id)


def test_a_side_with_a_task_twice_and_unknown_metric_are_refused(tmp_path):
    a = invocation(tmp_path, "m", {"gsm8k": outcomes(20, 5)}, sweep="sw", overrides=["x=1"])
    b = invocation(tmp_path, "m", {"gsm8k": outcomes(20, 5)}, sweep="sw", overrides=["x=2"])
    with pytest.raises(NotPaired, match="BASE holds task gsm8k twice"):
        api.compare("sw", a.invocation_id)
    with pytest.raises(NotPaired, match="no metric 'f1'.*available: accuracy, mean_reward, pass@1"):
        api.compare(a.invocation_id, b.invocation_id, metric="f1")


def test_repeats_are_averaged_per_item_and_categories_cluster(tmp_path):
    def run(folder: Path, scores: dict[str, list[float]]) -> source.TaskRun:
        results = folder / "t" / "results"
        results.mkdir(parents=True)
        log = checkpoint.SampleLog(results / checkpoint.SAMPLES)
        recs = {}
        for item, values in scores.items():
            for r, v in enumerate(values):
                key = aggregate.sample_key(item, r, 3)
                recs[key] = {"key": key, "id": item, "repeat": r, "error": None, "scores": {"acc": v}}
                recs[key]["category"] = "algebra" if item < "i5" else "geometry"
                log.append(recs[key])
        log.append({"key": "i0#0", "error": None, "scores": {"acc": 0.0}})  # a later line for a done key
        log.close()
        score = (source.RunScore("acc", "acc", 0.5),)
        return source.TaskRun(
            "i", "i.0", "t", folder / "t", folder, "m", headline="acc", repeats=3, scores=score
        )

    scores = {f"i{k}": [1.0, 0.0, 1.0] for k in range(10)}
    items = records.read(run(tmp_path / "a", scores), "acc")
    assert items.values["i0"] == pytest.approx(2 / 3)  # the first successful record counts
    assert records.read(run(tmp_path / "a1", scores), "acc", passing=True).values["i0"] == pytest.approx(
        2 / 3
    )
    assert items.categories["i7"] == "geometry" and len(items.attempted) == 10
    worse = {item: [0.0, 0.0, 1.0] if item < "i5" else values for item, values in scores.items()}
    t = compare.pair(run(tmp_path / "a2", scores), run(tmp_path / "b", worse))
    assert t.stats.regressed == 5 and t.stats.delta == pytest.approx(-1 / 6)
    assert t.stats.test == "permutation" and t.stats.clusters == 2
