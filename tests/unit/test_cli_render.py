"""What the CLI prints for big invocations and odd results: pure rendering, no subprocess."""

import json
from pathlib import Path

from launcher.api import InvocationStatus
from launcher.cli.render import render_results, summary
from launcher.model import InvocationRecord, JobStatus, State


def job(n, state, done=None, total=None, started=None, folder="/nonexistent"):
    return JobStatus(f"inv.{n}", f"t{n}", state, folder, done=done, total=total, started=started)


def test_summary_counts_states_samples_and_eta():
    jobs = [job(n, State.SUCCEEDED, 10, 10, started=100) for n in range(3)]
    jobs += [job(3, State.RUNNING, 5, 10, started=100)] + [job(n, State.PENDING) for n in range(4, 1000)]
    line = summary(jobs, now=110)
    # 35 samples in 10 s: 3.5/s; 35 of 35 + 996 unknown totals -> (40 - 35) / 3.5 = 1 s
    assert line == "3 succeeded, 1 running, 996 pending; samples 35/40; ETA 0:00:01"
    assert summary([job(0, State.PENDING)]) == "1 pending"


def test_results_of_any_shape_never_crash(tmp_path):
    """L7: a custom task's results.json of another shape: the final table still prints."""
    (tmp_path / "results").mkdir()
    for text in ('{"results": {"tasks": {"t0": {"metrics": {"m": {"scores": [1]}}}}}}', "[]", "{", '"x"'):
        (tmp_path / "results" / "results.json").write_text(text)
        record = InvocationRecord("inv", str(tmp_path), "local", {}, (), 0.0)
        collected = [InvocationStatus(record, [job(0, State.SUCCEEDED, folder=str(tmp_path))])]
        assert "t0" in render_results(collected)
    good = {"results": {"tasks": {"t0": {"metrics": {"m": {"scores": {"m": {"value": 0.5}}}}}}}}
    (tmp_path / "results" / "results.json").write_text(json.dumps(good))
    assert "0.5000" in render_results(collected)


def test_status_and_dry_run_say_which_benchmark_a_bare_name_is():
    from launcher.cli.render import named, render
    from launcher.model import PlannedJob

    assert (
        named("hellaswag", "lm-evaluation-harness.hellaswag") == "hellaswag (lm-evaluation-harness.hellaswag)"
    )
    assert named("mmlu_instruct.2", "lm-evaluation-harness.mmlu_instruct").endswith("mmlu_instruct)")
    for same in (
        ("launcher.gsm8k", "launcher.gsm8k"),
        ("simple_evals.mmlu.1", "simple_evals.mmlu"),
        ("c", ""),
    ):
        assert named(*same) == same[0]
    planned = PlannedJob("inv.0", "hellaswag", "hellaswag", "img", (), "lm-evaluation-harness.hellaswag")
    assert PlannedJob.from_dict(planned.__dict__) == planned  # invocation.json keeps it
    status = JobStatus("inv.0", "hellaswag", State.PENDING, "/x", benchmark=planned.benchmark)
    record = InvocationRecord("inv", "/x", "local", {}, (planned,), 0.0)
    assert "hellaswag (lm-evaluation-harness.hellaswag)" in render([InvocationStatus(record, [status])])


def test_results_table_shows_errors_and_the_score_over_answered_samples(tmp_path):
    (tmp_path / "results").mkdir()
    stats = {"stderr": 0.1, "count": 10, "errors": 5, "answered": 0.8}
    score = {"m": {"scores": {"m": {"value": 0.4, "stats": stats}}}}
    doc = {"results": {"tasks": {"t0": {"metrics": score}}}}
    (tmp_path / "results" / "results.json").write_text(json.dumps(doc))
    record = InvocationRecord("inv", str(tmp_path), "local", {}, (), 0.0)
    text = render_results([InvocationStatus(record, [job(0, State.SUCCEEDED, folder=str(tmp_path))])])
    header, row = [line.split() for line in text.splitlines()[2:4]]
    assert header[-3:] == ["ERRORS", "ANSWERED", "STATE"]
    assert row[2] == "0.4000" and row[-3:] == ["5", "0.8000", "SUCCEEDED"]


OSC52 = "\x1b]52;c;aGFja2Vk\x07"  # a clipboard write: what a task's output could send to the terminal


def test_text_from_a_task_reaches_the_terminal_escaped(tmp_path, cli):
    """N6: status's REASON (the task's last log line), `logs`, and the results table (metric names from
    a results file) print no control character: ESC and BEL come out as visible \\x1b, \\x07."""
    from export_fixtures import invocation

    from launcher.store import events, layout

    rec = invocation(tmp_path / "runs", "m", {"t": [True, False]}, finished=False)
    task = Path(rec.folder, "t")
    (task / layout.OUTPUT_LOG).write_text(f"working\n{OSC52}boom \u202eevil\n")
    events.append(task / layout.EVENTS, "exited", "1")
    (tmp_path / "results").mkdir()
    metric = {"scores": {"acc\x1b[2Juracy": {"value": 0.5}}}
    (tmp_path / "results/results.json").write_text(
        json.dumps({"results": {"tasks": {"t0": {"metrics": {"m": metric}}}}})
    )
    record = InvocationRecord("inv", str(tmp_path), "local", {}, (), 0.0)
    outputs = {
        "status": cli("status", rec.invocation_id, check_rc=0).stdout,
        "logs": cli("logs", rec.jobs[0].job_id, check_rc=0).stdout,
        "results": render_results(
            [InvocationStatus(record, [job(0, State.SUCCEEDED, folder=str(tmp_path))])]
        ),
    }
    for verb, out in outputs.items():
        assert not any(ch in out for ch in "\x1b\x07\u202e"), (verb, out)
    assert "\\x1b]52;c;aGFja2Vk\\x07boom \\u202eevil" in outputs["status"]
    assert outputs["logs"] == "working\n\\x1b]52;c;aGFja2Vk\\x07boom \\u202eevil\n"
    assert "acc\\x1b[2Juracy" in outputs["results"]


def test_table_cells_are_terminal_safe():
    from launcher.cli.render import table

    assert table(["A"], [[f"x{OSC52}\ty"]]).splitlines()[1] == "x\\x1b]52;c;aGFja2Vk\\x07\\ty"
