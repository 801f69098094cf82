"""`launcher results`: one score per cell on two axes (default models x tasks) with ± stderr, the best per
column marked and differences flagged.

An axis is `model`, `task`, `metric`, `invocation`, or any key the invocations were launched with
(.hydra/overrides.yaml): in a Hydra sweep (`-m`) the swept keys, e.g. evaluation.tasks.0.params.temperature
(a unique last part, `temperature`, is enough). What neither axis separates goes into the labels: the
task/metric into the column when there are several, and into the row the fewest other coordinates
(model, swept keys, invocation, job) that tell the runs sharing a cell apart.
A difference is flagged when |a - b| > sqrt(se_a² + se_b²) (one combined standard error; a hint to look
closer, not a significance test).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field

from launcher.errors import LauncherError
from launcher.export.source import TaskRun

BEST, DIFFERS = "*", "!"
BUILTIN = ("model", "task", "metric", "invocation")
DEFAULT_ROWS, DEFAULT_COLS = "model", "task"
BARE = ("model", "invocation", "job")  # shown as their value alone in a row label
ABSENT = "-"  # the value of a key an invocation was not launched with


@dataclass(frozen=True)
class Cell:
    value: float
    stderr: float | None
    best: bool = False
    differs: bool = False  # further from the column's best than their combined stderr
    coords: dict[str, str] = field(default_factory=dict, compare=False)  # model, task, metric, ..., swept

    def text(self) -> str:
        se = f" ± {self.stderr:.4f}" if self.stderr is not None else ""
        return f"{self.value:.4f}{se}{BEST if self.best else ''}{DIFFERS if self.differs else ''}"


@dataclass(frozen=True)
class Grid:
    rows: list[str]  # row labels: the rows axis value, plus what tells apart runs sharing a cell
    columns: list[str]  # the cols axis value (plus task/metric where several share it)
    cells: dict[tuple[str, str], Cell]
    row_axis: str = DEFAULT_ROWS
    col_axis: str = DEFAULT_COLS


@dataclass(frozen=True)
class Point:
    coords: dict[str, str]
    value: float
    stderr: float | None


def exceeds(a: float, se_a: float | None, b: float, se_b: float | None) -> bool:
    combined = math.sqrt((se_a or 0.0) ** 2 + (se_b or 0.0) ** 2)
    return abs(a - b) > combined


def points(runs: list[TaskRun]) -> list[Point]:
    """One point per score of every job with results; its coordinates are every possible axis."""
    keys = list(dict.fromkeys(k for r in runs for k in r.overrides))
    out = []
    for r in runs:
        for s in r.scores:
            coords = {k: r.overrides.get(k, ABSENT) for k in keys}
            coords.update(model=r.model, task=r.task, metric=s.name, invocation=r.invocation_id, job=r.job_id)
            out.append(Point(coords, s.value, s.stderr))
    return out


def swept(runs: list[TaskRun]) -> list[str]:
    """Override keys whose value differs between the given invocations, in the order first given."""
    keys = list(dict.fromkeys(k for r in runs for k in r.overrides))
    return [k for k in keys if len({r.overrides.get(k, ABSENT) for r in runs}) > 1]


def axis(flag: str, name: str, runs: list[TaskRun]) -> str:
    """The axis `name` means: a built-in, an override key, or a unique last part of one; else one line."""
    keys = list(dict.fromkeys(k for r in runs for k in r.overrides))
    if name in BUILTIN or name in keys:
        return name
    by_suffix = [k for k in keys if k.endswith(f".{name}")]
    if len(by_suffix) == 1:
        return by_suffix[0]
    available = ", ".join([*BUILTIN, *swept(runs)])
    if by_suffix:
        raise LauncherError(
            f"{flag} {name!r} is ambiguous: it ends {', '.join(by_suffix)}; give the whole key"
        )
    raise LauncherError(
        f"{flag} {name!r} is not an axis of these runs; available: {available} (or any override key)"
    )


def grid(runs: list[TaskRun], rows: str = DEFAULT_ROWS, cols: str = DEFAULT_COLS) -> Grid:
    """Runs without results are left out. `rows`, `cols`: axes as `axis()` returns them."""
    done = [r for r in runs if r.has_results]
    pts, keys = points(done), swept(done)
    tasks = {p.coords["task"] for p in pts}
    several = {t for t in tasks if len({p.coords["metric"] for p in pts if p.coords["task"] == t}) > 1}

    def column(p: Point) -> str:
        task, metric = p.coords["task"], p.coords["metric"]
        show_task = "task" not in (rows, cols) and len(tasks) > 1
        show_metric = "metric" not in (rows, cols) and task in several
        if cols == "metric":
            return "/".join([task, metric] if show_task else [metric])
        return "/".join([p.coords[cols], *([task] if show_task else []), *([metric] if show_metric else [])])

    extra = _row_coordinates(pts, rows, column, [c for c in ("model", *keys) if c not in (rows, cols)])

    def row(p: Point) -> str:
        if not extra:
            return p.coords[rows]
        shown = [p.coords[k] if k in BARE else f"{_short(k)}={p.coords[k]}" for k in extra]
        return f"{p.coords[rows]} ({', '.join(shown)})"

    raw = {(row(p), column(p)): p for p in pts}
    row_labels = _ordered(raw, 0, lambda p: p.coords[rows])
    col_labels = _ordered(raw, 1, lambda p: p.coords["metric"] if cols == "metric" else p.coords[cols])
    cells = {}
    for col in col_labels:
        present = [(r, raw[(r, col)]) for r in row_labels if (r, col) in raw]
        best = max(present, key=lambda rp: rp[1].value)[1]
        for r, p in present:
            is_best = p.value == best.value
            cells[(r, col)] = Cell(
                p.value,
                p.stderr,
                best=is_best and len(present) > 1,
                differs=not is_best and exceeds(p.value, p.stderr, best.value, best.stderr),
                coords={k: v for k, v in p.coords.items() if k in (*BUILTIN, "job", *keys)},
            )
    return Grid(row_labels, col_labels, cells, rows, cols)


def _row_coordinates(pts: list[Point], rows: str, column, candidates: list[str]) -> list[str]:
    """The fewest coordinates, in candidate order, that give every point its own (row, column) cell."""
    chosen: list[str] = []

    def keys(extra: list[str]) -> list[tuple]:
        return [(p.coords[rows], *(p.coords[k] for k in extra), column(p)) for p in pts]

    for candidate in [*candidates, "invocation", "job"]:
        current = keys(chosen)
        if len(set(current)) == len(current):
            break
        if len(set(keys([*chosen, candidate]))) > len(set(current)):
            chosen.append(candidate)
    return chosen


def _ordered(raw: dict[tuple[str, str], Point], side: int, value) -> list[str]:
    """Labels in the order first seen, numerically by the axis value when every value is a number."""
    labels: dict[str, str] = {}
    for key, p in raw.items():
        labels.setdefault(key[side], value(p))
    order = list(labels)
    try:
        numbers = {label: float(v) for label, v in labels.items()}
    except ValueError:
        return order
    return sorted(order, key=lambda label: (numbers[label], order.index(label)))


def _short(key: str) -> str:
    return key.rsplit(".", 1)[-1]


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
                    "coords": c.coords,
                }
                for (row, col), c in g.cells.items()
            ],
            indent=2,
        )
    default = (g.row_axis, g.col_axis) == (DEFAULT_ROWS, DEFAULT_COLS)
    corner = "run" if default else f"{_short(g.row_axis)} \\ {_short(g.col_axis)}"
    header = [corner, *g.columns]
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
    if not default:
        legend += f"; rows: {g.row_axis}, columns: {g.col_axis}"
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return "\n".join([*lines, "", legend])
    widths = [max(len(x) for x in col) for col in zip(header, *body, strict=True)]
    fmt_row = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt_row.format(*header), *(fmt_row.format(*r) for r in body)]
    return "\n".join([*lines, "", legend])
