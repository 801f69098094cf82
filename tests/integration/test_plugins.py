"""A third-party executor in its own installed package works with no change to core."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from launcher.executors import registry
from launcher.testing.contract import ExecutorContract

ROOT = Path(__file__).resolve().parent.parent.parent


def pip_install_into(source: Path, target: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    return target


@pytest.fixture(scope="session")
def dummy_plugin(tmp_path_factory):
    return pip_install_into(ROOT / "tests/plugin_pkg", tmp_path_factory.mktemp("plugin"))


@pytest.fixture(scope="session")
def dup_plugin(tmp_path_factory):
    return pip_install_into(ROOT / "tests/plugin_dup", tmp_path_factory.mktemp("dup"))


def test_installed_plugin_is_discovered_and_runs(cli, dummy_plugin, tmp_path):
    env = {"PYTHONPATH": f"{ROOT}:{dummy_plugin}"}
    proc = cli("ls", "executors", "--json", env=env, check_rc=0)
    assert [e["name"] for e in json.loads(proc.stdout)] == ["dummy", "local", "slurm"]
    assert "warning: skipping executor plugin 'broken'" in proc.stderr  # broken one skipped, not fatal
    proc = cli("execution=dummy", "target=local", "execution.greeting=hi", env=env, check_rc=0)
    assert "warning: skipping executor plugin 'broken'" in proc.stderr  # broken one skipped, not fatal
    invocation = proc.stdout.split()[1].rstrip(":")
    proc = cli("status", invocation, "--json", env=env, check_rc=0)
    assert '"state": "SUCCEEDED"' in proc.stdout
    proc = cli("execution=dummy", "target=local", "execution.max_parallel=2", env=env)
    assert proc.returncode == 2 and "Allowed keys under execution: output_dir, greeting" in proc.stderr


def test_two_executors_with_one_name_is_an_error(cli, dup_plugin):
    proc = cli("execution=local", "target=local", "-n", env={"PYTHONPATH": f"{ROOT}:{dup_plugin}"})
    assert proc.returncode == 2
    assert "two executors are named 'local'" in proc.stderr and proc.stderr.count("\n") == 1


@pytest.fixture
def dummy_on_path(dummy_plugin, monkeypatch):
    monkeypatch.syspath_prepend(str(dummy_plugin))
    registry.executors.cache_clear()
    yield
    registry.executors.cache_clear()


@pytest.mark.usefixtures("dummy_on_path")
class TestDummyExecutorContract(ExecutorContract):
    @property
    def executor_class(self):
        return registry.get("dummy")
