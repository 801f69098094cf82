"""The shard split and merge (launcher.harness.shards), exhaustively over small sizes, and the run
config's `shard` key."""

import json
import random

import pytest

from launcher.harness.aggregate import sample_key
from launcher.harness.contract import ConfigError, RunConfig
from launcher.harness.shards import Shard, merge, select


def keys(items: int, repeats: int) -> list[str]:
    return [sample_key(f"s{i}", r, repeats) for i in range(items) for r in range(repeats)]


@pytest.mark.parametrize("repeats", [1, 2, 3, 5])
@pytest.mark.parametrize("count", [1, 2, 3, 4, 7, 8])
def test_every_sample_is_in_exactly_one_shard_and_sizes_differ_by_one_at_most(count, repeats):
    for items in range(0, 30):
        whole = keys(items, repeats)
        parts = [list(select(whole, Shard(k, count))) for k in range(count)]
        flat = [key for part in parts for key in part]
        assert sorted(flat) == sorted(whole) and len(flat) == len(set(flat))
        sizes = [len(p) for p in parts]
        assert max(sizes) - min(sizes) <= 1
        assert sizes == [Shard(k, count).size(len(whole)) for k in range(count)]
        for part in parts:  # each part keeps the canonical order
            assert part == sorted(part, key=whole.index)


def test_the_split_is_deterministic_and_unchanged_by_limit_samples():
    def owner(items: int, repeats: int, count: int) -> dict[str, int]:
        return {key: k for k in range(count) for key in select(keys(items, repeats), Shard(k, count))}

    assert owner(50, 3, 4) == owner(50, 3, 4)
    for count in (2, 3, 8):
        for repeats in (1, 4):
            small, large = owner(20, repeats, count), owner(57, repeats, count)
            assert all(large[key] == k for key, k in small.items())  # a longer limit moves no sample


def test_no_shard_means_the_whole_task():
    assert list(select(keys(4, 2), None)) == keys(4, 2)


@pytest.mark.parametrize("bad", [(-1, 2), (2, 2), (0, 0), (True, 2), (0, 2.0)])
def test_a_shard_outside_its_count_is_refused(bad):
    with pytest.raises(ValueError, match="need 0 <= index < count"):
        Shard(*bad)


def test_merge_takes_each_sample_from_its_owner_in_canonical_order():
    whole = keys(10, 2)
    count = 3
    rng = random.Random(5)
    parts = []
    for k in range(count):
        mine = list(select(whole, Shard(k, count)))
        rng.shuffle(mine)  # a shard's checkpoint is in completion order
        part = {key: {"key": key, "from": k} for key in mine}
        stray = whole[(k + 1) % len(whole)]  # a line for another shard's sample never counts
        part.setdefault(stray, {"key": stray, "from": "stray"})
        parts.append(part)
    records, missing = merge(whole, parts, count)
    assert [r["key"] for r in records] == whole and missing == []
    assert all(r["from"] == n % count for n, r in enumerate(records))


def test_merge_names_the_shards_with_gaps():
    whole = keys(9, 1)
    parts = [{key: {"key": key} for key in select(whole, Shard(k, 3))} for k in range(3)]
    del parts[2]["s2"], parts[2]["s5"], parts[0]["s0"]
    records, missing = merge(whole, parts, 3)
    assert missing == [(0, 1), (2, 2)] and len(records) == 6
    with pytest.raises(ValueError, match="2 shard results for 3 shards"):
        merge(whole, parts[:2], 3)


BASE = {"task": "add", "model_id": "m", "url": "http://127.0.0.1:9/v1/chat/completions"}


def test_the_run_config_carries_the_shard_and_omits_it_for_a_whole_task():
    whole = RunConfig.from_json(json.dumps(BASE))
    assert "shard" not in json.loads(whole.to_json()) and whole.shard is None
    part = RunConfig.from_json(json.dumps({**BASE, "shard": {"index": 2, "count": 4}}))
    assert part.shard == (2, 4) and json.loads(part.to_json())["shard"] == {"index": 2, "count": 4}
    assert RunConfig.from_json(part.to_json()) == part


@pytest.mark.parametrize("bad", [{"index": 4, "count": 4}, {"index": 0}, [0, 2], {"index": "0", "count": 2}])
def test_a_bad_shard_in_the_run_config_is_one_line(bad):
    with pytest.raises(ConfigError, match=r"run config key 'shard' must be .*0 <= k < N") as err:
        RunConfig.from_json(json.dumps({**BASE, "shard": bad}))
    assert "\n" not in str(err.value)
