"""`launcher results`: runs x tasks with score ± stderr, best per column, significant differences flagged.

A difference is flagged when |a - b| > sqrt(se_a² + se_b²) (one combined standard error; a hint to look
closer, not a significance test).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass

from launcher.export.source import TaskRun

BEST, DIFFERS = "*", "!"


@dataclass(frozen=True)
class Cell:
    value: float
    stderr: float | None
    best: bool = False
    differs: bool = False  # further from the column's best than their combined stderr

    def text(self) -> str:
        se = f" ± {self.stderr:.4f}" if self.stderr is not None else ""
        return f"{self.value:.4f}{se}{BEST if self.best else ''}{DIFFERS if self.differs else ''}"


@dataclass(frozen=True)
class Grid:
    rows: list[str]  # run labels: the model, plus the invocation id when a model appears twice
    columns: list[str]  # task (or task/metric when a task has several scores)
    cells: dict[tuple[str, str], Cell]


def exceeds(a: float, se_a: float | None, b: float, se_b: float | None) -> bool:
    combined = math.sqrt((se_a or 0.0) ** 2 + (se_b or 0.0) ** 2)
    return abs(a - b) > combined


def grid(runs: list[TaskRun]) -> Grid:
    done = [r for r in runs if r.has_results]
    models = {}
    for r in done:
        models.setdefault(r.model, set()).add(r.invocation_id)
    label = {
        r.job_id: r.model if len(models[r.model]) == 1 else f"{r.model} ({r.invocation_id})" for r in done
    }
    multi = {r.task for r in done if len(r.scores) > 1}
    raw: dict[tuple[str, str], tuple[float, float | None]] = {}
    rows: list[str] = []
    columns: list[str] = []
    for r in done:
        if label[r.job_id] not in rows:
            rows.append(label[r.job_id])
        for s in r.scores:
            col = f"{r.task}/{s.name}" if r.task in multi else r.task
            if col not in columns:
                columns.append(col)
            raw[(label[r.job_id], col)] = (s.value, s.stderr)
    cells = {}
    for col in columns:
        present = [(row, raw[(row, col)]) for row in rows if (row, col) in raw]
        _, (best, best_se) = max(present, key=lambda p: p[1][0])
        for row, (value, se) in present:
            is_best = value == best
            cells[(row, col)] = Cell(
                value,
                se,
                best=is_best and len(present) > 1,
                differs=not is_best and exceeds(value, se, best, best_se),
            )
    return Grid(rows, columns, cells)


def render(g: Grid, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(
            [
                {
                    "run": row,
                    "column": col,
                    "value": c.value,
                    "stderr": c.stderr,
                    "best": c.best,
                    "differs": c.differs,
                }
                for (row, col), c in g.cells.items()
            ],
            indent=2,
        )
    header = ["run", *g.columns]
    body = [
        [row, *(g.cells[(row, c)].text() if (row, c) in g.cells else "-" for c in g.columns)]
        for row in g.rows
    ]
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["run", "column", "value", "stderr", "best", "differs"])
        for (row, col), c in g.cells.items():
            writer.writerow([row, col, c.value, "" if c.stderr is None else c.stderr, c.best, c.differs])
        return buf.getvalue().rstrip("\n")
    legend = f"{BEST} best in column; {DIFFERS} below the best by more than the combined stderr"
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return "\n".join([*lines, "", legend])
    widths = [max(len(x) for x in col) for col in zip(header, *body, strict=True)]
    fmt_row = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt_row.format(*header), *(fmt_row.format(*r) for r in body)]
    return "\n".join([*lines, "", legend])
