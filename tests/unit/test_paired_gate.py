"""The gate: NeMo Evaluator 0.3.0's policy format (our own example files of its documented shapes), the
verdict rules as a table, and `launcher gate`'s exit codes on real invocation folders."""

import json

import pytest
from export_fixtures import invocation

from launcher.paired import gate, policy, stats
from launcher.paired.compare import TaskComparison

MINIMAL = "version: 1\n"
TIERED = """
version: 1
defaults:
  tier: supporting
  max_drop: 0.015
  metric: pass@1
benchmarks:
  gsm8k:
    tier: critical
    max_drop: 0.01
  humaneval:
    tier: supporting
    max_drop: 0.02
  mmlu:
    tier: advisory
"""
RELATIVE = """
version: 1
defaults:
  max_drop: 0.02
  max_relative_drop: 0.05
  relative_guard_below: 0.5
  direction: higher_is_better
benchmarks:
  aime:
    tier: critical
    metric: mean_reward
  latency_task:
    direction: lower_is_better
    max_drop: 0.1
    max_relative_drop: null
  gpqa:
"""


@pytest.mark.parametrize("text", [MINIMAL, TIERED, RELATIVE])
def test_documented_policy_shapes_parse(text):
    import yaml

    p = policy.parse(yaml.safe_load(text))
    assert p.rule("anything").tier == ("supporting")


def test_resolution_inherits_defaults():
    import yaml

    p = policy.parse(yaml.safe_load(TIERED))
    assert p.rule("gsm8k") == policy.Rule("critical", 0.01, None, None, "pass@1", "higher_is_better")
    assert p.rule("other").max_drop == 0.015 and p.required() == ["gsm8k", "humaneval"]
    r = policy.parse(yaml.safe_load(RELATIVE))
    assert r.rule("latency_task").max_relative_drop == 0.05  # null inherits, as in NEL
    assert r.rule("latency_task").direction == "lower_is_better" and r.rule("gpqa") == r.defaults
    assert policy.parse({}).defaults == policy.Rule()  # NEL's defaults: supporting, 0.015, higher is better


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"version": 2}, "version 2 is not supported"),
        ({"version": True}, "version True is not supported"),
        ({"versoin": 1}, "unknown key 'versoin'; allowed: version, defaults, benchmarks"),
        ({"defaults": {"max_dorp": 0.1}}, "unknown key 'defaults.max_dorp'"),
        ({"benchmarks": {"gsm8k": {"teir": "critical"}}}, "unknown key 'benchmarks.gsm8k.teir'"),
        ({"benchmarks": {"gsm8k": {"tier": "blocker"}}}, "tier 'blocker' is not allowed; allowed: critical"),
        ({"defaults": {"max_drop": -0.1}}, "defaults.max_drop must be >= 0"),
        ({"defaults": {"relative_guard_below": 2}}, "must be between 0 and 1"),
        ({"defaults": {"direction": "up"}}, "direction 'up' is not allowed"),
        ({"defaults": {"tier": None}}, "defaults.tier cannot be null"),
        ({"defaults": {"max_drop": "1%"}}, "max_drop must be a number"),
        ([1, 2], "a gate policy is a mapping"),
    ],
)
def test_bad_policies_are_one_line(data, message):
    with pytest.raises(policy.PolicyError, match=message.replace("(", r"\(")) as err:
        policy.parse(data, "p.yaml")
    assert "\n" not in str(err.value) and str(err.value).startswith("p.yaml: ")


def comparison(n, base, cand, lo, hi, mde=0.05):
    s = stats.Paired(n, base, cand, cand - base, 0, 0, n, 0.01, (lo, hi), (lo, hi), "mcnemar", 1.0, mde)
    return TaskComparison("t", "accuracy", "p", "a.0", "b.0", s)


R = policy.Rule
HIGHER, LOWER = "higher_is_better", "lower_is_better"


@pytest.mark.parametrize(
    ("c", "rule", "status"),
    [
        (comparison(400, 0.8, 0.72, -0.107, -0.053), R(), gate.BREACH),  # damage CI [0.053, 0.107] > 0.015
        (comparison(400, 0.8, 0.8, 0.0, 0.0), R(max_drop=0.0), gate.PASS),  # upper end 0 <= 0
        (comparison(400, 0.8, 0.8, -0.01, 0.01), R(), gate.PASS),  # damage upper 0.01 <= 0.015
        (comparison(400, 0.8, 0.79, -0.03, 0.01), R(), gate.INSUFFICIENT),  # straddles 0.015
        (comparison(9, 0.8, 0.1, -0.9, -0.5), R(), gate.INSUFFICIENT),  # fewer than 10 items
        (comparison(400, 0.3, 0.28, -0.025, -0.015), R(max_drop=0.05, max_relative_drop=0.05), gate.BREACH),
        # the guard: relative drop checked only for a baseline below 0.25
        (comparison(400, 0.3, 0.28, -0.025, -0.015), R(0, 0.05, 0.05, 0.25), gate.PASS),
        (comparison(400, 0.2, 0.3, 0.05, 0.15), R(direction=LOWER), gate.BREACH),  # lower is better: up hurts
        (comparison(400, 0.3, 0.2, -0.15, -0.05), R(direction=LOWER), gate.PASS),
    ],
)
def test_task_verdicts(c, rule, status):
    assert gate.judge(c, rule).status == status


def verdict(status, tier):
    return gate.TaskVerdict("t", R(tier=tier), status)


@pytest.mark.parametrize(
    ("statuses", "overall"),
    [
        ([(gate.PASS, "critical"), (gate.PASS, "supporting")], gate.GO),
        ([(gate.PASS, "critical"), (gate.BREACH, "advisory")], gate.GO),  # advisory never decides
        ([(gate.INSUFFICIENT, "supporting"), (gate.PASS, "critical")], gate.INCONCLUSIVE),
        ([(gate.INSUFFICIENT, "critical"), (gate.BREACH, "supporting")], gate.NO_GO),
        ([(gate.MISSING, "critical"), (gate.PASS, "supporting")], gate.NO_GO),
    ],
)
def test_overall_verdict(statuses, overall):
    assert gate.overall([verdict(s, t) for s, t in statuses])[0] == overall


def outcomes(n: int, right_share: float) -> list[bool]:
    return [i < round(n * right_share) for i in range(n)]


def test_cli_exit_codes(tmp_path, cli):
    p = tmp_path / "policy.yaml"
    p.write_text("version: 1\nbenchmarks:\n  gsm8k:\n    tier: critical\n")
    base = invocation(tmp_path, "m", {"gsm8k": outcomes(400, 0.80)}).invocation_id
    worse = invocation(tmp_path, "m", {"gsm8k": outcomes(400, 0.72)}).invocation_id
    rerun = invocation(tmp_path, "m", {"gsm8k": outcomes(400, 0.80)}).invocation_id
    small_a = invocation(tmp_path, "m", {"gsm8k": outcomes(20, 0.80)}).invocation_id
    small_b = invocation(tmp_path, "m", {"gsm8k": outcomes(20, 0.75)}).invocation_id
    other = invocation(tmp_path, "m", {"mmlu": outcomes(400, 0.80)}).invocation_id
    nogo = cli("gate", base, worse, "--policy", str(p), "--verbose", check_rc=1).stdout
    assert nogo.startswith("NO-GO") and "BREACH" in nogo and "lies above max_drop" in nogo
    assert cli("gate", base, rerun, "--policy", str(p), check_rc=0).stdout.startswith("GO")
    out = cli("gate", small_a, small_b, "--policy", str(p), "--format", "json", check_rc=3).stdout
    assert json.loads(out)["verdict"] == "INCONCLUSIVE" and json.loads(out)["exit_code"] == 3
    missing = cli("gate", base, other, "--policy", str(p), "--verbose", check_rc=1).stdout
    assert "MISSING" in missing and "required task gsm8k has no run in CAND" in missing
    p.write_text("version: 2\n")
    bad = cli("gate", base, worse, "--policy", str(p), check_rc=2)
    assert bad.stdout == "" and bad.stderr.count("\n") == 1 and "version 2 is not supported" in bad.stderr


def test_a_task_without_sample_records_is_insufficient_evidence(tmp_path, cli):
    from pathlib import Path

    p = tmp_path / "policy.yaml"
    p.write_text("version: 1\n")
    base = invocation(tmp_path, "m", {"gsm8k": outcomes(400, 0.80)})
    cand = invocation(tmp_path, "m", {"gsm8k": outcomes(400, 0.80)})
    (Path(cand.folder) / "gsm8k" / "results" / "samples.jsonl").unlink()  # as a catalogue task's harness
    out = cli(
        "gate", base.invocation_id, cand.invocation_id, "--policy", str(p), "--verbose", check_rc=3
    ).stdout
    assert "INSUFFICIENT_EVIDENCE" in out and "has no per-sample records (results/samples.jsonl)" in out
    proc = cli("compare", base.invocation_id, cand.invocation_id, check_rc=2)
    assert "CAND job" in proc.stderr and "no per-sample records" in proc.stderr
