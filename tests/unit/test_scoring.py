"""Answer extraction and scoring per task; HumanEval runs the benchmark's own tests."""

import asyncio

import pytest

from launcher.harness.sandbox import run_program
from launcher.harness.tasks import TASKS, extract_letter, extract_number, humaneval_program, score_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("She makes 9 * 2 = $18.\nAnswer: 18", "18"),
        ("Answer: $1,234", "1234"),
        ("The answer is 42.", "42"),
        ("so \\boxed{70}", "70"),
        ("first 3 then 5 and finally 7", "7"),
        ("Answer: 2.50", "2.5"),
        ("Answer: -4", "-4"),
        ("Answer: 18.0", "18"),
        ("no digits here", None),
    ],
)
def test_extract_number(text, expected):
    assert extract_number(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Reasoning...\nAnswer: C", "C"),
        ("the answer is (b)", "B"),
        ("\\boxed{D}", "D"),
        ("I pick\nA\n", "A"),
        ("**Answer:** B", "B"),
        ("Option (C) is right", "C"),
        ("Answer: E", None),  # not one of the options
        ("I am not sure", None),
    ],
)
def test_extract_letter(text, expected):
    assert extract_letter(text, "ABCD") == expected


@pytest.mark.parametrize("name", ["gsm8k", "aime2025", "gpqa_diamond", "hellaswag", "truthfulqa_mc1"])
def test_text_tasks_score_right_and_wrong_answers(name):
    task = TASKS[name]
    samples = task.loader()
    assert (
        len(samples)
        == {"gsm8k": 1319, "aime2025": 30, "gpqa_diamond": 198, "hellaswag": 100, "truthfulqa_mc1": 100}[name]
    )
    assert len({s.id for s in samples}) == len(samples)
    for sample in samples:
        assert score_text(task, sample, f"Answer: {sample.reference}")[0] == 1.0, sample.id
        wrong = "-987654" if task.kind == "number" else next(x for x in "ABCD" if x != sample.reference)
        assert score_text(task, sample, f"Answer: {wrong}")[0] == 0.0


def test_multiple_choice_order_is_shuffled_but_fixed():
    first = [s.reference for s in TASKS["truthfulqa_mc1"].loader()]
    assert first == [s.reference for s in TASKS["truthfulqa_mc1"].loader()]
    assert len(set(first)) > 2  # the dataset's correct option is always first: shuffling must move it


async def _run_all(programs):
    slots = asyncio.Semaphore(4)

    async def one(code):
        async with slots:
            return await run_program(code, timeout=5)

    return await asyncio.gather(*(one(p) for p in programs))


def test_humaneval_canonical_solutions_all_pass_and_broken_ones_fail():
    samples = TASKS["humaneval"].loader()
    assert len(samples) == 164
    canonical = [humaneval_program(s, s.reference, completions=True) for s in samples]
    results = asyncio.run(_run_all(canonical))
    failed = [(s.id, detail) for s, (ok, detail) in zip(samples, results, strict=True) if not ok]
    assert failed == []
    broken = [humaneval_program(s, "    return None\n", completions=True) for s in samples[:20]]
    assert not any(ok for ok, _ in asyncio.run(_run_all(broken)))


def test_humaneval_chat_reply_with_a_code_block():
    sample = TASKS["humaneval"].loader()[0]
    reply = f"Sure:\n```python\n{sample.extra['stub']}{sample.reference}```\nDone."
    ok, _ = asyncio.run(run_program(humaneval_program(sample, reply, completions=False)))
    assert ok


def test_an_infinite_loop_or_a_crash_costs_one_sample():
    ok, detail = asyncio.run(run_program("while True: pass", timeout=1))
    assert not ok and "timed out" in detail
    ok, detail = asyncio.run(run_program("import os; os.abort()"))
    assert not ok
    ok, detail = asyncio.run(run_program("x = bytearray(4 << 30)"))  # beyond the memory limit
    assert not ok and "MemoryError" in detail
