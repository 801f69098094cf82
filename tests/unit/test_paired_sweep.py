"""`launcher results SWEEP --baseline CELL` on a recorded 1 x 3 sweep (temperature)."""

import json

from export_fixtures import invocation


def sweep(tmp_path):
    cells = {}
    for temp, wrong_every in (("0.0", 5), ("0.5", 4), ("1.0", 2)):
        outcomes = [i % wrong_every != 0 for i in range(200)]
        rec = invocation(
            tmp_path, "m", {"gsm8k": outcomes}, sweep="sw1", overrides=[f"evaluation.temperature={temp}"]
        )
        cells[temp] = rec.invocation_id
    return cells


def test_paired_deltas_against_the_baseline_cell(tmp_path, cli):
    cells = sweep(tmp_path)
    out = cli("results", "sw1", "--baseline", "temperature=0.0", "--format", "json", check_rc=0).stdout
    data = json.loads(out)["cells"]
    assert [(c["cell"], c["invocation"]) for c in data] == [
        ("temperature=0.5", cells["0.5"]),
        ("temperature=1.0", cells["1.0"]),
    ]
    # 0.0 wrong every 5th, 0.5 every 4th: items 4, 8, 12 ... (not multiples of 20) regress
    assert (data[0]["improved"], data[0]["regressed"]) == (
        len([i for i in range(200) if i % 5 == 0 and i % 4]),
        40,
    )
    assert data[1]["delta"] < data[0]["delta"] < 0 and data[1]["ci"][1] < 0
    text = cli("results", "sw1", "--baseline", cells["0.0"][:6], check_rc=0).stdout
    assert "temperature=1.0  gsm8k/accuracy  200" in text
    assert "paired deltas against the baseline cell" in text


def test_unknown_or_ambiguous_baseline_is_one_line(tmp_path, cli):
    sweep(tmp_path)
    proc = cli("results", "sw1", "--baseline", "temperature=2.0", check_rc=2)
    assert "matches no cell; the cells:" in proc.stderr and proc.stderr.count("\n") == 1
    proc = cli("results", "sw1", "--baseline", "temperature=0.0", "--format", "csv", check_rc=2)
    assert "allowed: table, markdown, json" in proc.stderr


def test_compare_and_gate_take_sweep_cells_by_value(tmp_path, cli):
    sweep(tmp_path)
    data = json.loads(
        cli("compare", "sw1:temperature=0.0", "sw1:temperature=1.0", "--format", "json", check_rc=0).stdout
    )
    assert data["tasks"][0]["regressed"] == 80 and data["base"] == ["sw1:temperature=0.0"]
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\n")
    cli("gate", "sw1:temperature=0.0", "sw1:temperature=1.0", "--policy", str(policy), check_rc=1)
    proc = cli("compare", "sw1:temperature=3", "sw1:temperature=1.0", check_rc=2)
    assert "matches no cell" in proc.stderr
