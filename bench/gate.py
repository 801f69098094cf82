"""The paired comparison and the release gate: `launcher gate` side by side with `nel gate` (NeMo
Evaluator 0.3.0 in its own Python 3.12 venv, `make ne-venv`) on the same paired records, and the cost of
`launcher compare` + `launcher gate` on two runs of 1,000-100,000 samples.

Side by side: each scenario's two runs are written as the harness writes them (samples.jsonl through
checkpoint.SampleLog, results.json through aggregate), then exported from those files into nel's bundle
layout (<dir>/<task>/eval-<task>.json with benchmark.name and scores.mean_reward, and results.jsonl with
problem_idx, repeat, reward, metadata.category per sample record), and both gates judge them under the same
policy. nel gates only `mean_reward` / `pass@1`; the policies name `mean_reward`, which we read as the
task's headline metric.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ENV, ROOT, table

from launcher.testing import caches

NEL_GATE = caches.ne_venv() / "bin" / "nel"  # `make ne-venv`
TASK_PREFIX = "t"
CRITICAL = "version: 1\ndefaults:\n  metric: mean_reward\nbenchmarks:\n  {task}:\n    tier: critical\n"


def write_run(root: Path, tasks: dict[str, list[list[float]]], categories: list[str] | None = None) -> str:
    """An invocation folder whose task `t` has per item the given repeats' scores; returns its id."""
    os.environ.setdefault("LAUNCHER_STATE_DIR", str(root / "state"))
    from launcher.harness import aggregate, checkpoint
    from launcher.harness.api import Task
    from launcher.model import InvocationRecord, PlannedJob
    from launcher.store import index, layout

    inv = layout.new_id()
    folder = root / f"{layout.stamp(time.time())}-{inv}"
    jobs = []
    for n, (name, items) in enumerate(tasks.items()):
        results = folder / name / "results"
        results.mkdir(parents=True)
        repeats = len(items[0])
        log = checkpoint.SampleLog(results / checkpoint.SAMPLES)
        records = {}
        for i, scores in enumerate(items):
            for r, value in enumerate(scores):
                key = aggregate.sample_key(f"q{i}", r, repeats)
                rec = {
                    "key": key,
                    "id": f"q{i}",
                    "repeat": r,
                    "input": f"question {i} " * 20,
                    "target": str(i),
                }
                rec.update(
                    error=None, scores={"accuracy": value}, output={"response": f"answer {value} " * 20}
                )
                if categories:
                    rec["category"] = categories[i]
                records[key] = rec
                log.append(rec)
        log.close()
        task = Task(
            name=name,
            protocol="bench",
            metrics=("accuracy",),
            endpoint_types=("chat",),
            load=list,
            solve=None,
        )
        keys = [f"q{i}" for i in range(len(items))]
        tally = aggregate.tally(("accuracy",), keys, repeats, records)
        doc = aggregate.results(task, tally, len(keys), len(keys), repeats, 1.0, {"model_id": "m"})
        checkpoint.write_json(results / checkpoint.RESULTS_JSON, doc)
        jobs.append(PlannedJob(f"{inv}.{n}", name, name, "launcher-harness:0.1.0", ()))
    record = InvocationRecord(inv, str(folder), "local", {}, tuple(jobs), time.time(), model_id="m", url="x")
    (folder / layout.RECORD).write_text(layout.record_json(record), encoding="utf-8")
    index.append(record)
    return inv


def export_bundles(inv: str, out: Path) -> Path:
    """Our records of invocation `inv` as nel 0.3.0 bundles, one folder per task (read from our files)."""
    from launcher.export import source

    for run in source.load([inv]):
        task_dir = out / run.task
        task_dir.mkdir(parents=True)
        lines = []
        with open(run.path(source.TASK_SAMPLES), encoding="utf-8") as fh:
            for line in fh:
                rec = json.loads(line)
                out_rec = {"problem_idx": int(rec["id"][1:]), "repeat": rec["repeat"]}
                out_rec["reward"] = rec["scores"][run.headline]
                if "category" in rec:
                    out_rec["metadata"] = {"category": rec["category"]}
                lines.append(json.dumps(out_rec))
        (task_dir / "results.jsonl").write_text("\n".join(lines) + "\n")
        score = next(s for s in run.scores if s.metric == run.headline)
        bundle = {
            "run_id": run.job_id,
            "config": {},
            "benchmark": {"name": run.task, "scores": {"mean_reward": {"value": score.value}}},
        }
        (task_dir / f"eval-{run.task}.json").write_text(json.dumps(bundle))
    return out


def nested(n: int, base_share: float, cand_share: float, repeats: int = 1) -> tuple[list, list]:
    """0/1 items; the candidate's right items are a subset of the base's (pure regressions)."""
    base = [[float(i < round(n * base_share))] * repeats for i in range(n)]
    cand = [[float(i < round(n * cand_share))] * repeats for i in range(n)]
    return base, cand


def noisy(n: int, p_base: float, p_cand: float, repeats: int, seed: int) -> tuple[list, list]:
    rng = random.Random(seed)
    base = [[float(rng.random() < p_base) for _ in range(repeats)] for _ in range(n)]
    cand = [[float(rng.random() < p_cand) for _ in range(repeats)] for _ in range(n)]
    return base, cand


def scenarios() -> list[tuple[str, tuple[list, list], str, list[str] | None]]:
    relative = "version: 1\ndefaults:\n  metric: mean_reward\n  max_drop: 0.05\n  max_relative_drop: 0.03\n"
    relative += "  relative_guard_below: 0.5\nbenchmarks:\n  {task}:\n    tier: critical\n"
    lower = "version: 1\nbenchmarks:\n  {task}:\n    tier: critical\n    metric: mean_reward\n"
    lower += "    direction: lower_is_better\n"
    advisory = "version: 1\nbenchmarks:\n  {task}:\n    tier: advisory\n    metric: mean_reward\n"
    cats = [f"c{i % 8}" for i in range(800)]
    return [
        ("400 items, 80 % -> 72 %", nested(400, 0.80, 0.72), CRITICAL, None),
        ("400 items, a rerun", nested(400, 0.80, 0.80), CRITICAL, None),
        ("20 items, 80 % -> 75 %", nested(20, 0.80, 0.75), CRITICAL, None),
        ("400 items, 80 % -> 79.5 %", nested(400, 0.80, 0.795), CRITICAL, None),
        ("1,000 items, 30 % -> 28.5 %, relative guard", nested(1000, 0.30, 0.285), relative, None),
        ("400 items, lower is better, 20 % -> 30 %", nested(400, 0.20, 0.30), lower, None),
        ("400 items x 4 repeats, noisy 70 % vs 66 %", noisy(400, 0.70, 0.66, 4, 1), CRITICAL, None),
        ("800 items in 8 categories, noisy 70 % vs 69 %", noisy(800, 0.70, 0.69, 1, 2), CRITICAL, cats),
        ("400 items, advisory only, 80 % -> 72 %", nested(400, 0.80, 0.72), advisory, None),
    ]


def ours(base: str, cand: str, policy: Path) -> tuple[str, str, list[float]]:
    from launcher import api

    report = api.gate(base, cand, str(policy))
    (task,) = report.tasks
    return report.verdict, task.status, list(task.damage_ci or [])


def theirs(base: Path, cand: Path, policy: Path) -> tuple[str, str, list[float]]:
    proc = subprocess.run(
        [
            str(NEL_GATE),
            "gate",
            str(base),
            str(cand),
            "--policy",
            str(policy),
            "--format",
            "json",
            "--no-report",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "NEMO_EVALUATOR_TELEMETRY_LEVEL": "0"},
    )
    if proc.returncode not in (0, 1, 2):
        raise RuntimeError(f"nel gate failed ({proc.returncode}): {proc.stderr[-600:]}")
    report = json.loads(proc.stdout)
    (task,) = report["benchmarks"]
    lo, hi = task["delta_ci_lower"], task["delta_ci_upper"]
    damage = [] if lo is None else sorted([-hi, -lo] if task["direction"] == "higher_is_better" else [lo, hi])
    return report["verdict"], task["status"], damage


def bench_nel_gate() -> str:
    if not NEL_GATE.exists():
        return f"skipped: {NEL_GATE} missing (`make ne-venv`)"
    work = Path(tempfile.mkdtemp(prefix="bench-gate-"))
    os.environ["LAUNCHER_STATE_DIR"] = str(work / "state")
    rows, same = [], 0
    try:
        for n, (name, (base_items, cand_items), policy_text, cats) in enumerate(scenarios()):
            task = f"{TASK_PREFIX}{n}"
            policy = work / f"policy{n}.yaml"
            policy.write_text(policy_text.format(task=task))
            base = write_run(work, {task: base_items}, cats)
            cand = write_run(work, {task: cand_items}, cats)
            a = ours(base, cand, policy)
            b = theirs(
                export_bundles(base, work / f"nel{n}" / "base"),
                export_bundles(cand, work / f"nel{n}" / "cand"),
                policy,
            )
            agree = a[:2] == b[:2]
            same += agree
            ci_gap = max(abs(x - y) for x, y in zip(a[2], b[2], strict=True)) if a[2] and b[2] else None
            rows.append(
                [
                    name,
                    f"{a[1]} / {a[0]}",
                    f"{b[1]} / {b[0]}",
                    "yes" if agree else "**no**",
                    _ci(a[2]),
                    _ci(b[2]),
                    "-" if ci_gap is None else f"{ci_gap:.1e}",
                ]
            )
    finally:
        del os.environ["LAUNCHER_STATE_DIR"]
        shutil.rmtree(work, ignore_errors=True)
    head = [
        "scenario",
        "launcher gate",
        "nel gate 0.3.0",
        "same",
        "damage 95% CI (ours)",
        "(nel)",
        "max |diff|",
    ]
    return (
        table(head, rows) + f"\n\n{same} of {len(rows)} scenarios: the same task status and overall verdict."
    )


def _ci(ci: list[float]) -> str:
    return f"[{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else "-"


SCALE_SCRIPT = """
import json, sys, time
from launcher import api
base, cand, policy = sys.argv[1:4]
start, cpu0 = time.perf_counter(), time.process_time()
compared = api.compare(base, cand)
middle, cpu1 = time.perf_counter(), time.process_time()
report = api.gate(base, cand, policy)
end, cpu2 = time.perf_counter(), time.process_time()
# VmHWM, not ru_maxrss: the latter keeps the high-water mark of the parent this process was forked from
rss_mb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")) / 1024
times = {"compare": middle - start, "gate": end - middle, "compare_cpu": cpu1 - cpu0, "gate_cpu": cpu2 - cpu1}
print(json.dumps({**times, "rss_mb": rss_mb, "verdict": report.verdict}))
"""


def bench_compare_scale() -> str:
    """compare + gate of two runs of n samples: in-process seconds (and CPU seconds, which a loaded
    machine inflates less) and the process's peak RSS, and the whole `launcher gate` command
    (interpreter start included)."""
    work = Path(tempfile.mkdtemp(prefix="bench-gate-scale-"))
    os.environ["LAUNCHER_STATE_DIR"] = str(work / "state")
    env = {**ENV, "LAUNCHER_STATE_DIR": str(work / "state")}
    rows = []
    try:
        policy = work / "policy.yaml"
        policy.write_text(CRITICAL.format(task="big"))
        for n in (1_000, 10_000, 100_000):
            base_items, cand_items = noisy(n, 0.80, 0.78, 1, n)
            base, cand = write_run(work, {"big": base_items}), write_run(work, {"big": cand_items})
            size = sum(p.stat().st_size for p in work.rglob("samples.jsonl")) / 2 / 1e6
            proc = subprocess.run(
                [sys.executable, "-c", SCALE_SCRIPT, base, cand, str(policy)],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            m = json.loads(proc.stdout)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            gate = subprocess.run(
                [sys.executable, "-m", "launcher", "gate", base, cand, "--policy", str(policy)],
                capture_output=True,
                env=env,
            )
            whole = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            rows.append(
                [
                    f"{n:,}",
                    f"{size:.0f} MB",
                    f"{m['compare']:.2f} s ({m['compare_cpu']:.2f} s CPU)",
                    f"{m['gate']:.2f} s ({m['gate_cpu']:.2f} s CPU)",
                    f"{m['rss_mb']:.0f} MB",
                    f"{whole:.2f} s ({cpu:.2f} s CPU), exit {gate.returncode}: {m['verdict']}",
                ]
            )
            for p in work.glob("*-*"):
                if p.is_dir() and p.name != "state":
                    shutil.rmtree(p)
    finally:
        del os.environ["LAUNCHER_STATE_DIR"]
        shutil.rmtree(work, ignore_errors=True)
    head = [
        "samples per run",
        "samples.jsonl",
        "api.compare",
        "api.gate",
        "peak RSS",
        "`launcher gate` command",
    ]
    return table(head, rows)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    print(bench_nel_gate() if sys.argv[1:] == ["nel"] else bench_compare_scale())
