"""What every benchmark section shares: paths, timing side by side, Markdown tables."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from launcher.testing import caches

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
LAUNCHER = str(VENV_BIN / "launcher")
NEL_VENV = caches.nel_venv()  # `make nel-venv`
NEL = str(NEL_VENV / "bin" / "nemo-evaluator-launcher")
TEST_IMAGE = "launcher-testtask:1"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def timed(argv: list[str], env: dict | None = None, cwd: str | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, env=env or ENV, cwd=cwd)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:4]} failed ({proc.returncode}): {proc.stderr.decode()[-400:]}")
    return elapsed


def medians(commands: dict[str, tuple[list[str], dict | None]], runs: int) -> dict[str, float]:
    """Run every command once per round, round after round (side by side), then take medians."""
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, (argv, env) in commands.items():
            samples[name].append(timed(argv, env))
    return {name: statistics.median(values) for name, values in samples.items()}


def table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


class Endpoint:
    def __init__(self, *args: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "launcher.testing.endpoint", "--port", "0", *args],
            stdout=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        self.port = int(self.proc.stdout.readline().split()[-1])
        self.url = f"http://127.0.0.1:{self.port}/v1/chat/completions"

    def stats(self) -> dict:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats") as resp:
            return json.load(resp)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()
