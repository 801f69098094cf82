"""The committed NEL task table is exactly what scripts/gen-nel-catalog.py makes from the pinned wheel."""

from __future__ import annotations

import importlib.util
import json
import zipfile
from pathlib import Path

import pytest
from helpers import unavailable

ROOT = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location("gen_nel_catalog", ROOT / "scripts" / "gen-nel-catalog.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


gen = _generator()


def test_committed_table_equals_generator_output():
    wheel = gen.wheel_path(fetch=False)
    if not wheel.exists():  # fails under `make test` and in CI, skips on a laptop
        unavailable(f"{wheel} is missing", "`python scripts/gen-nel-catalog.py --check` fetches it")
    assert gen.TABLE.read_text() == gen.build_table(gen.read_source(wheel))


def test_generator_refuses_a_wheel_with_another_hash(tmp_path):
    fake = tmp_path / gen.WHEEL
    with zipfile.ZipFile(fake, "w") as zf:
        zf.writestr(gen.SOURCE_FILE, "harnesses: []\ntasks: []\n")
    with pytest.raises(SystemExit, match="is not the pinned"):
        gen.read_source(fake)


def test_generator_rules_on_a_small_source():
    source = {
        "harnesses": [{"name": "h", "container": "img:1", "container_digest": "sha256:ab"}],
        "tasks": [
            {"name": "b", "harness": "h", "description": ["two", " sentences\n"], "defaults": {}},
            {
                "name": "a",
                "harness": "h",
                "description": "first",
                "defaults": {"config": {"supported_endpoint_types": ["completions", "chat"]}},
            },
            {"name": "a", "harness": "h", "description": "duplicate: NEL keeps the first", "defaults": {}},
        ],
    }
    table = json.loads(gen.build_table(source))
    assert table["harnesses"] == {"h": {"image": "img:1", "digest": "sha256:ab"}}
    assert table["tasks"] == [
        {"harness": "h", "task": "a", "endpoint_types": ["completions", "chat"], "description": "first"},
        {"harness": "h", "task": "b", "endpoint_types": ["chat"], "description": "two sentences"},
    ]
    source["tasks"].append({"name": "c", "harness": "nope", "description": "", "defaults": {}})
    with pytest.raises(SystemExit, match="no image"):
        gen.build_table(source)
