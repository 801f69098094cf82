"""The store: stage records (both writers, the parser), run records old and new, the index, results."""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from launcher.errors import LauncherError
from launcher.model import InvocationRecord, PlannedJob
from launcher.store import events, index, layout, results


def test_python_and_shell_writers_write_what_the_parser_reads(tmp_path):
    path = tmp_path / "events.log"
    events.append(path, events.STARTED, "123")
    script = "\n".join(
        [events.shell(events.EXITED, "$rc", path=str(path)), events.shell(events.KILLED, path=str(path))]
    )
    subprocess.run(["bash", "-c", f"rc=3\n{script}"], check=True)
    subprocess.run(events.shell_append_argv(str(path), events.SUBMITTED, "77"), check=True)
    kinds = [(e.kind, e.value) for e in events.read(path)]
    assert kinds == [("started", "123"), ("exited", "3"), ("killed", ""), ("submitted", "77")]
    first = events.read(path)[0]
    assert first.pid == 123 and first.at > 0


def test_a_torn_or_garbled_line_is_skipped():
    parsed = events.parse("started 10 1\ngarbage\nexited notatime 0\nexited 12 0\nexi")
    assert [(e.kind, e.at) for e in parsed] == [("started", 10.0), ("exited", 12.0)]


def test_history_splits_at_the_last_queue():
    h = events.History.of(events.parse("queued 1\nstarted 2 9\nexited 3 1\nqueued 4\nstarted 5 10\n"))
    assert [e.kind for e in h.previous] == ["queued", "started", "exited"]
    assert [(s.at, x) for s, x in h.attempts()] == [(5.0, None)]
    assert events.open_start(list(h.current)).pid == 10
    assert events.succeeded(events.parse("started 1 1\nexited 2 0\n"))


def record(tmp_path, inv="0000abcd"):
    job = PlannedJob(
        f"{inv}.0", "launcher.gsm8k_cot_zeroshot", "launcher.gsm8k_cot_zeroshot", "img", ("true",)
    )
    return InvocationRecord(
        inv, str(tmp_path / inv), "local", {"output_dir": "x"}, (job,), 1.0, host_env=("K",)
    )


def test_record_round_trip(tmp_path):
    rec = record(tmp_path)
    assert InvocationRecord.from_dict(json.loads(layout.record_json(rec))) == rec


def test_records_of_launcher_0_1_still_read():
    old = {
        "invocation_id": "0000abcd",
        "folder": "/x",
        "executor": "slurm",
        "execution": {},
        "jobs": [{"job_id": "0000abcd.0", "task": "t", "folder": "t", "image": "i"}],
        "created": 5,
        "sweep_id": None,
        "extra": {"host_env": ["API"], "model_id": "m", "url": "u"},
    }
    rec = InvocationRecord.from_dict(old)
    assert rec.host_env == ("API",) and rec.model_id == "m" and rec.extra == {}
    assert rec.jobs[0] == PlannedJob("0000abcd.0", "t", "t", "i")


@pytest.mark.parametrize("bad", ["42", '{"id": 5}', "[]", '{"invocation_id": "x"}'])
def test_a_bad_run_record_is_one_clear_error(tmp_path, bad):
    (tmp_path / layout.RECORD).write_text(bad)
    with pytest.raises(LauncherError, match="cannot read the run record"):
        layout.read_record(tmp_path)


def test_index_skips_bad_lines_with_one_warning(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LAUNCHER_STATE_DIR", str(tmp_path / "state"))
    rec = record(tmp_path)
    (tmp_path / "state").mkdir()
    index.index_path().write_text('42\n{"id": 5}\n[]\n{"id": "tor')  # the last line torn
    index.append(rec)
    assert [e.id for e in index.entries()] == ["0000abcd"]
    err = capsys.readouterr().err
    assert err.count("warning") == 1 and str(index.index_path()) in err


def test_index_at_10000_entries(tmp_path, monkeypatch):
    monkeypatch.setenv("LAUNCHER_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "state").mkdir()
    lines = [
        json.dumps(
            {
                "id": f"{n:08x}",
                "sweep": None,
                "folder": f"{tmp_path}/r/{n}",
                "created": n,
                "executor": "local",
            }
        )
        for n in range(10_000)
    ]
    index.index_path().write_text("\n".join(lines) + "\n")
    found = index.entries()
    assert len(found) == 10_000 and found[0].id == "00000000" and found[-1].id == f"{9999:08x}"
    assert [e.id for e in index.recent(3)] == [f"{n:08x}" for n in (9997, 9998, 9999)]
    assert [e.id for e in index.recent(10_000)] == [e.id for e in found]
    assert len(index.recent(12_000)) == 10_000
    (tmp_path / "r" / "1234").mkdir(parents=True)  # a folder for the one record resolve reads
    rec = record(tmp_path, "000004d2")
    (tmp_path / "r" / "1234" / layout.RECORD).write_text(layout.record_json(rec))
    ((got, job),) = index.resolve("000004d2")
    assert got.invocation_id == "000004d2" and job is None
    with pytest.raises(LauncherError, match="ambiguous"):
        index.resolve("000004")


def test_a_fifo_is_never_opened(tmp_path):
    os.mkfifo(tmp_path / "results.json")
    assert layout.read_regular(tmp_path / "results.json") is None  # would block forever if opened
    os.makedirs(tmp_path / "task" / "results")
    os.mkfifo(tmp_path / "task" / layout.TASK_RESULTS_JSON)
    os.mkfifo(tmp_path / "task" / layout.TASK_PROGRESS)
    assert results.scores(tmp_path / "task") == [] and results.progress(tmp_path / "task") == (None, None)


def test_results_reader(tmp_path):
    (tmp_path / "results").mkdir()
    data = {
        "results": {
            "tasks": {
                "t": {
                    "metrics": {
                        "acc": {
                            "scores": {
                                "acc": {"value": 0.5, "stats": {"stderr": 0.1, "count": 8}},
                                "strict": {"value": 0.25},
                            }
                        }
                    }
                }
            }
        }
    }
    (tmp_path / layout.TASK_RESULTS_JSON).write_text(json.dumps(data))
    assert results.headline(tmp_path) == "acc=0.5000 strict=0.2500"
    first = results.scores(tmp_path)[0]
    assert (first.label, first.stderr, first.count) == ("acc", 0.1, 8)
    (tmp_path / layout.TASK_RESULTS_JSON).write_text('{"results": {"tasks": {"t": {"metrics": [1, 2]}}}}')
    assert results.scores(tmp_path) == []  # a custom task's shape: no crash


def test_a_second_start_of_the_same_invocation_is_refused(tmp_path):
    with (
        layout.invocation_lock(tmp_path, "0000abcd"),
        pytest.raises(LauncherError, match="already being started"),
        layout.invocation_lock(tmp_path, "0000abcd"),
    ):
        pass
    with layout.invocation_lock(tmp_path, "0000abcd"):
        pass  # released


def test_task_folder_names_avoid_reserved_names():
    names = layout.task_folder_names(["logs", "a/b", "a b", "sbatch.sh"], reserved=frozenset({"sbatch.sh"}))
    assert names == ["logs-2", "a_b", "a_b-2", "sbatch.sh-2"]


def test_a_reused_pid_is_not_our_script(tmp_path):
    """M2: a started record's PID alive and running a script of that name, but started at another time
    (a reused PID), is not our run: kill must never signal it and status must not count it as running."""
    from launcher.executors.container.process import is_running, start_ticks

    (tmp_path / "run.sh").write_text("sleep 30\n")
    proc = subprocess.Popen(["bash", "run.sh"], cwd=tmp_path)
    try:
        cmdline = Path(f"/proc/{proc.pid}/cmdline")
        for _ in range(500):  # until the child has exec'd bash (before that it is a copy of us)
            if b"run.sh" in cmdline.read_bytes():
                break
            time.sleep(0.01)
        ticks = start_ticks(proc.pid)
        ours = events.Event(events.STARTED, 1.0, f"{proc.pid} {ticks}")
        reused = events.Event(events.STARTED, 1.0, f"{proc.pid} {int(ticks) - 1}")
        assert is_running(ours, "run.sh") and not is_running(reused, "run.sh")
        assert not is_running(ours, "run_all.sh")
    finally:
        proc.kill()
        proc.wait()


def test_headline_names_errored_samples_and_the_score_over_answered_ones(tmp_path):
    (tmp_path / "results").mkdir()
    stats = {"stderr": 0.1, "count": 10, "errors": 5, "answered": 0.8}
    metric = {"acc": {"scores": {"acc": {"value": 0.4, "stats": stats}}}}
    data = {"results": {"tasks": {"t": {"metrics": metric}}}}
    (tmp_path / layout.TASK_RESULTS_JSON).write_text(json.dumps(data))
    assert results.headline(tmp_path) == "acc=0.4000 (5 errored; answered acc=0.8000)"
