"""`launcher results SWEEP --baseline CELL`: every other cell of a sweep compared item by item with the
baseline cell, per task (launcher.paired.compare.pair). A cell is one invocation of the sweep, named by its
id (or a unique prefix, or a job id) or by the values it was launched with: `temperature=0.0` or
`model=alpha,temperature=0.5` (keys as `--rows` takes them: a unique last part is enough). `compare` and
`gate` take a cell as `SWEEP:temperature=0.0`.
"""

from __future__ import annotations

from dataclasses import dataclass

from launcher.export import compare as grid
from launcher.export import source
from launcher.export.source import TaskRun
from launcher.paired import compare
from launcher.paired.compare import NotPaired, TaskComparison


@dataclass(frozen=True)
class CellComparison:
    cell: str  # the cell's label: the swept values that set it apart (or its invocation id)
    invocation_id: str
    task: TaskComparison


def cells(runs: list[TaskRun]) -> dict[str, list[TaskRun]]:
    """invocation id -> its runs, in order."""
    out: dict[str, list[TaskRun]] = {}
    for r in runs:
        out.setdefault(r.invocation_id, []).append(r)
    return out


def label(runs: list[TaskRun], every: list[TaskRun]) -> str:
    keys = grid.swept(every)
    models = {r.model for r in every}
    parts = [f"model={runs[0].model}"] if len(models) > 1 else []
    parts += [f"{k.rsplit('.', 1)[-1]}={runs[0].overrides.get(k, grid.ABSENT)}" for k in keys]
    return ", ".join(parts) or runs[0].invocation_id


def find_cell(runs: list[TaskRun], spec: str) -> str:
    """The invocation id of the cell `spec` names; one line naming the cells otherwise."""
    by_cell = cells(runs)
    if "=" in spec:
        wanted = {}
        for pair in spec.split(","):
            key, _, value = pair.partition("=")
            wanted[key.strip()] = value.strip()
        matched = [
            inv
            for inv, rs in by_cell.items()
            if all(_value(rs[0], grid.axis("--baseline", k, runs)) == v for k, v in wanted.items())
        ]
    else:
        matched = [
            inv for inv, rs in by_cell.items() if inv.startswith(spec) or any(r.job_id == spec for r in rs)
        ]
    if len(matched) == 1:
        return matched[0]
    known = "; ".join(f"{inv} ({label(rs, runs)})" for inv, rs in by_cell.items())
    problem = "matches no cell" if not matched else f"matches {len(matched)} cells"
    raise NotPaired(f"--baseline {spec!r} {problem}; the cells: {known}")


def _value(run: TaskRun, key: str) -> str:
    return {"model": run.model, "invocation": run.invocation_id}.get(key, run.overrides.get(key, grid.ABSENT))


def against(runs: list[TaskRun], spec: str, metric: str | None = None) -> list[CellComparison]:
    done = [r for r in runs if r.has_results]
    base_inv = find_cell(done, spec)
    by_cell = cells(done)
    base = compare.by_task(by_cell[base_inv], "the baseline cell")
    out = []
    for inv, rs in by_cell.items():
        if inv == base_inv:
            continue
        for task, run in compare.by_task(rs, f"cell {inv}").items():
            if task in base:
                out.append(CellComparison(label(rs, done), inv, compare.pair(base[task], run, metric)))
    if not out:
        raise NotPaired(f"--baseline {spec!r}: no other cell shares a task with it")
    return out


def load(idents: list[str]) -> list[TaskRun]:
    """The runs of invocations, jobs, sweeps, folders, or sweep cells `SWEEP:key=value[,key=value]`."""
    runs: list[TaskRun] = []
    for ident in idents:
        sweep_id, colon, spec = ident.partition(":")
        if colon and "=" in spec:
            in_sweep = [r for r in source.load([sweep_id]) if r.has_results]
            cell = find_cell(in_sweep, spec)
            runs += [r for r in in_sweep if r.invocation_id == cell]
        else:
            runs += source.load([ident])
    return runs
