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


# A spreadsheet reads a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutral(value):
    """A CSV cell no spreadsheet runs: text starting like a formula gets a leading `'`; numbers (and text
    that is one, like -0.5) stay as they are."""
    if not isinstance(value, str) or not value.startswith(FORMULA_START):
        return value
    try:
        float(value)
        return value
    except ValueError:
        return f"'{value}"


def dumps(rows: list[dict], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    buf = io.StringIO()
    columns = list(table.COLUMNS) + sorted({k for r in rows for k in r} - set(table.COLUMNS))
    writer = csv.DictWriter(buf, [neutral(c) for c in columns], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({neutral(k): "" if row.get(k) is None else neutral(row.get(k)) for k in columns})
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
