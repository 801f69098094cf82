"""Build the report: one HTML file with inline CSS, JS, SVG and data; a CSP forbids any network access."""

from __future__ import annotations

import json
import time
from html import escape
from pathlib import Path

from launcher.export import source
from launcher.export.source import TaskRun

HERE = Path(__file__).parent
FIELDS = ("id", "prompt", "response", "extracted", "reference", "score", "correct", "error")
MAX_FIELD = 20_000  # characters kept per text field: a runaway response must not make the page unusable
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"


def prompt_text(request) -> str:
    """The request payload as a human reads it: chat messages as `role: content`, or the plain prompt."""
    if not isinstance(request, dict):
        return "" if request is None else str(request)
    if isinstance(request.get("messages"), list):
        parts = []
        for m in request["messages"]:
            content = m.get("content") if isinstance(m, dict) else m
            if isinstance(content, list):  # content parts
                content = " ".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
            parts.append(f"{m.get('role', '?') if isinstance(m, dict) else '?'}: {content}")
        return "\n\n".join(parts)
    return str(request.get("prompt", ""))


def _cut(value) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return (
        text if len(text) <= MAX_FIELD else text[:MAX_FIELD] + f" … [{len(text) - MAX_FIELD} more characters]"
    )


def sample_row(rec: dict) -> list:
    score = rec.get("score")
    if isinstance(score, dict):  # several metrics per sample: the headline (first) one decides
        score = next(iter(score.values()), None)
    correct = rec.get("error") is None and isinstance(score, (int, float)) and score >= 1.0
    return [
        str(rec.get("id")),
        _cut(prompt_text(rec.get("request"))),
        _cut(rec.get("response")),
        _cut(rec.get("extracted")),
        _cut(rec.get("reference")),
        score,
        correct,
        _cut(rec.get("error")),
    ]


def usage_totals(samples: list[dict]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for rec in samples:
        for k, v in (rec.get("usage") or {}).items():
            if isinstance(v, int):
                totals[k] = totals.get(k, 0) + v
    return totals


def _num(value, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def run_labels(runs: list[TaskRun]) -> dict[str, str]:
    """Job id -> the model, plus the swept keys that are not the model itself (`m (temperature=0.5)`):
    the runs of a sweep told apart in the table, the plots and the sample browser."""
    from launcher.export.compare import swept

    keys = [k for k in swept(runs) if any(r.overrides.get(k) != r.model for r in runs)]
    out = {}
    for r in runs:
        extra = ", ".join(f"{k.rsplit('.', 1)[-1]}={r.overrides.get(k, '-')}" for k in keys)
        out[r.job_id] = f"{r.model} ({extra})" if extra else r.model or r.job_id
    return out


def scores_table(runs: list[TaskRun]) -> str:
    done = [r for r in runs if r.has_results]
    label = run_labels(done)
    best: dict[tuple[str, str], float] = {}
    for r in done:
        for s in r.scores:
            key = (r.task, s.name)
            best[key] = max(best.get(key, s.value), s.value)
    lines = [
        '<table id="scores"><thead><tr><th>model</th><th>task</th><th>metric</th><th>value</th>'
        "<th>± stderr</th><th>samples</th><th>errors</th><th>chance</th><th>protocol</th><th>job</th>"
        "</tr></thead><tbody>"
    ]
    for r in done:
        for s in r.scores:
            is_best = s.value == best[(r.task, s.name)] and sum(1 for x in done if x.task == r.task) > 1
            lines.append(
                f'<tr class="{"best" if is_best else ""}" data-job="{escape(r.job_id)}" '
                f'data-metric="{escape(s.name)}"><td>{escape(label[r.job_id])}</td><td>{escape(r.task)}</td>'
                f'<td>{escape(s.name)}</td><td class="num value">{_num(s.value)}</td>'
                f'<td class="num stderr">{_num(s.stderr)}</td><td class="num">{_num(s.count)}</td>'
                f'<td class="num">{_num(s.errors)}</td><td class="num">{_num(r.chance)}</td>'
                f"<td>{escape(r.protocol or '')}</td><td>{escape(r.job_id)}</td></tr>"
            )
    lines.append("</tbody></table>")
    return "\n".join(lines)


def plot(task: str, metric: str, points: list[tuple[str, float, float | None]], chance: float | None) -> str:
    """A horizontal dot plot: one row per run, whiskers at ± 1 stderr, a dashed line at chance."""
    width, left, row_h, top = 460, 170, 22, 24
    hi = (
        max([1.0, *(v + (se or 0) for _, v, se in points)])
        if all(0 <= v <= 1 for _, v, _ in points)
        else max(v + (se or 0) for _, v, se in points)
    )
    lo = min(0.0, *(v - (se or 0) for _, v, se in points))
    span = (hi - lo) or 1.0

    def x(v: float) -> float:
        return left + (width - left - 10) * (v - lo) / span

    height = top + row_h * len(points) + 20
    out = [
        f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(task)} {escape(metric)}">',
        f'<text x="4" y="14" font-size="12" font-weight="bold">{escape(task)} · {escape(metric)}</text>',
        f'<line x1="{x(lo):.1f}" y1="{top - 4}" x2="{x(lo):.1f}" y2="{height - 18}" stroke="#999"/>',
    ]
    for i, (label, v, se) in enumerate(points):
        y = top + row_h * i + row_h / 2
        out.append(f'<text x="4" y="{y + 4:.1f}" font-size="11">{escape(label[:28])}</text>')
        if se:
            out.append(
                f'<line x1="{x(v - se):.1f}" y1="{y:.1f}" x2="{x(v + se):.1f}" y2="{y:.1f}" stroke="#555"/>'
            )
        out.append(
            f'<circle cx="{x(v):.1f}" cy="{y:.1f}" r="4" fill="#2c7fb8"><title>{v:.4f}</title></circle>'
        )
        out.append(f'<text x="{min(x(v) + 8, width - 40):.1f}" y="{y - 5:.1f}" font-size="10">{v:.3f}</text>')
    if chance is not None:
        out.append(
            f'<line x1="{x(chance):.1f}" y1="{top - 4}" x2="{x(chance):.1f}" y2="{height - 18}" '
            'stroke="#c0392b" stroke-dasharray="4 3"><title>chance</title></line>'
        )
    out.append(f'<text x="{left}" y="{height - 4}" font-size="10" fill="#777">{lo:g}</text>')
    out.append(f'<text x="{width - 30}" y="{height - 4}" font-size="10" fill="#777">{hi:.3g}</text>')
    out.append("</svg>")
    return "".join(out)


def plots(runs: list[TaskRun]) -> str:
    label = run_labels(runs)
    by_key: dict[tuple[str, str], list[TaskRun]] = {}
    for r in runs:
        for s in r.scores:
            by_key.setdefault((r.task, s.name), []).append(r)
    svgs = []
    for (task, metric), rs in by_key.items():
        points = []
        for r in rs:
            s = next(s for s in r.scores if s.name == metric)
            points.append((label[r.job_id], s.value, s.stderr))
        svgs.append(plot(task, metric, points, rs[0].chance))
    return '<div class="plots">' + "".join(svgs) + "</div>"


def proxy_facts(stats: dict, scope: str = "all tasks of the invocation") -> list[tuple[str, str]]:
    """Run facts from the counters of an endpoint proxy (launcher.proxy.stats owns their format); `scope`
    says which tasks they count (one proxy per invocation locally, one per array element on Slurm)."""
    from launcher.proxy.stats import summary

    def count(key: str) -> int:
        value = stats.get(key)
        return value if isinstance(value, int) else 0

    requests, hits = count("requests"), count("cache_hits")
    share = f" ({hits / requests:.0%})" if requests else ""
    return [
        (
            "proxy tokens",
            f"{count('tokens_in'):,} in, {count('tokens_out'):,} out ({scope})",
        ),
        ("cache hits", f"{hits:,} of {requests:,} requests{share}"),
        ("proxy", summary(stats)),
    ]


def facts(run: TaskRun, samples: list[dict]) -> str:
    events = source.read_events(run)
    times = sorted(events.items(), key=lambda kv: kv[1])
    start = times[0][1] if times else None
    timing = ", ".join(f"{k} +{v - start:.0f} s" for k, v in times) if times else "no stage records"
    latencies = [rec["latency"] for rec in samples if isinstance(rec.get("latency"), (int, float))]
    errors = sum(1 for rec in samples if rec.get("error") is not None)
    usage = usage_totals(samples)
    items = [
        ("invocation", run.invocation_id),
        ("job", run.job_id),
        ("model", run.model),
        ("folder", str(run.folder)),
        ("created", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.created)) if run.created else ""),
        ("finished", run.finished_at or "not finished"),
        ("stages", timing),
        ("samples", f"{len(samples)} recorded, {errors} errors"),
        ("latency", f"mean {sum(latencies) / len(latencies):.3f} s" if latencies else ""),
        ("token usage", ", ".join(f"{k} {v:,}" for k, v in sorted(usage.items())) or "not reported"),
    ]
    proxy = source.read_proxy_stats(run)
    if proxy is not None:
        items += proxy_facts(*proxy)
    rows = "".join(
        f'<tr data-fact="{escape(k)}"><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>' for k, v in items
    )
    parts = [
        f"<details open><summary>{escape(run.task)} · {escape(run.job_id)}</summary><table>{rows}</table>"
    ]
    if proxy is not None:
        counters = escape(json.dumps(proxy, indent=2))
        parts.append(f"<details><summary>proxy counters</summary><pre>{counters}</pre></details>")
    if run.run_config:
        cfg = json.dumps(source.redact(run.run_config), indent=2)
        parts.append(f"<details><summary>run config</summary><pre>{escape(cfg)}</pre></details>")
    parts.append("</details>")
    return "".join(parts)


def script_json(data) -> str:
    """JSON safe inside <script>: no '<' can close the element early."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


def build(runs: list[TaskRun]) -> tuple[str, int]:
    """(the page, number of samples in it)."""
    per_job = {r.job_id: source.read_samples(r) for r in runs}
    label = run_labels(runs)
    jobs = [
        {
            "job_id": r.job_id,
            "label": f"{label[r.job_id]} · {r.task} · {r.job_id}",
            "rows": [sample_row(s) for s in per_job[r.job_id]],
        }
        for r in runs
    ]
    n = sum(len(j["rows"]) for j in jobs)
    invocations = list(dict.fromkeys(r.invocation_id for r in runs))
    configs = {}
    for r in runs:
        configs.setdefault(r.invocation_id, source.resolved_config_text(r))
    missing = [r.job_id for r in runs if not r.has_results]
    config_html = "".join(
        f"<details><summary>resolved config of {escape(inv)}</summary><pre>{escape(text)}</pre></details>"
        for inv, text in configs.items()
        if text
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<link rel="icon" href="data:,">
<title>launcher report · {escape(", ".join(invocations))}</title>
<style>{(HERE / "report.css").read_text(encoding="utf-8")}</style></head>
<body>
<h1>Evaluation report</h1>
<p class="muted">invocations {escape(", ".join(invocations))} · generated {time.strftime("%Y-%m-%d %H:%M:%S")}
{f" · no results yet: {escape(', '.join(missing))}" if missing else ""}</p>
<h2>Scores</h2>
{scores_table(runs)}
<p class="muted">Bold: best in its task. Whiskers: ± 1 standard error. Dashed red line: chance level.</p>
{plots([r for r in runs if r.has_results])}
<h2>Run facts</h2>
{"".join(facts(r, per_job[r.job_id]) for r in runs)}
{config_html}
<h2>Samples</h2>
<div id="controls">
<label>job <select id="job"></select></label>
<label>show <select id="filter"><option value="all">all</option><option value="wrong">wrong only</option>
<option value="errors">errors only</option></select></label>
<label>search <input id="search" type="search" placeholder="text in prompt, response, answer"></label>
<button id="prev">◀ prev</button><button id="next">next ▶</button> <span id="count"></span>
</div>
<div id="samples"></div>
<script type="application/json" id="samples-data">{script_json({"fields": FIELDS, "jobs": jobs})}</script>
<script>{(HERE / "browser.js").read_text(encoding="utf-8")}</script>
<script>{(HERE / "report.js").read_text(encoding="utf-8")}</script>
</body></html>
"""
    return page, n


def write_report(runs: list[TaskRun], path: Path) -> int:
    page, n = build(runs)
    tmp = path.with_name(f".{path.name}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return n
