"""What the benchmark modules share: locating data inside pinned PyPI packages and sending one generation."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from launcher.harness.api import Context, Model

# The params a generation request may carry; the rest of Context.params (repeats, limits...) is the runner's.
GENERATION_KEYS = ("temperature", "top_p", "max_tokens", "seed")


def package_file(package: str, relative: str) -> Path:
    """A data file shipped inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"dataset package {package!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / relative


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


async def generate(model: Model, prompt: str, ctx: Context, stop: tuple[str, ...] = ()) -> dict:
    """One generation -> the record fields every generative task saves (text, finish_reason, usage)."""
    params = {k: ctx.params[k] for k in GENERATION_KEYS if ctx.params.get(k) is not None}
    if stop:
        params["stop"] = list(stop)
    gen = await model.generate(prompt, **params)
    return {"response": gen.text, "finish_reason": gen.finish_reason, "usage": gen.usage}
