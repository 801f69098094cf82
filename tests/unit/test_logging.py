"""Logging redacts secret values; importing the package touches nothing."""

import json
import subprocess
import sys
from pathlib import Path

from launcher import logsetup

ROOT = Path(__file__).resolve().parents[2]


def test_redactor_scrubs_nested_values():
    scrub = logsetup.redactor(["sk-live-abcdef", "xy"])  # too-short values are not treated as secrets
    event = {
        "event": "calling with sk-live-abcdef",
        "headers": {"auth": "Bearer sk-live-abcdef"},
        "list": ["a", "sk-live-abcdef!"],
        "n": 3,
    }
    out = scrub(None, "info", event)
    assert "sk-live-abcdef" not in json.dumps(out)
    assert out["headers"]["auth"] == "Bearer ***" and out["n"] == 3


def test_json_log_file_and_console_threshold(tmp_path, capsys):
    log_file = tmp_path / "launcher.jsonl"
    logsetup.configure(str(log_file), secrets=["sk-secret-123"])
    log = logsetup.get()
    log.info("quiet on the console", key="sk-secret-123")
    log.warning("shown on the console")
    records = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [r["event"] for r in records] == ["quiet on the console", "shown on the console"]
    assert records[0]["key"] == "***"
    err = capsys.readouterr().err
    assert "shown on the console" in err and "quiet" not in err


def test_importing_every_module_has_no_side_effects(tmp_path):
    code = (
        "import importlib, pkgutil, launcher\n"
        "for m in pkgutil.walk_packages(launcher.__path__, 'launcher.'):\n"
        "    if not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)\n"
    )
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "HOME": str(home),
        "PYTHONPATH": str(ROOT),
        "PATH": "/usr/bin:/bin",
        "XDG_STATE_HOME": str(home / "s"),
    }
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=tmp_path)
    assert list(home.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["home"]
