"""`make bench`: measure the launcher and print Markdown tables for BENCHMARKS.md.

Sections (one module each): cli (latency, side by side with NeMo Evaluator Launcher 0.2.6 in its own
venv), scale, scale-run, scale-phases, scale-catalogue (how costs grow with tasks and invocations; the
catalogue's dry run side by side with NEL), launch (overhead vs plain docker run), kill (time to stop a
running task), throughput (harness vs a bare aiohttp loop), resume (kill -9 waste), harness-scale (RSS and
resume time at 1,000-100,000 samples), scoring (off the loop vs inline), gate-nel (`launcher gate` and
NeMo Evaluator 0.3.0's `nel gate` on the same records), gate-scale (compare + gate at 100,000 samples),
capacity (the proxy's adaptive concurrency against capped, queueing and uncapped endpoints; BENCH_BEFORE=
<checkout> side by side), eval-nel (all 1,319 GSM8K items against one endpoint, the harness and NeMo
Evaluator 0.3.0's `nel eval` side by side), shards (one 10,000-sample task as 1, 2 and 4 shards). Run one with
`python bench/run.py cli`. Medians of several runs; ratios come from runs made side by side in the same
invocation.
"""

from __future__ import annotations

import importlib
import os
import sys
import time

SECTIONS = {  # name -> (module, function)
    "cli": ("cli", "bench_cli"),
    "scale": ("scale", "bench_scale"),
    "scale-run": ("scale", "bench_run_all"),
    "scale-phases": ("scale", "bench_submit_phases"),
    "scale-catalogue": ("scale", "bench_catalogue_dry_run"),
    "launch": ("launch", "bench_launch"),
    "kill": ("launch", "bench_kill"),
    "throughput": ("harness", "bench_throughput"),
    "resume": ("harness", "bench_resume"),
    "harness-scale": ("harness", "bench_harness_scale"),
    "scoring": ("harness", "bench_scoring"),
    "gate-nel": ("gate", "bench_nel_gate"),
    "gate-scale": ("gate", "bench_compare_scale"),
    "capacity": ("capacity", "bench_capacity"),
    "eval-nel": ("nel_eval", "bench_nel_eval"),
    "shards": ("shards", "bench_shards"),
}


def main(argv: list[str]) -> None:
    chosen = argv or list(SECTIONS)
    machine = f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d')}"
    print(f"<!-- make bench: {' '.join(chosen)}; {machine} -->")
    for name in chosen:
        print(f"\n### {name}\n", flush=True)
        print(getattr(importlib.import_module(SECTIONS[name][0]), SECTIONS[name][1])(), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
