"""The api over hand-made invocation folders: what status, resume and ls runs do with broken ones."""

import os
import signal

import pytest

from launcher import api
from launcher.errors import LauncherError, NotFound
from launcher.model import InvocationRecord, Plan, PlannedJob, State
from launcher.store import index, layout


def make(tmp_path, inv, executor="local", execution=None, events="queued 1\nstarted 2 1\nexited 3 0\n"):
    folder = tmp_path / "runs" / inv
    job = PlannedJob(f"{inv}.0", "t", "t", "img")
    plan = Plan(inv, str(folder), (job,), {"t/events.log": events, "events.log": ""})
    record = InvocationRecord(
        inv, str(folder), executor, execution or {"output_dir": str(tmp_path)}, (job,), 1.0
    )
    layout.create_invocation(plan, record, {})
    index.append(record)
    return record


@pytest.fixture
def alarm():
    """A test that would hang (a FIFO opened for reading) fails after 10 s instead."""

    def fail(*_):
        raise TimeoutError("hung")

    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def test_fifos_in_a_task_folder_never_hang_status(tmp_path, alarm):
    """M10: results/ is writable from the container; a FIFO there must not block status or ls runs."""
    record = make(tmp_path, "0000aaaa", events="queued 1\nstarted 2 1\nexited 3 5\n")
    task = tmp_path / "runs" / "0000aaaa" / "t"
    for rel in ("results/results.json", "results/progress.json", "logs/output.log"):
        os.mkfifo(task / rel)
    (inv,) = api.status(["0000aaaa"])
    assert inv.jobs[0].state == State.FAILED and inv.record == record


def test_an_unreachable_cluster_is_that_invocations_row_only(tmp_path):
    """M8: one Slurm invocation whose login node is unreachable; the others still list."""
    make(tmp_path, "0000aaaa")
    slurm = {
        "output_dir": str(tmp_path),
        "hostname": "127.0.0.1",
        "port": 1,
        "ssh_options": ["ConnectTimeout=5"],
    }
    make(tmp_path, "0000bbbb", executor="slurm", execution=slurm)
    (tmp_path / "runs" / "0000bbbb" / "slurm_jobs").write_text("12345\n")
    good, broken = api.status()
    assert good.jobs[0].state == State.SUCCEEDED and not good.error
    assert broken.jobs == [] and "cannot" in broken.error


def test_no_squeue_here_is_that_invocations_row_only(tmp_path, cli, monkeypatch):
    """M8: a local Slurm record and no squeue on PATH: `status` and `ls runs` list the others, that row
    says why, exit 0 (was `internal error: FileNotFoundError: 'squeue'`, exit 1)."""
    make(tmp_path, "0000aaaa")
    make(tmp_path, "0000bbbb", executor="slurm", execution={"output_dir": str(tmp_path)})
    (tmp_path / "runs" / "0000bbbb" / "slurm_jobs").write_text("12345\n")
    (tmp_path / "bin").mkdir()
    env = {"PATH": str(tmp_path / "bin")}  # python is run by its full path; no squeue anywhere
    status = cli("status", env=env, check_rc=0).stdout
    assert "0000aaaa.0" in status and "SUCCEEDED" in status
    assert "squeue failed (squeue: No such file or directory" in status
    runs = cli("ls", "runs", env=env, check_rc=0).stdout
    assert "0000aaaa" in runs and "UNKNOWN (squeue failed" in runs


def test_a_bad_run_record_is_skipped_with_a_warning(tmp_path, capsys):
    """M5: a record that is `42` hides neither the others nor itself silently."""
    make(tmp_path, "0000aaaa")
    bad = make(tmp_path, "0000bbbb")
    (tmp_path / "runs" / "0000bbbb" / layout.RECORD).write_text("42")
    (inv,) = api.status()
    assert inv.record.invocation_id == "0000aaaa"
    assert f"skipped invocation {bad.invocation_id}" in capsys.readouterr().err
    with pytest.raises(LauncherError, match="cannot read the run record"):
        api.status(["0000bbbb"])


def test_job_ids_are_checked(tmp_path):
    """L9: `status <inv>.99` is an error, and resume/kill take whole invocations."""
    make(tmp_path, "0000aaaa")
    with pytest.raises(NotFound, match="has no job 0000aaaa.99"):
        api.status(["0000aaaa.99"])
    with pytest.raises(LauncherError, match="resume restarts whole invocations"):
        api.resume(["0000aaaa.0"])
    with pytest.raises(LauncherError, match="kill stops whole invocations"):
        api.kill(["0000aaaa.0"])


def test_resuming_a_finished_invocation_starts_nothing(tmp_path):
    """L9: every task succeeded: resume starts no script (and so no model server)."""
    record = make(tmp_path, "0000aaaa")
    (launched,) = api.resume(["0000aaaa"])
    assert "already succeeded" in (launched.note or "")
    assert not (tmp_path / "runs" / "0000aaaa" / "logs" / "run_all.log").exists()
    assert launched.record == record


def test_runs_lists_the_index_newest_first_and_keeps_a_missing_one(tmp_path):
    """`ls runs` asks api.runs: a run whose folder is gone is still a row (MISSING), not a warning."""
    from launcher.cli.render import runs_rows

    make(tmp_path, "0000aaaa")
    make(tmp_path, "0000bbbb", events="queued 1\n")
    gone = make(tmp_path, "0000cccc")
    os.remove(os.path.join(gone.folder, layout.RECORD))
    runs = api.runs(limit=2)
    assert [r.entry.id for r in runs] == ["0000cccc", "0000bbbb"]
    assert runs[0].status is None and runs[1].status.record.invocation_id == "0000bbbb"
    rows = runs_rows(api.runs())
    assert [(r["invocation"], r["tasks"], r["state"]) for r in rows] == [
        ("0000cccc", "", "MISSING"),
        ("0000bbbb", 1, "LOST"),
        ("0000aaaa", 1, "SUCCEEDED"),
    ]


def test_kill_of_a_slurm_invocation_whose_folder_is_gone_says_so(tmp_path):
    """Without its folder a Slurm invocation's job ids are unknown: its executor finds nothing to stop
    (SlurmExecutor.stop_orphan), so kill says the record is gone instead of pretending."""
    gone = make(tmp_path, "0000bbbb", executor="slurm")
    os.remove(os.path.join(gone.folder, layout.RECORD))
    with pytest.raises(NotFound):
        api.kill(["0000bbbb"])


def test_resolved_config_is_the_file_written_at_submit(tmp_path):
    """`info` prints it; a FIFO in its place is no config (never a hang)."""
    record = make(tmp_path, "0000aaaa")
    path = tmp_path / "runs" / "0000aaaa" / layout.HYDRA_DIR / "config.yaml"
    assert api.resolved_config(record) is None
    path.parent.mkdir(exist_ok=True)
    os.mkfifo(path)
    assert api.resolved_config(record) is None
    path.unlink()
    path.write_text("target: {}\n")
    assert api.resolved_config(record) == "target: {}\n"
