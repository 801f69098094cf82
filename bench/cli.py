"""1. CLI latency, side by side with NeMo Evaluator Launcher 0.2.6 (in its own venv)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import ENV, LAUNCHER, NEL, ROOT, TEST_IMAGE, medians, table

TEN_TASKS = [
    f"launcher.{name}"
    for name in ("gsm8k", "humaneval", "gpqa_diamond", "aime2025", "hellaswag", "truthfulqa_mc1")
]
NEL_TASKS = [
    f"lm-evaluation-harness.{name}"
    for name in (
        "arc_challenge_chat",
        "bbh_instruct",
        "bbq_chat",
        "gpqa_diamond_cot",
        "gsm8k_cot_instruct",
        "gsm8k_cot_llama",
        "gsm8k_cot_zeroshot",
        "humaneval_instruct",
        "ifeval",
        "mbpp_plus_chat",
    )
]


def write_configs(folder: Path) -> None:
    ours = {
        "defaults": [{"execution": "local"}, {"deployment": "none"}, "_self_"],
        "execution": {"output_dir": str(folder / "out")},
        "target": {
            "api_endpoint": {
                "url": "https://example.invalid/v1/chat/completions",
                "model_id": "m",
                "api_key": "BENCH_API_KEY",
            }
        },
        "evaluation": {
            "tasks": TEN_TASKS
            + [
                {"name": f"custom{i}", "container": TEST_IMAGE, "command": ["python3", "/opt/task.py", "ok"]}
                for i in range(4)
            ]
        },
    }
    (folder / "ours.yaml").write_text(json.dumps(ours))
    nel = {
        "defaults": [{"execution": "local"}, {"deployment": "none"}, "_self_"],
        "execution": {"output_dir": str(folder / "nel-out")},
        "target": {
            "api_endpoint": {
                "url": "https://example.invalid/v1/chat/completions",
                "model_id": "m",
                "api_key_name": "BENCH_API_KEY",
            }
        },
        "evaluation": {"tasks": [{"name": name} for name in NEL_TASKS]},
    }
    (folder / "nel.yaml").write_text(json.dumps(nel))


def fill_index(state: Path, out: Path, count: int) -> None:
    """`count` finished invocations in an index, written through the launcher's own store."""
    sys.path.insert(0, str(ROOT))
    os.environ["LAUNCHER_STATE_DIR"] = str(state)
    from launcher.model import InvocationRecord, Plan, PlannedJob
    from launcher.store import index, layout

    now = time.time()
    for n in range(count):
        inv = f"{n:08x}"
        folder = out / f"{layout.stamp(now)}-{inv}"
        job = PlannedJob(f"{inv}.0", "gsm8k", "gsm8k", "img", ("true",))
        events = f"started {int(now)} 1\nexited {int(now)} 0\n"
        plan = Plan(inv, str(folder), (job,), {"gsm8k/events.log": events, "events.log": events})
        record = InvocationRecord(
            inv,
            str(folder),
            "local",
            {"output_dir": str(out)},
            (job,),
            now,
        )
        layout.create_invocation(plan, record, {})
        index.append(record)
    del os.environ["LAUNCHER_STATE_DIR"]


def bench_cli(runs: int = 7) -> str:
    work = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    try:
        write_configs(work)
        fill_index(work / "state", work / "runs", 1000)
        env = {**ENV, "LAUNCHER_STATE_DIR": str(work / "state"), "BENCH_API_KEY": "x"}
        commands = {
            "ours --help": ([LAUNCHER, "--help"], env),
            "ours run --dry-run (10 tasks)": (
                [LAUNCHER, "run", "--config-dir", str(work), "--config-name", "ours", "--dry-run"],
                env,
            ),
            "ours status (1,000 in index)": ([LAUNCHER, "status"], env),
            "ours ls runs (1,000 in index)": ([LAUNCHER, "ls", "runs"], env),
            "ours ls runs -n 1000": ([LAUNCHER, "ls", "runs", "-n", "1000"], env),
        }
        nel = Path(NEL).exists()
        if nel:
            nel_env = {**os.environ, "BENCH_API_KEY": "x", "HOME": str(work / "nel-home")}
            commands |= {
                "NEL --help": ([NEL, "--help"], nel_env),
                "NEL run --dry-run (10 tasks)": (
                    [NEL, "run", "--config", str(work / "nel.yaml"), "--dry-run"],
                    nel_env,
                ),
                "NEL status": ([NEL, "status", "0000dead"], nel_env),
            }
        result = medians(commands, runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = [[name, f"{seconds:.3f} s"] for name, seconds in result.items()]
    text = table(["command", f"median of {runs}"], rows)
    if nel:
        text += "\n\n" + table(
            ["ratio (NEL / ours)", "x"],
            [
                ["--help", f"{result['NEL --help'] / result['ours --help']:.1f}"],
                [
                    "run --dry-run, 10 tasks",
                    f"{result['NEL run --dry-run (10 tasks)'] / result['ours run --dry-run (10 tasks)']:.1f}",
                ],
                ["status", f"{result['NEL status'] / result['ours status (1,000 in index)']:.1f}"],
            ],
        )
    else:
        text += f"\n\n(NeMo Evaluator Launcher not installed at {NEL}: `make bench` installs it)"
    return text
