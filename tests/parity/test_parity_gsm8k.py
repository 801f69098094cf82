"""GSM8K: our scorer vs lm-evaluation-harness 0.4.13's own RegexFilter / TakeFirstFilter, its yaml and its
exact_match (lm_eval.api.metrics.exact_match_hf_evaluate with the yaml's metric_list arguments).

lm_eval is installed with --no-deps (tests/parity/requirements.txt); its filters import only the standard
library; lm_eval/api/metrics.py imports numpy (installed) and sacrebleu (stubbed: only bleu/chrf/ter use it).
"""

from importlib.resources import files

import pytest
import yaml

from launcher.harness.api import Sample
from launcher.harness.benchmarks import gsm8k
from tests.parity.reference import lm_eval_metrics, require

extraction = require("lm_eval.filters.extraction")
selection = require("lm_eval.filters.selection")
metrics = lm_eval_metrics()

RESPONSES = [
    "Natalia sold 48/2 = 24 clips in May. 48 + 24 = 72. The answer is 72.",
    "The answer is 72",
    "The answer is 72.\n\nQ: Next question? A: The answer is 5.",
    "So 70 - 28 = 42. The answer is 42.0.",
    "The answer is $42.",
    "The answer is 1,234.",
    "The answer is 1 234.",
    "4.2 × 10 = 42",
    "4.2 × 10 = 42.",
    "1 234",
    "<think>the answer is 40?</think> \\boxed{42}",
    "<think>…the answer is 40…</think> \\boxed{42}",
    "Answer: 42",
    "**Answer:** 42",
    "Answer: $42.00",
    "#### 42",
    "We compute 6 * 7 = 42\n#### 42",
    "The answer is -3.",
    "It is -3",
    "The answer is 3. The answer is 5.",
    "no digits here",
    "",
    "   \n\n  ",
    "The answer is .",
    "It costs $1,000,000 in total.",
    "The answer is 18. She makes $18 every day.",
    "Janet has 16 - 3 - 4 = 9 eggs. 9 * 2 = 18. The answer is 18.",
    "Total: 5 + 6 = 11...",
    "THE ANSWER IS 42.",
    "the answer is 42.",
    "x = 7\n",
    "7.",
    "Step 1: 3 apples. Step 2: 4 apples. The answer is 7 apples.",
    "The answer is 3,.",
]
TARGETS = ["72", "42", "18", "-3", "7", "1234", "1,234", "3"]


def reference_scores(response: str, target: str) -> dict[str, float]:
    config = yaml.safe_load((files("lm_eval") / "tasks/gsm8k/gsm8k-cot.yaml").read_text())
    (metric,) = config["metric_list"]
    assert metric["metric"] == "exact_match" and metric["aggregation"] == "mean"
    em_args = {k: v for k, v in metric.items() if k not in ("metric", "aggregation", "higher_is_better")}
    out = {}
    for entry in config["filter_list"]:
        (regex, take_first) = entry["filter"]
        assert take_first["function"] == "take_first"
        kwargs = {k: v for k, v in regex.items() if k != "function"}
        filtered = extraction.RegexFilter(**kwargs).apply([[response]], [{}])
        answer = list(selection.TakeFirstFilter().apply(filtered, [{}]))[0]
        scored = metrics.exact_match_hf_evaluate(predictions=[answer], references=[target], **em_args)
        out[f"exact_match,{entry['name']}"] = float(scored["exact_match"])
    return out


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("response", RESPONSES)
def test_scores_match_lm_eval(response, target):
    ours, _ = gsm8k.score(Sample("x", "q", target), {"response": response})
    assert ours == reference_scores(response, target)


def test_prompts_stops_and_filters_are_the_yamls():
    cot = yaml.safe_load((files("lm_eval") / "tasks/gsm8k/gsm8k-cot.yaml").read_text())
    shots = [(s["question"], s["target"]) for s in cot["fewshot_config"]["samples"]]
    assert tuple(shots) == gsm8k.EXEMPLARS
    assert cot["num_fewshot"] == len(shots) and cot["fewshot_config"]["sampler"] == "first_n"
    assert tuple(cot["generation_kwargs"]["until"]) == gsm8k.STOP
    patterns = {f["name"]: f["filter"][0]["regex_pattern"] for f in cot["filter_list"]}
    assert patterns == {"strict-match": gsm8k.STRICT.pattern, "flexible-extract": gsm8k.FLEXIBLE.pattern}
    assert cot["doc_to_text"] == "Q: {{question}}\nA:"
    zero = yaml.safe_load((files("lm_eval") / "tasks/gsm8k/gsm8k-cot-zeroshot.yaml").read_text())
    assert gsm8k.zeroshot_prompt("QQ") == zero["doc_to_text"].replace("{{question}}", "QQ")
    assert tuple(zero["generation_kwargs"]["until"]) == gsm8k.STOP
    prompt = gsm8k.fewshot_prompt("QQ")
    assert prompt.startswith("Q: There are 15 trees") and prompt.endswith("The answer is 8.\n\nQ: QQ\nA:")
