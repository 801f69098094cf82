"""Per-item mean over repeats, then mean and stderr over items; an errored sample scores 0 in the value
and is left out of `answered`; results layout."""

import math

import pytest

from launcher.harness.aggregate import results, sample_key, tally
from launcher.harness.api import Task


def rec(score=None, error=None):
    return {"error": error, "scores": None if score is None else {"m": score}}


@pytest.mark.parametrize(
    ("records", "repeats", "value", "answered", "items", "attempts", "errors"),
    [
        ({"a": rec(1.0), "b": rec(0.0)}, 1, 0.5, 0.5, 2, 2, 0),
        ({"a": rec(1.0), "b": rec(error="HTTP 500")}, 1, 0.5, 1.0, 2, 2, 1),  # the error fails item b
        ({"a#0": rec(1.0), "a#1": rec(0.0), "b#0": rec(1.0), "b#1": rec(1.0)}, 2, 0.75, 0.75, 2, 4, 0),
        ({"a#0": rec(1.0), "a#1": rec(error="x"), "b#0": rec(0.0)}, 2, 0.25, 0.5, 2, 3, 1),  # b#1 not done
        ({}, 1, 0.0, 0.0, 0, 0, 0),
        ({"a": {"error": None}, "b": rec(1.0)}, 1, 0.5, 1.0, 2, 2, 1),  # a code sample without a verdict
    ],
)
def test_tally(records, repeats, value, answered, items, attempts, errors):
    t = tally(("m",), ["a", "b"], repeats, records)
    assert (t.values["m"], t.answered["m"], t.items, t.attempts, t.errors) == (
        value,
        answered,
        items,
        attempts,
        errors,
    )


def test_errors_cannot_raise_the_score():
    """A model whose hardest prompts the server refuses: 4 right, 1 wrong, 5 refused (HTTP 400)."""
    records = {str(i): rec(1.0) for i in range(4)} | {"4": rec(0.0)}
    records |= {str(i): rec(error="HTTP 400: context length exceeded") for i in range(5, 10)}
    t = tally(("m",), [str(i) for i in range(10)], 1, records)
    assert t.values["m"] == 0.4 and t.answered["m"] == 0.8 and t.answered_items == 5 and t.items == 10
    xs = [1.0] * 4 + [0.0] * 6
    assert math.isclose(t.stderr["m"], math.sqrt(sum((x - 0.4) ** 2 for x in xs) / 9 / 10))


def test_stderr_is_over_item_means():
    records = {sample_key(i, r, 2): rec(float(r == 0 or i == "a")) for i in "ab" for r in range(2)}
    t = tally(("m",), ["a", "b"], 2, records)
    assert t.values["m"] == 0.75 and math.isclose(t.stderr["m"], 0.25)  # item means 1.0 and 0.5


def test_sample_key():
    assert sample_key("x", 0, 1) == "x" and sample_key("x", 3, 4) == "x#3"


def task(**kw):
    base = dict(
        name="t",
        protocol="p 1.0",
        metrics=("acc", "acc_norm"),
        endpoint_types=("completions",),
        load=list,
        solve=None,
        chance=0.25,
    )
    return Task(**{**base, **kw})


def test_results_layout_keeps_the_shape_and_adds_protocol_samples_chance_errors():
    t = tally(("acc", "acc_norm"), ["a"], 1, {"a": {"error": None, "scores": {"acc": 1.0, "acc_norm": 0.0}}})
    out = results(task(size=100, subsample="first 10 of 100"), t, 5, 10, 1, 0.05, {"model_id": "m"})
    entry = out["results"]["tasks"]["t"]
    assert entry["metrics"]["acc_norm"]["scores"]["acc_norm"] == {
        "value": 0.0,
        "stats": {
            "stderr": 0.0,
            "std": 0.0,
            "count": 1,
            "errors": 0,
            "answered": 0.0,
            "answered_stderr": 0.0,
            "answered_count": 1,
        },
    }
    assert (entry["protocol"], entry["chance"], entry["headline"]) == ("p 1.0", 0.25, "acc")
    assert entry["samples"] == {
        "items": 5,
        "size": 100,
        "repeats": 1,
        "subsample": "first 5 of 10 items (limit_samples); first 10 of 100",
    }
    assert entry["errors"]["fraction"] == 0.0 and out["model_id"] == "m"


def test_full_split_has_no_subsample_note():
    t = tally(("acc", "acc_norm"), [], 1, {})
    assert (
        results(task(size=10), t, 10, 10, 1, 0.05, {})["results"]["tasks"]["t"]["samples"]["subsample"]
        is None
    )


def test_std_is_simple_evals_np_std_over_every_sample():
    """simple-evals ee3b031 common.aggregate_results: `score:std` = np.std(values) over all samples (every
    repeat of every item, population form); ours (stderr over item means) stays beside it."""
    import numpy as np

    scores = {"a": [1.0, 1.0, 0.0], "b": [0.0, None, 0.0], "c": [1.0, 1.0, 1.0]}  # None: errored
    records = {
        sample_key(i, r, 3): rec(v) if v is not None else rec(error="HTTP 400")
        for i, vs in scores.items()
        for r, v in enumerate(vs)
    }
    t = tally(("m",), list(scores), 3, records)
    flat = [0.0 if v is None else v for vs in scores.values() for v in vs]
    assert math.isclose(t.std["m"], float(np.std(flat))) and math.isclose(t.values["m"], float(np.mean(flat)))
