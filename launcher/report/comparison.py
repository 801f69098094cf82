"""The comparison page of two runs (`launcher compare BASE CAND --html FILE`): per-task paired deltas with
their intervals, and a flip browser of the items that regressed or improved, both responses side by side.
Like the report's sample browser, the flips travel as one JSON block and only the current page of 50 is
rendered (compare.js), so 10,000 flips open instantly. One self-contained file; the report's CSP."""

from __future__ import annotations

import time
from html import escape
from pathlib import Path

from launcher.export import source
from launcher.paired.compare import Comparison, TaskComparison
from launcher.paired.render import LEGEND, comparison_notes, comparison_rows
from launcher.report.html import CSP, HERE, _cut, prompt_text, script_json

FIELDS = ("id", "kind", "base", "cand", "prompt", "reference", "base_response", "cand_response",
          "base_extracted", "cand_extracted")  # fmt: skip
CSS = """
.flips .pair { display: grid; grid-template-columns: 1fr 1fr; gap: .6em; }
.sample.improved { border-left: 4px solid #27ae60; } .sample.regressed { border-left: 4px solid #c0392b; }
svg.ci line.zero { stroke: #999; stroke-dasharray: 3 2; }
svg.ci line.bar { stroke: #2c3e50; stroke-width: 2; } svg.ci circle { fill: #2c3e50; }
#deltas td { white-space: nowrap; }
"""


def interval_svg(t: TaskComparison, span: float) -> str:
    """The delta and its 95 % interval on an axis from -span to +span; the dashed line is no change."""
    width, height = 220, 18

    def x(v: float) -> float:
        return round(width / 2 + v / span * (width / 2 - 6), 1)

    lo, hi = t.stats.ci
    return (
        f'<svg class="ci" width="{width}" height="{height}" role="img" '
        f'aria-label="delta {t.stats.delta:+.4f}, 95% CI {lo:+.4f} to {hi:+.4f}">'
        f'<line class="zero" x1="{x(0)}" x2="{x(0)}" y1="0" y2="{height}"/>'
        f'<line class="bar" x1="{x(lo)}" x2="{x(hi)}" y1="9" y2="9"/>'
        f'<circle cx="{x(t.stats.delta)}" cy="9" r="3.5"/></svg>'
    )


def deltas_table(c: Comparison) -> str:
    header, rows = comparison_rows(c)
    span = max([abs(v) for t in c.tasks for v in (*t.stats.ci, t.stats.delta)] + [1e-9]) * 1.1
    head = "".join(f"<th>{escape(h)}</th>" for h in [*header, "delta and 95% CI"])
    body = "".join(
        f'<tr data-task="{escape(t.task)}">'
        + "".join(f'<td class="{"num" if i >= 2 else ""}">{escape(v)}</td>' for i, v in enumerate(row))
        + f"<td>{interval_svg(t, span)}</td></tr>"
        for t, row in zip(c.tasks, rows, strict=True)
    )
    return f'<table id="deltas"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _by_item(run: source.TaskRun) -> dict[str, dict]:
    """item id -> its first record (a repeated item shows its first repeat)."""
    out: dict[str, dict] = {}
    split = (run.repeats or 1) > 1
    for rec in source.read_samples(run):
        key = str(rec.get("id"))
        out.setdefault(key.rpartition("#")[0] if split and "#" in key else key, rec)
    return out


def flip_rows(t: TaskComparison, base: source.TaskRun, cand: source.TaskRun) -> list[list]:
    base_recs, cand_recs = _by_item(base), _by_item(cand)
    rows = []
    for kind, items in (("regressed", t.regressed_items), ("improved", t.improved_items)):
        for item in items:
            b, c = base_recs.get(item, {}), cand_recs.get(item, {})
            rows.append(
                [
                    item,
                    kind,
                    b.get("score"),
                    c.get("score"),
                    _cut(b.get("prompt") or prompt_text(b.get("request"))),
                    _cut(b.get("reference")),
                    _cut(b.get("response")),
                    _cut(c.get("response")),
                    _cut(b.get("extracted")),
                    _cut(c.get("extracted")),
                ]
            )
    return rows


def build(c: Comparison, base: list[source.TaskRun], cand: list[source.TaskRun]) -> tuple[str, int]:
    """(the page, number of flips in it); `base`, `cand`: the runs `c` was computed from."""
    runs = {r.job_id: r for r in [*base, *cand]}
    tasks = [{"task": t.task, "rows": flip_rows(t, runs[t.base_job], runs[t.cand_job])} for t in c.tasks]
    n = sum(len(t["rows"]) for t in tasks)
    notes = "".join(f"<li>{escape(note)}</li>" for note in comparison_notes(c))
    title = f"{' '.join(c.base)} vs {' '.join(c.candidate)}"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<link rel="icon" href="data:,">
<title>launcher comparison · {escape(title)}</title>
<style>{(HERE / "report.css").read_text(encoding="utf-8")}{CSS}</style></head>
<body>
<h1>Paired comparison</h1>
<p class="muted">BASE {escape(" ".join(c.base))} · CAND {escape(" ".join(c.candidate))} ·
generated {time.strftime("%Y-%m-%d %H:%M:%S")}</p>
<h2>Per-task deltas</h2>
{deltas_table(c)}
<ul class="muted">{notes}</ul>
<p class="muted">{escape(LEGEND)}</p>
<h2>Flips: items that regressed or improved</h2>
<div id="controls">
<label>task <select id="task"></select></label>
<label>show <select id="kind"><option value="all">all flips</option>
<option value="regressed">regressed</option><option value="improved">improved</option></select></label>
<label>search <input id="search" type="search" placeholder="text in prompt, responses, answers"></label>
<button id="prev">◀ prev</button><button id="next">next ▶</button> <span id="count"></span>
</div>
<div id="flips" class="flips"></div>
<script type="application/json" id="flips-data">{script_json({"fields": FIELDS, "tasks": tasks})}</script>
<script>{(HERE / "browser.js").read_text(encoding="utf-8")}</script>
<script>{(HERE / "compare.js").read_text(encoding="utf-8")}</script>
</body></html>
"""
    return page, n


def write_comparison(
    c: Comparison, base: list[source.TaskRun], cand: list[source.TaskRun], path: Path
) -> int:
    page, n = build(c, base, cand)
    tmp = path.with_name(f".{path.name}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return n
