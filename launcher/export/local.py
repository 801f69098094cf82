"""`--dest local`: one flat CSV or JSON table, appendable across invocations (rows keyed by job+metric)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from launcher.errors import LauncherError
from launcher.export import table
from launcher.export.source import TaskRun

DEFAULT = {"csv": "launcher-results.csv", "json": "launcher-results.json"}


def read_existing(path: Path, fmt: str) -> list[dict]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    if not text.strip():
        return []
    try:
        if fmt == "json":
            data = json.loads(text)
            if not isinstance(data, list):
                raise ValueError("not a JSON list of rows")
            return data
        return list(csv.DictReader(io.StringIO(text)))
    except (ValueError, csv.Error) as err:
        raise LauncherError(
            f"{path} is not a {fmt.upper()} results table ({err}); give another file with -o FILE"
        ) from None


def dumps(rows: list[dict], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    buf = io.StringIO()
    columns = list(table.COLUMNS) + sorted({k for r in rows for k in r} - set(table.COLUMNS))
    writer = csv.DictWriter(buf, columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})
    return buf.getvalue()


def export(runs: list[TaskRun], path: Path | None, fmt: str) -> tuple[Path, int]:
    """Merge the runs' rows into the table at `path`; returns (path, rows written for these runs)."""
    path = Path(path or DEFAULT[fmt])
    new = table.rows(runs)
    merged = table.merge(read_existing(path, fmt), new)
    tmp = path.with_name(f".{path.name}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(dumps(merged, fmt), encoding="utf-8")
    tmp.replace(path)
    return path, len(new)
