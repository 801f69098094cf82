"""OmegaConf's loader over libyaml (launcher.cli.omegaconf_yaml) builds the same trees and reports the same
errors as OmegaConf's own; Hydra's job hooks still run when a config asks for them."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml
from omegaconf import _utils

from launcher.cli import omegaconf_yaml

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p for d in ("launcher/conf", "examples") for p in (ROOT / d).rglob("*.yaml"))

EDGE_CASES = [
    "a: 1.0\nb: 1e3\nc: 2001-12-14\nd: .inf\ne: 1_000\nf: 0o17\ng: 0x1F\nh: ~\ni: yes\nj: '1.5'\n",
    "list: [1, {x: y}, [a, b]]\nblock: |\n  two\n  lines\nfolded: >\n  one\n  line\n",
    "anchors: &a {k: v}\nuse: *a\nmerged: {<<: *a, extra: 1}\n",
    "p: !!python/object/apply:pathlib.Path ['/x', 'y']\n",
    "unicode: 'héllo ✓'\nempty:\nkey with spaces: ok\n",
    "",
]
INVALID = ["a: [1\n", "a: 1\na: 2\n", "a: b: c\n", "- x\ny: 1\n", "a: 'open\n", "k: v\n\tbad: tab\n"]


@pytest.fixture(scope="module")
def loaders():
    """OmegaConf's own loader and ours, OmegaConf left as this module found it."""
    found = _utils.get_yaml_loader
    original = getattr(found, "original", found)  # another test may have switched already
    _utils.get_yaml_loader = original
    pure = original()
    omegaconf_yaml.use_libyaml()
    fast = _utils.get_yaml_loader()
    assert fast is not pure and issubclass(fast, yaml.CSafeLoader)
    yield pure, fast
    _utils.get_yaml_loader = found


def load(text: str, loader, stream: bool) -> object:
    try:
        return yaml.load(io.StringIO(text) if stream else text, Loader=loader)
    except yaml.YAMLError as err:
        return f"{type(err).__name__}: {err}"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_config_loads_to_the_same_tree(loaders, path):
    pure, fast = loaders
    text = path.read_text()
    assert load(text, fast, stream=True) == load(text, pure, stream=True)


@pytest.mark.parametrize("text", EDGE_CASES + INVALID)
@pytest.mark.parametrize("stream", [True, False], ids=["file", "string"])
def test_edge_cases_and_errors_are_the_same(loaders, text, stream):
    pure, fast = loaders
    assert load(text, fast, stream) == load(text, pure, stream)


def test_an_invalid_user_file_is_still_one_line_naming_it(cli, tmp_path):
    (tmp_path / "broken.yaml").write_text("defaults:\n  - execution: local\ntarget: [1\n")
    proc = cli("run", "--config", str(tmp_path / "broken.yaml"), "--dry-run", check_rc=2)
    assert len(proc.stderr.strip().splitlines()) == 1 and "broken.yaml" in proc.stderr, proc.stderr


def test_a_users_hydra_callback_still_runs(cli, tmp_path):
    """The fast path skips Hydra's run_job only when no hook is configured; a callback forces Hydra's way."""
    (tmp_path / "mark_cb.py").write_text(
        "from pathlib import Path\nfrom hydra.experimental.callback import Callback\n"
        "class Mark(Callback):\n"
        "    def __init__(self, path):\n        self.path = path\n"
        "    def on_job_start(self, config, **kw):\n        Path(self.path).write_text('job started')\n"
    )
    marker = tmp_path / "marker"
    config = {
        "defaults": [{"execution": "local"}, "_self_"],
        "target": {"api_endpoint": {"url": "http://127.0.0.1:9/v1/chat/completions", "model_id": "m"}},
        "evaluation": {"tasks": [{"name": "one", "container": "img:1", "command": ["eval"]}]},
        "hydra": {"callbacks": {"mark": {"_target_": "mark_cb.Mark", "path": str(marker)}}},
    }
    (tmp_path / "hooked.yaml").write_text(yaml.safe_dump(config))
    proc = cli(
        "run", "--config", str(tmp_path / "hooked.yaml"), "--dry-run",
        env={"PYTHONPATH": f"{cli.env['PYTHONPATH']}:{tmp_path}"}, check_rc=0,
    )  # fmt: skip
    assert "one" in proc.stdout
    assert marker.read_text() == "job started"


def test_hydra_runtime_output_dir_resolves_as_hydra_sets_it(cli, tmp_path):
    """`${hydra:runtime.output_dir}` in a run (no -m): the fast path sets it as Hydra's run_job does."""
    config = {
        "defaults": [{"execution": "local"}, "_self_"],
        "execution": {"output_dir": "${hydra:runtime.output_dir}/o"},
        "target": {"api_endpoint": {"url": "http://127.0.0.1:9/v1/chat/completions", "model_id": "m"}},
        "evaluation": {"tasks": [{"name": "one", "container": "img:1", "command": ["eval"]}]},
    }
    (tmp_path / "rt.yaml").write_text(yaml.safe_dump(config))
    proc = cli("run", "--config", str(tmp_path / "rt.yaml"), "--dry-run", check_rc=0)
    # hydra.run.dir is "." (Hydra must write nothing), so the run's output dir is the working directory
    assert f"output_dir: {Path.cwd()}/o" in proc.stdout, proc.stdout[:2000]
