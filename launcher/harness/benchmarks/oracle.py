"""What a test endpoint needs to answer the built-in benchmarks right (or wrong) without a model: the
prompts each task sends for a sample, a reply that scores 1 (or 0) for one of them, and for log-likelihood
tasks which continuation is the gold one. Used by launcher.testing.endpoint; every reply is checked
against the task's own scorer in tests/unit/test_scoring.py."""

from __future__ import annotations

from launcher.harness.api import Sample
from launcher.harness.benchmarks import aime, gpqa, gsm8k, humaneval

GPQA_REPEATS = 10  # prompts are listed for this many repeats (the task's default)


def prompts(task: str, sample: Sample) -> list[str]:
    """Every prompt the task's solve() sends for this sample (chat: the user message; completions: the
    raw prompt). Empty for log-likelihood tasks (see `continuations`)."""
    if task == "gsm8k_cot":
        return [gsm8k.fewshot_prompt(sample.input)]
    if task == "gsm8k_cot_zeroshot":
        return [gsm8k.zeroshot_prompt(sample.input)]
    if task == "aime2025":
        return [aime.prompt(sample.input)]
    if task == "gpqa_diamond":
        return [gpqa.arrange(sample, r)[0] for r in range(GPQA_REPEATS)]
    if task == "humaneval":
        return [sample.input]
    if task == "humaneval_chat":
        return [humaneval.INSTRUCTION + sample.input]
    if task == "synthetic":
        return [sample.input]
    return []


def reply(task: str, sample: Sample, prompt: str, correct: bool = True) -> str:
    """A reply to `prompt` (one of `prompts(task, sample)`) that the task scores 1.0 (or 0.0)."""
    if task.startswith("gsm8k"):
        return f"Adding it up. The answer is {sample.target if correct else -987654}."
    if task == "aime2025":
        return f"So the answer is $\\boxed{{{sample.target if correct else 1000}}}$."
    if task == "gpqa_diamond":
        right = next(
            letter
            for p, letter in map(gpqa.arrange, [sample] * GPQA_REPEATS, range(GPQA_REPEATS))
            if p == prompt
        )
        return f"Thinking...\nAnswer: {right if correct else next(x for x in 'ABCD' if x != right)}"
    if task.startswith("humaneval"):
        body = sample.extra["canonical_solution"] if correct else "    raise NotImplementedError\n"
        return body if task == "humaneval" else f"Here it is:\n```python\n{sample.input}{body}```\n"
    if task == "synthetic":
        return f"Answer: {sample.target if correct else -1}"
    raise KeyError(f"no generative oracle for {task}")


def continuations(task: str, sample: Sample) -> list[tuple[str, str, bool]]:
    """Log-likelihood tasks: (context, continuation, is gold) for every request solve() makes."""
    if task not in ("hellaswag", "truthfulqa_mc1"):
        return []
    gold = int(sample.target)
    return [(sample.input, f" {choice}", i == gold) for i, choice in enumerate(sample.choices)]
