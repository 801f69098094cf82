"""The checkpoint's line head: what a restart reads of each line (key, error, scores, written first), the
same lines counted as by the whole-record reader, equal outcomes shared, a torn tail cut off."""

import json

import pytest

from launcher.harness.checkpoint import SampleLog, encode, load_outcomes, load_samples, read_head

LINES = [
    {"key": "a", "error": "HTTP 500"},
    {"key": "a", "error": None, "scores": {"m": 1.0}},  # the retry supersedes the error
    {"key": "a", "error": None, "scores": {"m": 0.0}},  # a second success is ignored
    {"key": "forged", "error": None, "scores": {"m": 1.0}},  # not a sample of this run
    {"id": "no key"},
    {"key": "b", "error": "HTTP 500"},
    {"key": "c, d", "error": None, "scores": {"m": 1.0}, "output": {"response": '", "error": null'}},
    {"key": "e", "error": None, "scores": {"m": 1.0}},
]


@pytest.mark.parametrize(
    ("line", "head"),
    [
        (
            encode({"id": "x", "key": "k", "scores": {"m": 1.0}}),
            ("k", ', "error": null, "scores": {"m": 1.0}'),
        ),
        (
            encode({"key": 'k "1"', "error": 'HTTP 500: "x", "scores": {}'}),
            ('k "1"', ', "error": "HTTP 500: \\"x\\", \\"scores\\": {}", "scores": null'),
        ),
        (encode({"key": "ключ", "error": None, "scores": {}}), ("ключ", ', "error": null, "scores": {}')),
        ('{"id": "x", "key": "k", "error": null, "scores": null}', None),  # another order: parsed whole
        ('{"key": "k", "scores": null, "error": null}', None),
        ('{"key": "k", "error": null, "scores": {"m": {"nested": 1}}}', None),
        ('{"key": "k", "error": nul', None),
        ('{"key": ' + "[" * 50_000, None),
        ('{"key": "' + " " * 100_000, None),  # no closing quote: linear, not a backtracking hang
        ("[1, 2]", None),
    ],
)
def test_read_head(line, head):
    got = read_head(line.encode())
    assert (got and (got[0], got[1].decode())) == head


def test_encode_writes_the_head_first_and_keeps_every_field():
    record = {"key": "k", "id": "x", "input": "q", "error": None, "scores": {"m": 1.0}, "extracted": "1"}
    line = encode(record)
    assert json.loads(line) == record and line.startswith('{"key": "k", "error": null, "scores": {"m": 1.0}')


@pytest.mark.parametrize("writer", ["encode", "json.dumps"])
def test_outcomes_count_the_same_lines_as_whole_records(tmp_path, writer):
    path = tmp_path / "samples.jsonl"
    # encode: the head reader; json.dumps (another field order): the whole-line fallback
    lines = [encode(x) if "key" in x and writer == "encode" else json.dumps(x) for x in LINES]
    path.write_text("".join(x + "\n" for x in lines) + '{"key": "e", "error": "torn')
    keys = {"a", "b", "c, d", "e"}
    outcomes = load_outcomes(path, keys)
    assert path.read_text().endswith("\n")  # the torn line was cut off
    records = load_samples(path, keys)
    assert {k: (r.get("error"), r.get("scores")) for k, r in records.items()} == {
        k: (o["error"], o["scores"]) for k, o in outcomes.items()
    }
    assert outcomes["a"]["scores"] == {"m": 1.0} and outcomes["b"]["error"] == "HTTP 500"
    assert {k for k in keys if outcomes.succeeded(k)} == {"a", "c, d", "e"}
    if writer == "encode":
        assert outcomes["c, d"] is outcomes["e"]  # equal outcomes share one dict: memory flat per sample


def test_a_file_of_one_torn_line_is_emptied(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_text('{"key": "a", "err')
    assert load_outcomes(path, {"a"}) == {} and path.read_text() == ""
    assert load_outcomes(tmp_path / "absent.jsonl", {"a"}) == {}


def test_what_the_log_appends_is_read_back(tmp_path):
    path = tmp_path / "samples.jsonl"
    log = SampleLog(path)
    for i in range(3):
        log.append({"key": f"k{i}", "id": f"k{i}", "error": None if i else "HTTP 500", "scores": {"m": 1.0}})
    log.close()
    outcomes = load_outcomes(path, {"k0", "k1", "k2"})
    assert {k: outcomes.succeeded(k) for k in outcomes} == {"k0": False, "k1": True, "k2": True}
