"""Small harness parts: continuation log-probs by text offset, redaction, checkpoint integrity."""

import json

import pytest

from launcher.harness.checkpoint import load_samples
from launcher.harness.model import NoPromptLogprobs, continuation_entries
from launcher.harness.redact import Redactor


def logprobs(tokens, values, tops=None):
    offsets, pos = [], 0
    for t in tokens:
        offsets.append(pos)
        pos += len(t)
    return {
        "tokens": tokens,
        "text_offset": offsets,
        "token_logprobs": values,
        "top_logprobs": tops or [None if v is None else {t: v} for t, v in zip(tokens, values, strict=True)],
    }


def test_continuation_tokens_by_offset_generated_token_dropped():
    lp = logprobs(["The", " sky", " is", " blue", ".", " x"], [None, -1.0, -0.5, -0.2, -0.1, -3.0])
    assert continuation_entries(lp, len("The sky is"), len("The sky is blue.")) == [
        (-0.2, -0.2),
        (-0.1, -0.1),
    ]


def test_a_token_spanning_the_boundary_belongs_to_the_continuation():
    lp = logprobs(["Answer", ":B", " x"], [None, -0.3, -1.0])
    assert continuation_entries(lp, len("Answer:"), len("Answer:B")) == [(-0.3, -0.3)]


def test_greedy_compares_with_the_top_entry():
    lp = logprobs(["a", " b"], [None, -2.0], tops=[None, {" b": -2.0, " c": -0.1}])
    assert continuation_entries(lp, 1, 3) == [(-2.0, -0.1)]


@pytest.mark.parametrize(
    "lp",
    [
        {},  # no logprobs at all
        {"tokens": [" x"], "text_offset": [17], "token_logprobs": [-0.5]},  # generated token only (llama.cpp)
        logprobs(["a", " b"], [None, None]),  # no value for the continuation
        logprobs(["a", " b"], [None, float("nan")]),
    ],
)
def test_missing_prompt_logprobs_are_reported(lp):
    with pytest.raises(NoPromptLogprobs):
        continuation_entries(lp, 1, 3)


def test_redactor_replaces_raw_and_json_escaped_values():
    secret = 'sk-"quoted"\\back'
    redact = Redactor(["API_KEY", "OTHER", "SHORT"], {"API_KEY": secret, "SHORT": "abc"})
    assert "sk-" not in redact(f"HTTP 400: {secret}")
    assert "sk-" not in redact(json.dumps({"error": f"bad key {secret}"}))
    assert redact("abc stays") == "abc stays"  # values under 4 characters are not redacted


def test_checkpoint_ignores_foreign_and_duplicate_lines_and_repairs_a_torn_tail(tmp_path):
    path = tmp_path / "samples.jsonl"
    lines = [
        {"key": "a", "error": "HTTP 500"},
        {"key": "a", "error": None, "scores": {"m": 1.0}},  # the retry supersedes the error
        {"key": "a", "error": None, "scores": {"m": 0.0}},  # a second success is ignored
        {"key": "forged", "error": None, "scores": {"m": 1.0}},  # not a sample of this run
        {"id": "no key"},
    ]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines) + "[" * 50_000 + "\n" + '{"key": "b", "err')
    records = load_samples(path, {"a", "b"})
    assert list(records) == ["a"] and records["a"]["scores"] == {"m": 1.0}
    assert path.read_text().endswith("\n")  # the torn line was cut off
