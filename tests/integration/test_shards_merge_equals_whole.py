"""A task run as shards and merged equals the same task run whole: the harness in this process against
the real test endpoint (launcher.testing.endpoint), answering as the oracle or at random (seeded: each
request gets the same answer whichever shard sends it)."""

import json
from pathlib import Path

import pytest

from launcher.harness import runner
from launcher.harness.contract import RunConfig

PARAMS = {"parallelism": 8, "request_timeout": 10.0, "max_retries": 2}


def write(results: Path, url: str, task: str, shard=None, **params) -> Path:
    results.mkdir(parents=True, exist_ok=True)
    kind = "completions" if url.endswith("/v1/completions") else "chat"
    config = RunConfig(task, "fake", url, kind, params={**PARAMS, **params}, shard=shard)
    (results / "run_config.json").write_text(config.to_json())
    return results / "run_config.json"


def run_whole_and_sharded(tmp_path: Path, url: str, task: str, count: int, **params):
    whole, merged = tmp_path / "whole", tmp_path / "merged"
    assert runner.main(["run", "--config", str(write(whole, url, task, **params))]) == 0
    parts = [tmp_path / f"shard-{k}" for k in range(count)]
    for k, part in enumerate(parts):
        assert runner.main(["run", "--config", str(write(part, url, task, (k, count), **params))]) == 0
    config = write(merged, url, task, **params)
    assert runner.main(["merge", "--config", str(config), *map(str, parts)]) == 0
    return whole, merged, parts


def lines(results: Path) -> list[dict]:
    return [json.loads(line) for line in (results / "samples.jsonl").read_text().splitlines()]


def results(folder: Path, name: str = "results.json") -> dict:
    import yaml

    data = yaml.safe_load((folder / name).read_text())  # JSON is YAML
    del data["finished_at"]
    return data


def same_outcomes(whole: Path, merged: Path) -> list[dict]:
    """Every result field but the time, to the last digit; the same records, merged in canonical order."""
    for name in ("results.json", "results.yml"):
        assert results(merged, name) == results(whole, name)
    by_key = {r["key"]: r for r in lines(whole)}
    got = lines(merged)
    assert sorted(r["key"] for r in got) == sorted(by_key)
    for record in got:
        want = by_key[record["key"]]
        for field in ("id", "repeat", "input", "target", "output", "error", "scores", "extracted"):
            assert record.get(field) == want.get(field), (record["key"], field)
    return got


@pytest.mark.parametrize("mode", ["oracle", "random"])
def test_four_shards_merge_to_the_whole_run(endpoint, tmp_path, mode):
    ep = endpoint(mode)
    whole, merged, parts = run_whole_and_sharded(
        tmp_path, ep.url(), "gsm8k_cot_zeroshot", 4, limit_samples=61
    )
    got = same_outcomes(whole, merged)
    ids = [r["id"] for r in got]
    assert ids == [r["id"] for r in sorted(got, key=lambda r: int(r["id"].rpartition("-")[2]))]
    value = results(merged)["results"]["tasks"]["gsm8k_cot_zeroshot"]["metrics"]
    headline = next(iter(value.values()))["scores"]
    score = next(iter(headline.values()))["value"]
    assert score == 1.0 if mode == "oracle" else 0.2 < score < 0.8  # random: both answers occur
    assert [len(lines(p)) for p in parts] == [16, 15, 15, 15]
    # each sample requested once per run: once by the whole run, once by its one shard
    assert set(ep.stats()["samples"].values()) == {2}


def test_repeats_split_across_shards_merge_to_the_whole_run(endpoint, tmp_path):
    ep = endpoint("random")
    whole, merged, parts = run_whole_and_sharded(tmp_path, ep.url(), "aime2025", 3, limit_samples=10)
    got = same_outcomes(whole, merged)
    assert [r["key"] for r in got] == [f"{i}#{r}" for i in [x["id"] for x in got[::4]] for r in range(4)]
    assert [len(lines(p)) for p in parts] == [14, 13, 13]  # 10 items x 4 repeats


def test_log_likelihood_task_merges_to_the_whole_run(endpoint, tmp_path):
    ep = endpoint("random")
    url = ep.url(chat=False)
    whole, merged, _ = run_whole_and_sharded(tmp_path, url, "hellaswag", 2, limit_samples=30)
    same_outcomes(whole, merged)


def test_merge_refuses_while_a_shard_is_unfinished_and_names_it(endpoint, tmp_path, capsys):
    ep = endpoint("oracle")
    task, url = "gsm8k_cot_zeroshot", ep.url()
    parts = [tmp_path / f"shard-{k}" for k in range(2)]
    assert runner.main(["run", "--config", str(write(parts[0], url, task, (0, 2), limit_samples=8))]) == 0
    write(parts[1], url, task, (1, 2), limit_samples=8)
    config = write(tmp_path / "merged", url, task, limit_samples=8)
    capsys.readouterr()
    assert runner.main(["merge", "--config", str(config), *map(str, parts)]) == runner.EXIT_FAILED
    out = capsys.readouterr().out
    assert f"shard 1 ({parts[1]}) lacks 4 samples" in out and not (tmp_path / "merged/results.json").exists()
    shard_config = parts[0] / "run_config.json"
    assert runner.main(["merge", "--config", str(shard_config), *map(str, parts)]) == runner.EXIT_CONFIG
    assert "one shard's run config" in capsys.readouterr().out


def test_a_restart_with_every_sample_saved_brings_the_progress_file_up_to_date(endpoint, tmp_path):
    ep = endpoint("oracle")
    config = write(tmp_path / "s", ep.url(), "gsm8k_cot_zeroshot", (1, 3), limit_samples=9)
    assert runner.main(["run", "--config", str(config)]) == 0
    progress = tmp_path / "s/progress.json"
    progress.write_text(json.dumps({"done": 1, "total": 3, "errors": 0}))  # killed before its last write
    assert runner.main(["run", "--config", str(config)]) == 0
    assert json.loads(progress.read_text())["done"] == 3


def test_a_shard_with_errored_samples_ends_with_its_own_code_and_the_merge_judges_the_limit(tmp_path, capsys):
    down = "http://127.0.0.1:9/v1/chat/completions"  # nothing listens: every request fails
    task, params = "gsm8k_cot_zeroshot", {"limit_samples": 4, "max_retries": 0}
    parts = [tmp_path / f"shard-{k}" for k in range(2)]
    for k, part in enumerate(parts):
        assert runner.main(["run", "--config", str(write(part, down, task, (k, 2), **params))]) == 3
    assert "the merge counts them" in capsys.readouterr().out
    config = write(tmp_path / "merged", down, task, **params)
    assert runner.main(["merge", "--config", str(config), *map(str, parts)]) == runner.EXIT_FAILED
    assert "task failed: 4 of 4 samples errored" in capsys.readouterr().out
    assert (
        json.loads((tmp_path / "merged/results.json").read_text())["results"]["tasks"][task]["errors"][
            "count"
        ]
        == 4
    )
