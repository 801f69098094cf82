"""Export, results and report on real invocation folders (written by tests/export_fixtures.py)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from export_fixtures import invocation

from launcher.errors import LauncherError
from launcher.export import compare, local, run, source, table
from launcher.export.source import RunScore, TaskRun
from launcher.report import html

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "launcher", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def task_run(model: str, task: str, value: float, stderr: float | None, inv: str = "i1") -> TaskRun:
    return TaskRun(
        inv, f"{inv}.0", task, Path("/x"), Path("/"), model, scores=(RunScore("acc", "acc", value, stderr),)
    )


@pytest.mark.parametrize(
    ("a", "se_a", "b", "se_b", "flagged"),
    [
        (0.50, 0.03, 0.40, 0.04, True),  # 0.10 > 0.05
        (0.50, 0.03, 0.46, 0.04, False),  # 0.04 < 0.05
        (0.50, None, 0.50, None, False),
        (0.50, None, 0.49, None, True),  # no stderr known: any difference shows
    ],
)
def test_exceeds_combined_stderr(a, se_a, b, se_b, flagged):
    assert compare.exceeds(a, se_a, b, se_b) is flagged


def test_grid_marks_best_and_flags_differences():
    runs = [
        task_run("m1", "gsm8k", 0.80, 0.02, "a"),
        task_run("m2", "gsm8k", 0.70, 0.02, "b"),
        task_run("m3", "gsm8k", 0.79, 0.02, "c"),
    ]
    g = compare.grid(runs)
    assert g.rows == ["m1", "m2", "m3"] and g.columns == ["gsm8k"]
    cells = {row: g.cells[(row, "gsm8k")] for row in g.rows}
    assert (cells["m1"].best, cells["m2"].differs, cells["m3"].differs) == (True, True, False)
    assert cells["m2"].text() == "0.7000 ± 0.0200!"
    text = compare.render(g, "markdown")
    assert "| m1 | 0.8000 ± 0.0200* |" in text


def test_grid_labels_repeated_model_with_invocation():
    g = compare.grid([task_run("m", "t", 0.5, 0.1, "a"), task_run("m", "t", 0.6, 0.1, "b")])
    assert g.rows == ["m (a)", "m (b)"]
    assert not g.cells[("m (a)", "t")].differs  # 0.1 apart, combined stderr 0.141


def test_merge_replaces_rows_by_key_and_appends_new():
    old = [
        {"job_id": "a.0", "metric": "acc", "value": "0.1"},
        {"job_id": "b.0", "metric": "acc", "value": "0.2"},
    ]
    new = [{"job_id": "b.0", "metric": "acc", "value": 0.3}, {"job_id": "c.0", "metric": "acc", "value": 0.4}]
    assert [r["value"] for r in table.merge(old, new)] == ["0.1", 0.3, 0.4]


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_local_table_appends_across_invocations_and_is_idempotent(tmp_path, fmt):
    a = invocation(tmp_path / "runs", "model-a", {"gsm8k": [True, False], "mmlu": [True]})
    b = invocation(tmp_path / "runs", "model-b", {"gsm8k": [False, False]})
    out = tmp_path / f"table.{fmt}"
    local.export(source.load([a.invocation_id]), out, fmt)
    local.export(source.load([a.invocation_id, b.invocation_id]), out, fmt)
    local.export(source.load([b.invocation_id]), out, fmt)
    text = out.read_text()
    rows = json.loads(text) if fmt == "json" else list(csv.DictReader(text.splitlines()))
    assert [(r["model"], r["task"], float(r["value"])) for r in rows] == [
        ("model-a", "gsm8k", 0.5),
        ("model-a", "mmlu", 1.0),
        ("model-b", "gsm8k", 0.0),
    ]
    assert {str(r["samples"]) for r in rows} == {"2", "1"}


def test_local_csv_is_formula_free_and_identity_comes_from_the_run_record(tmp_path):
    """N7: a task's results.json cannot relabel its run (model_id, protocol) nor put a formula into
    the CSV a spreadsheet opens; numbers, negative ones included, stay numbers."""
    a = invocation(tmp_path / "runs", "model-a", {"gsm8k": [True, False]})
    results = Path(a.folder, "gsm8k/results/results.json")
    doc = json.loads(results.read_text().replace('"accuracy"', '"=HYPERLINK(\\"http://x\\")"'))
    doc["model_id"], doc["config"]["model_id"] = "@relabelled", "@relabelled"
    for entry in doc["results"]["tasks"].values():
        entry["protocol"] = "-forged protocol"
    results.write_text(json.dumps(doc))
    (run_,) = source.load([a.invocation_id])
    assert run_.model == "model-a"  # the record's, not the container's
    # a built-in's protocol is our catalogue's; only a custom task's comes from its results (neutralised)
    assert source.builtin_protocol("launcher.gsm8k_cot_zeroshot").startswith("lm-eval 0.4")
    assert source.builtin_protocol("gsm8k") is None
    out = tmp_path / "t.csv"
    local.export([run_], out, "csv")
    rows = list(csv.DictReader(out.read_text().splitlines()))
    cells = [v for r in rows for v in r.values()]
    assert not [c for c in cells if c.startswith(("=", "+", "@")) or (c.startswith("-") and not is_number(c))]
    assert {r["metric"] for r in rows} == {'\'=HYPERLINK("http://x")'}
    assert {r["protocol"] for r in rows} == {"'-forged protocol"} and {r["model"] for r in rows} == {
        "model-a"
    }
    assert local.neutral("-0.25") == "-0.25" and local.neutral(-1) == -1 and local.neutral("+cmd") == "'+cmd"


def is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def test_local_refuses_a_file_that_is_not_a_table(tmp_path):
    a = invocation(tmp_path / "runs", "m", {"t": [True]})
    (tmp_path / "x.json").write_text('{"not": "a list"}')
    with pytest.raises(LauncherError, match="is not a JSON results table"):
        local.export(source.load([a.invocation_id]), tmp_path / "x.json", "json")


def test_source_reads_folder_path_skips_torn_sample_line_and_unfinished_jobs(tmp_path):
    a = invocation(tmp_path / "runs", "m", {"t": [True, False]}, index=False, finished=False)
    samples = Path(a.folder, "t/results/samples.jsonl")
    samples.write_text(samples.read_text() + '{"id": "torn", "sco')
    before = samples.read_bytes()
    (r,) = source.load([a.folder])
    assert not r.has_results and r.job_id == f"{a.invocation_id}.0"
    assert [s["id"] for s in source.read_samples(r)] == ["s0", "s1"]
    assert samples.read_bytes() == before  # read-only: never repaired


def test_a_folder_given_by_path_is_read_where_it_is(tmp_path):
    """The cluster's copy of an invocation (Slurm over SSH) names this machine's folder in its record."""
    import shutil

    a = invocation(tmp_path / "runs", "m", {"t": [True, False]}, index=False)
    copy = tmp_path / "cluster" / Path(a.folder).name
    shutil.copytree(a.folder, copy)
    shutil.rmtree(a.folder)
    (r,) = source.load([str(copy)])
    assert r.has_results and r.folder == copy / "t"


@pytest.mark.parametrize("planted", ["link", "fifo", "dev_zero"])
def test_report_reads_no_planted_samples_file(tmp_path, planted):
    """N5: samples.jsonl is task-written: a link (to another run's samples, /dev/zero) or a FIFO is not
    read (no hang, no unbounded read); the report just has no samples for that task. Read in a child
    process so that a hang is a failure, not a stuck suite."""
    a = invocation(tmp_path / "runs", "m", {"t": [True, False]}, index=False)
    samples = Path(a.folder, "t/results/samples.jsonl")
    elsewhere = tmp_path / "elsewhere.jsonl"
    elsewhere.write_bytes(samples.read_bytes())
    samples.unlink()
    if planted == "fifo":
        os.mkfifo(samples)
    else:
        samples.symlink_to(elsewhere if planted == "link" else "/dev/zero")
    code = (
        "import sys; from launcher.export import source\n"
        "(r,) = source.load([sys.argv[1]]); print(len(source.read_samples(r)))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, a.folder], capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )  # fmt: skip
    assert proc.returncode == 0 and proc.stdout == "0\n", proc.stderr[-2000:]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"api_key": "API_KEY"}, {"api_key": "API_KEY"}),  # a variable NAME is kept
        ({"hf_token": "hf_abc123"}, {"hf_token": "***"}),
        ({"x": {"password": "p"}, "model": "m"}, {"x": {"password": "***"}, "model": "m"}),
        ({"tokens": 5}, {"tokens": 5}),
    ],
)
def test_redact(value, expected):
    assert source.redact(value) == expected


@pytest.mark.parametrize(
    ("request_", "text"),
    [
        (
            {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "2+2?"}]},
            "system: be brief\n\nuser: 2+2?",
        ),
        ({"prompt": "Q: 2+2\nA:"}, "Q: 2+2\nA:"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}, "user: hi"),
        (None, ""),
    ],
)
def test_prompt_text(request_, text):
    assert html.prompt_text(request_) == text


def test_sample_row_correctness_and_script_json_cannot_close_the_script():
    assert html.sample_row({"id": 1, "score": 1.0, "error": None})[6] is True
    assert html.sample_row({"id": 1, "score": 0.5, "error": None})[6] is False
    assert html.sample_row({"id": 1, "score": None, "error": "HTTP 500"})[6] is False
    assert "</script>" not in html.script_json({"x": "</script><script>alert(1)</script>"})


def test_report_page_is_self_contained(tmp_path):
    a = invocation(tmp_path / "runs", "m", {"t": [True, False, True]}, chance=0.25)
    page, n = html.build(source.load([a.invocation_id]))
    assert n == 3
    assert "http://" not in page.replace("http://127.0.0.1:1", "").replace("http://www.w3.org/2000/svg", "")
    assert "<script src" not in page and '<link rel="stylesheet"' not in page
    assert "hf_secretvalue123" not in page


def test_cli_results_json_export_idempotent_and_bad_input(tmp_path):
    a = invocation(tmp_path / "runs", "model-a", {"gsm8k": [True, True, False]})
    b = invocation(tmp_path / "runs", "model-b", {"gsm8k": [False, False, False]})
    proc = cli("results", a.invocation_id, b.invocation_id, "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    cells = {c["run"]: c for c in json.loads(proc.stdout)}
    assert cells["model-a"]["best"] and cells["model-a"]["value"] == pytest.approx(2 / 3)
    assert cells["model-b"]["differs"]
    for _ in range(2):
        assert cli("export", a.invocation_id, b.invocation_id, cwd=tmp_path).returncode == 0
    assert len((tmp_path / "launcher-results.csv").read_text().splitlines()) == 3  # header + 2 rows
    for args, needle in [
        (
            ("export", a.invocation_id, "--dest", "sheets"),
            "--dest 'sheets' is not allowed; allowed: local, mlflow",
        ),
        (("export", a.invocation_id, "--format", "xml"), "--format 'xml' is not allowed; allowed: csv, json"),
        (
            ("export", a.invocation_id, "--dest", "mlflow", "--format", "csv"),
            "--format applies to --dest local",
        ),
        (("results", a.invocation_id, "--format", "html"), "--format 'html' is not allowed"),
        (("results", "ffffffff"), "no invocation, job or sweep matches 'ffffffff'"),
    ]:
        proc = cli(*args, cwd=tmp_path)
        assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_auto_export_writes_local_table_and_reports_problems_without_raising(tmp_path):
    a = invocation(tmp_path / "runs", "m", {"t": [True]})
    out = tmp_path / "auto.json"
    problems = run.auto_export(
        a.folder, ["local", "nowhere"], {"local": {"path": str(out), "format": "json"}}
    )
    assert json.loads(out.read_text())[0]["job_id"] == f"{a.invocation_id}.0"
    assert len(problems) == 1 and "nowhere" in problems[0]


def test_missing_extra_names_the_pip_extra(tmp_path, monkeypatch):
    a = invocation(tmp_path / "runs", "m", {"t": [True]})
    monkeypatch.setitem(sys.modules, "mlflow", None)  # the package absent, as without the extra
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    with pytest.raises(LauncherError, match=r"pip install 'launcher\[mlflow\]'"):
        run.export_runs(source.load([a.invocation_id]), "mlflow", {})


def test_sweep_id_and_job_id_select_what_is_exported(tmp_path):
    a = invocation(tmp_path / "runs", "model-a", {"gsm8k": [True], "mmlu": [False]}, sweep="5eed0001")
    b = invocation(tmp_path / "runs", "model-b", {"gsm8k": [False], "mmlu": [True]}, sweep="5eed0001")
    assert {r.job_id for r in source.load(["5eed0001"])} == {j["job_id"] for j in a.jobs + b.jobs}
    assert [r.job_id for r in source.load([f"{b.invocation_id}.1"])] == [f"{b.invocation_id}.1"]
    proc = cli("results", "5eed", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].split() == ["run", "gsm8k", "mmlu"]
    proc = cli("report", "5eed", "-o", str(tmp_path / "r.html"), cwd=tmp_path)
    assert proc.returncode == 0 and "report of 4 jobs (4 samples)" in proc.stdout, proc.stderr


@pytest.mark.parametrize(
    ("stats", "expected"),
    [
        (
            {
                "requests": 40,
                "cache_hits": 10,
                "upstream_requests": 30,
                "tokens_in": 12345,
                "tokens_out": 678,
            },
            {
                "proxy tokens": "12,345 in, 678 out (all tasks of the invocation)",
                "cache hits": "10 of 40 requests (25%)",
            },
        ),
        ({}, {"proxy tokens": "0 in, 0 out (all tasks of the invocation)", "cache hits": "0 of 0 requests"}),
        (
            {"requests": "x", "cache_hits": None},
            {"cache hits": "0 of 0 requests"},
        ),  # a foreign file: no crash
    ],
)
def test_proxy_facts(stats, expected):
    facts = dict(html.proxy_facts(stats))
    assert expected.items() <= facts.items() and facts["proxy"].startswith(f"{stats.get('requests', 0)} req")


def test_report_shows_the_proxy_counters_where_the_proxy_writes_them(tmp_path):
    from launcher.proxy import stats as proxy_stats
    from launcher.proxy.wiring import STATE_DIR

    a = invocation(tmp_path / "runs", "m", {"t": [True, False]})
    page, _ = html.build(source.load([a.invocation_id]))
    assert 'data-fact="cache hits"' not in page  # no proxy: no proxy facts
    counters = proxy_stats.Stats()  # the proxy's own writer and format
    counters.requests, counters.cache_hits, counters.tokens_in, counters.tokens_out = 8, 2, 1500, 90
    (Path(a.folder) / STATE_DIR).mkdir()
    proxy_stats.write_atomic(Path(a.folder) / STATE_DIR / proxy_stats.STATS_FILE, counters.snapshot())
    page, _ = html.build(source.load([a.invocation_id]))
    assert '<tr data-fact="cache hits"><th>cache hits</th><td>2 of 8 requests (25%)</td></tr>' in page
    assert "1,500 in, 90 out (all tasks of the invocation)" in page

    # On Slurm each array element's proxy writes into its task folder: those counters win, named as such.
    [run] = source.load([a.invocation_id])
    counters.requests = 3
    (run.folder / STATE_DIR).mkdir()
    proxy_stats.write_atomic(run.folder / STATE_DIR / proxy_stats.STATS_FILE, counters.snapshot())
    assert source.read_proxy_stats(run)[1] == "this task"
    page, _ = html.build(source.load([a.invocation_id]))
    assert "2 of 3 requests" in page and "1,500 in, 90 out (this task)" in page


def test_report_tells_the_runs_of_a_sweep_apart_by_their_swept_keys(tmp_path):
    model, temp = "target.api_endpoint.model_id", "evaluation.params.temperature"
    for m, t in [("alpha", "0.0"), ("alpha", "0.5"), ("beta", "0.0")]:
        invocation(
            tmp_path / "runs", m, {"t": [True]}, sweep="5eed0003", overrides=[f"{model}={m}", f"{temp}={t}"]
        )
    runs = source.load(["5eed0003"])
    assert sorted(html.run_labels(runs).values()) == [
        "alpha (temperature=0.0)",
        "alpha (temperature=0.5)",
        "beta (temperature=0.0)",
    ]
    page, _ = html.build(runs)
    assert "<td>alpha (temperature=0.5)</td><td>t</td>" in page
