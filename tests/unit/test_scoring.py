"""The built-in benchmarks: data, declared contract, and scoring that is linear in the reply's length
(issue 12 H1) with the reference's verdict on the audit's cases (issue 13). Parity with the reference
implementations on recorded replies is in tests/parity/."""

import asyncio
import time

import pytest

from launcher.harness.api import Context, Generation, Sample, Task
from launcher.harness.benchmarks import TASKS, aime, gpqa, gsm8k, humaneval, multiple_choice

SIZES = {
    "gsm8k_cot": 1319,
    "gsm8k_cot_zeroshot": 1319,
    "aime2025": 30,
    "gpqa_diamond": 198,
    "hellaswag": 100,
    "truthfulqa_mc1": 100,
    "humaneval": 164,
    "humaneval_chat": 164,
    "synthetic": 10_000,
}


@pytest.mark.parametrize("name", sorted(SIZES))
def test_every_task_loads_its_items_and_declares_its_protocol(name):
    task: Task = TASKS[name]
    samples = task.load()
    assert len(samples) == SIZES[name]
    assert len({s.id for s in samples}) == len(samples)
    assert task.protocol and task.metrics and task.endpoint_types
    assert (task.score is None) != (task.program is None)
    if len(samples) < (task.size or 0):
        assert task.subsample, "a subsample says how it was drawn"
    else:
        assert task.size == len(samples) and not task.subsample


def test_variants_never_carry_a_reference_name_they_do_not_follow():
    assert "gsm8k" not in TASKS  # lm-eval's 5-shot gsm8k draws shots from the train split, not shipped
    assert TASKS["humaneval_chat"].protocol.count("own") == 1
    assert TASKS["aime2025"].protocol.endswith("(lm-eval: 1 greedy)")


MEGABYTE_INPUTS = [" " * 1_000_000, "\n" * 1_000_000, " \n\t" * 333_333, "answer" + " " * 1_000_000 + "x"]
MEGABYTE_INPUTS += ["Answer:" + " \t" * 500_000, "The answer is " + "1," * 500_000, "\\boxed{" * 200_000]
MEGABYTE_INPUTS += ["$" * 1_000_000, "```" * 333_333, "{" * 1_000_000, "[" * 1_000_000, "9" * 1_000_000]


def _score_all(reply: str) -> None:
    gsm8k.score(Sample("x", "q", "42"), {"response": reply})
    aime.score(Sample("x", "q", "42"), {"response": reply})
    gpqa.score(None, {"response": reply, "correct": "C"})
    sample = TASKS["humaneval_chat"].load()[0]
    humaneval.chat_program(sample, reply)


@pytest.mark.parametrize("reply", MEGABYTE_INPUTS, ids=lambda r: repr(r[:12]))
def test_extractors_are_linear_on_a_megabyte_of_degenerate_text(reply):
    # Linear extraction takes milliseconds here; the bound is far above that and far below what one
    # backtracking pattern needs on 1 MB (hours), so this cannot flake and does catch a regression.
    started = time.process_time()
    _score_all(reply)
    assert time.process_time() - started < 5.0


@pytest.mark.parametrize(
    ("reply", "strict", "flexible"),
    [
        ("<think>…the answer is 40…</think> \\boxed{42}", "[invalid]", "42"),
        ("4.2 × 10 = 42", "[invalid]", "42"),
        ("1 234", "[invalid]", "234"),
        ("The answer is 42.\n\nQ: next? A: The answer is 7.", "42", "7."),
        ("**Answer:** 42.0", "[invalid]", "42.0"),
    ],
)
def test_gsm8k_audit_cases_read_as_lm_eval_reads_them(reply, strict, flexible):
    scores, extracted = gsm8k.score(Sample("x", "q", "42"), {"response": reply})
    assert extracted == f"strict={strict} flexible={flexible}"
    assert scores["exact_match,strict-match"] == float(strict == "42")


@pytest.mark.parametrize(
    ("reply", "answer", "right"),
    [
        ("<think>…answer is 40…</think> \\boxed{42}", "42", 1.0),
        ("<think>\\boxed{40}</think> so \\boxed{42}", "42", 1.0),
        ("The answer is 42", "The answer is 42", 0.0),  # lm-eval aime25 reads only \boxed{} or $…$
        ("$42$", "42", 1.0),
        ("\\boxed{336^\\circ}", "336^\\circ", 1.0),
    ],
)
def test_aime_audit_cases(reply, answer, right):
    scores, extracted = aime.score(
        Sample("x", "q", "42" if "336" not in reply else "336"), {"response": reply}
    )
    assert (scores["exact_match"], extracted) == (right, answer)


@pytest.mark.parametrize(
    ("reply", "letter"),
    [
        ("Answer: $C$", "C"),
        ("The correct answer is option C.", None),
        ("Answer: [C]", None),
        ("The answer is a tough call, but I pick C", None),
        ("Answer: A\n...\nAnswer: C", "A"),  # the first match, as simple-evals
        ("answer: c", "c"),  # case-insensitive match, case-sensitive comparison: scored wrong
    ],
)
def test_gpqa_audit_cases_read_as_simple_evals_reads_them(reply, letter):
    assert gpqa.extract(reply) == letter
    assert gpqa.score(None, {"response": reply, "correct": "C"})[0]["accuracy"] == float(letter == "C")


def test_truthfulqa_is_scored_by_likelihood_so_no_letter_is_ever_read():
    # The audit's "…is: I have no comment, so A" read as I concerned a generative letter variant, not kept.
    sample = multiple_choice.load_truthfulqa_mc1()[0]
    lls = [-1.0] + [-2.0] * (len(sample.choices) - 1)
    assert multiple_choice.score_mc1(sample, {"loglikelihoods": lls})[0] == {"acc": 1.0}


def test_gpqa_shuffles_per_repeat_and_each_repeat_is_fixed():
    sample = gpqa.load()[0]
    firsts = {gpqa.arrange(sample, r)[1] for r in range(10)}
    assert len(firsts) > 1
    assert gpqa.arrange(sample, 3) == gpqa.arrange(sample, 3)


def test_multiple_choice_acc_norm_divides_by_characters():
    sample = Sample("x", "ctx", "1", ("ab", "abcdefgh"))
    scores, _ = multiple_choice.score(sample, {"loglikelihoods": [-2.0, -4.0]})
    assert scores == {"acc": 0.0, "acc_norm": 1.0}  # -1.0/char vs -0.5/char


def test_humaneval_chat_extraction():
    sample = TASKS["humaneval_chat"].load()[0]
    think = "<think>```python\ndef has_close_elements(a, b):\n    return 1\n```</think>"
    reply = (
        think + "Final:\r\n```Python\r\ndef has_close_elements(numbers, threshold):\r\n    return 2\r\n```"
    )
    reply += "\n```python\nassert has_close_elements([], 1) == 2\n```"
    code, whole = humaneval.reply_code(reply, "has_close_elements")
    assert whole and code == "def has_close_elements(numbers, threshold):\n    return 2\n"
    main = "def has_close_elements(n, t):\n    return 3\nif __name__ == '__main__':\n    exit()\nx = 1\n"
    assert humaneval.reply_code(f"```py\n{main}```", "has_close_elements")[0] == main.replace(
        "if __name__ == '__main__':\n    exit()\n", ""
    )
    program = humaneval.chat_program(sample, "```python\n    return 4\n```")
    assert program.startswith(sample.input + "    return 4\n")
    assert program.endswith(f"\ncheck({sample.extra['entry_point']})")
    assert sample.extra["canonical_solution"]


def _reply(name: str, sample: Sample, correct: bool, letter: str = "") -> str:
    """A reply the task scores 1 (correct) or 0: the formats the references read."""
    if name.startswith("gsm8k"):
        return f"Adding it up. The answer is {sample.target if correct else -987654}."
    if name == "aime2025":
        return f"So the answer is $\\boxed{{{sample.target if correct else 1000}}}$."
    if name == "gpqa_diamond":
        return f"Thinking...\nAnswer: {letter if correct else next(x for x in 'ABCD' if x != letter)}"
    return f"Answer: {sample.target if correct else -1}"


class Recorder:
    """A Model that records the requests solve() makes."""

    def __init__(self, endpoint_type: str):
        self.endpoint_type, self.sent = endpoint_type, []

    async def generate(self, prompt, **params):
        self.sent.append((prompt, params))
        return Generation("x", "stop", None)

    async def loglikelihood(self, context, continuation):
        self.sent.append((context, continuation))
        return -1.0, False


@pytest.mark.parametrize("name", sorted(SIZES))
def test_right_and_wrong_replies_score_one_and_zero(name):
    task = TASKS[name]
    samples = task.load()
    for sample in samples[:: max(1, len(samples) // 25)]:
        if task.program is not None:  # the program's run is the sandbox's; the canonical body is in it
            program = task.program(sample, {"response": sample.extra["canonical_solution"]})
            assert sample.input + sample.extra["canonical_solution"] in program
        elif sample.choices and name != "gpqa_diamond":  # log-likelihood: gold the likeliest
            gold = int(sample.target)
            lls = [-1.0 * len(c) if i == gold else -100.0 * len(c) for i, c in enumerate(sample.choices)]
            assert task.score(sample, {"loglikelihoods": lls})[0][task.metrics[0]] == 1.0
        else:
            for repeat in range(task.repeats):
                record = {"correct": gpqa.arrange(sample, repeat)[1]} if name == "gpqa_diamond" else {}
                for correct in (True, False):
                    record["response"] = _reply(name, sample, correct, record.get("correct", ""))
                    assert task.score(sample, record)[0][task.metrics[0]] == float(correct), sample.id


def test_solve_sends_the_reference_requests():
    sample = gsm8k.load()[0]
    model = Recorder("completions")
    ctx = Context(params={"temperature": 0.0, "max_tokens": 9, "parallelism": 4}, repeat=0)
    record = asyncio.run(TASKS["gsm8k_cot"].solve(sample, model, ctx))
    assert model.sent == [
        (gsm8k.fewshot_prompt(sample.input), {"temperature": 0.0, "max_tokens": 9, "stop": list(gsm8k.STOP)})
    ]
    assert record == {"response": "x", "finish_reason": "stop", "usage": None}
    g = gpqa.load()[5]
    model = Recorder("chat")
    for repeat in (0, 1):
        record = asyncio.run(TASKS["gpqa_diamond"].solve(g, model, Context(params={}, repeat=repeat)))
        assert (model.sent[-1][0], record["correct"]) == gpqa.arrange(g, repeat)
    h = multiple_choice.load_hellaswag()[0]
    model = Recorder("completions")
    asyncio.run(TASKS["hellaswag"].solve(h, model, Context(params={})))
    assert model.sent == [(h.input, " " + c) for c in h.choices]
    he = humaneval.load()[0]
    model = Recorder("chat")
    asyncio.run(TASKS["humaneval_chat"].solve(he, model, Context(params={})))
    assert model.sent == [(humaneval.INSTRUCTION + he.input, {})]


def test_gsm8k_flexible_extract_fast_path_equals_plain_findall():
    rng = __import__("random").Random(5)
    alphabet = "0123456789-$.,, ax\n"
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 30)))
        assert gsm8k._flexible_findall(text) == gsm8k.FLEXIBLE.findall(text)[-1:], repr(text)
