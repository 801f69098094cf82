"""Text, Markdown and JSON of a comparison (`launcher compare`) and of a gate report (`launcher gate`)."""

from __future__ import annotations

import json

from launcher.paired import stats
from launcher.paired.compare import Comparison, TaskComparison

FORMATS = ("text", "json", "markdown")
TESTS = {"mcnemar": "McNemar exact", "permutation": "sign-flip"}
LEGEND = (
    "delta = CAND - BASE per item (repeats averaged first); 95 % CI: paired t (clustered by category where "
    "items have one), bootstrap: paired percentile (2,000 resamples, fixed seed); +/-/= items improved, "
    "regressed, tied; p two-sided; MDE: the smallest |delta| these items detect with 80 % power at 5 %"
)


def interval(ci: tuple[float, float]) -> str:
    return f"[{ci[0]:+.4f}, {ci[1]:+.4f}]"


def p_text(t: TaskComparison) -> str:
    s = t.stats
    method = {"exact": "", "monte-carlo": " (MC)", "normal": " (normal approx.)"}[s.p_method]
    return f"{s.p_value:.2g} {TESTS[s.test]}{method}"


def comparison_rows(c: Comparison) -> tuple[list[str], list[list[str]]]:
    header = [
        "task",
        "metric",
        "items",
        "base",
        "cand",
        "delta",
        "95% CI",
        "bootstrap 95%",
        "+/-/=",
        "p",
        "MDE",
    ]
    rows = [
        [
            t.task,
            t.metric,
            str(t.stats.n),
            f"{t.stats.base_mean:.4f}",
            f"{t.stats.cand_mean:.4f}",
            f"{t.stats.delta:+.4f}",
            interval(t.stats.ci),
            interval(t.stats.bootstrap_ci),
            f"{t.stats.improved}/{t.stats.regressed}/{t.stats.tied}",
            p_text(t),
            f"{t.stats.mde:.4f}",
        ]
        for t in c.tasks
    ]
    return header, rows


def comparison_notes(c: Comparison) -> list[str]:
    notes = []
    for t in c.tasks:
        if any(t.errored):
            notes.append(
                f"{t.task}: not paired (no score): {t.errored[0]} item(s) errored in BASE, "
                f"{t.errored[1]} in CAND"
            )
        if t.stats.clusters:
            notes.append(f"{t.task}: SE clustered over {t.stats.clusters} categories")
        if t.stats.bootstrap_resamples != stats.BOOTSTRAP_RESAMPLES:
            notes.append(
                f"{t.task}: bootstrap over {t.stats.bootstrap_resamples} resamples (many distinct deltas)"
            )
        if t.repeats[0] != t.repeats[1]:
            notes.append(f"{t.task}: repeats per item differ: BASE {t.repeats[0]}, CAND {t.repeats[1]}")
        if 0 < abs(t.stats.delta) < t.stats.mde and t.stats.ci[0] <= 0 <= t.stats.ci[1]:
            notes.append(
                f"{t.task}: |delta| below the MDE: {t.stats.n} items cannot tell this difference apart"
            )
        notes.append(f"{t.task}: protocol: {t.protocol or 'not stated'}")
    return [*notes, *c.notes]


def render_comparison(c: Comparison, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(c.as_dict(), indent=2)
    header, rows = comparison_rows(c)
    title = f"BASE {' '.join(c.base)}  vs  CAND {' '.join(c.candidate)}"
    return "\n".join([title, "", table(header, rows, fmt), "", *comparison_notes(c), LEGEND])


def table(header: list[str], rows: list[list[str]], fmt: str) -> str:
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=True)]
    return "\n".join(
        "  ".join(x.ljust(w) for x, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]
    )


def render_gate(report, fmt: str, verbose: bool = False) -> str:
    """`report`: launcher.paired.gate.GateReport."""
    if fmt == "json":
        return json.dumps(report.as_dict(), indent=2)
    header = [
        "task",
        "tier",
        "metric",
        "items",
        "base",
        "cand",
        "delta",
        "damage 95% CI",
        "max_drop",
        "verdict",
    ]
    rows = []
    for v in report.tasks:
        c = v.comparison
        s = c.stats if c else None
        rows.append(
            [
                v.task,
                v.rule.tier,
                c.metric if c else (v.rule.metric or "-"),
                str(s.n) if s else "-",
                f"{s.base_mean:.4f}" if s else "-",
                f"{s.cand_mean:.4f}" if s else "-",
                f"{s.delta:+.4f}" if s else "-",
                interval(v.damage_ci) if v.damage_ci else "-",
                f"{v.rule.max_drop:.4f}",
                v.status,
            ]
        )
    verdict = f"**{report.verdict}**" if fmt == "markdown" else report.verdict
    lines = [f"{verdict}  (policy {report.policy})", "", table(header, rows, fmt), "", *report.reasons]
    if verbose:
        lines.append("")
        lines += [f"{v.task}: {reason}" for v in report.tasks for reason in v.reasons]
        lines += list(report.notes)
    return "\n".join(lines)


def render_sweep(rows, baseline: str, fmt: str) -> str:
    """`rows`: launcher.paired.sweep.CellComparison, each against the baseline cell."""
    if fmt == "json":
        return json.dumps(
            {
                "baseline": baseline,
                "cells": [{"cell": r.cell, "invocation": r.invocation_id, **r.task.as_dict()} for r in rows],
            },
            indent=2,
        )
    header = ["cell", "task", "items", "score", "delta", "95% CI", "+/-/=", "p", "MDE"]
    body = [
        [
            r.cell,
            f"{r.task.task}/{r.task.metric}",
            str(r.task.stats.n),
            f"{r.task.stats.cand_mean:.4f}",
            f"{r.task.stats.delta:+.4f}",
            interval(r.task.stats.ci),
            f"{r.task.stats.improved}/{r.task.stats.regressed}/{r.task.stats.tied}",
            p_text(r.task),
            f"{r.task.stats.mde:.4f}",
        ]
        for r in rows
    ]
    return "\n".join(
        [f"paired deltas against the baseline cell {baseline}", "", table(header, body, fmt), "", LEGEND]
    )
