"""The built-in benchmarks: data, declared contract, and scoring that is linear in the reply's length
(issue 12 H1) with the reference's verdict on the audit's cases (issue 13). Parity with the reference
implementations on recorded replies is in tests/parity/."""

import time

import pytest

from launcher.harness.api import Sample, Task
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


@pytest.mark.parametrize("name", sorted(SIZES))
def test_the_oracle_replies_score_right_and_wrong(name):
    import asyncio

    from launcher.harness.benchmarks import oracle

    task = TASKS[name]
    samples = task.load()[:: max(1, len(task.load()) // 25)]
    for sample in samples:
        if (
            task.score is None
        ):  # code: the program's run is the sandbox's; check the reply becomes the program
            right = task.program(sample, {"response": oracle.reply(name, sample, "", True)})
            assert sample.extra["canonical_solution"] in right
            continue
        prompts = oracle.prompts(name, sample)
        if not prompts:  # log-likelihood: the gold continuation gets the best log-likelihood
            requests = oracle.continuations(name, sample)
            lls = [-1.0 * len(cont) if gold else -100.0 * len(cont) for _, cont, gold in requests]
            assert task.score(sample, {"loglikelihoods": lls})[0][task.metrics[0]] == 1.0
            continue
        for repeat, prompt in enumerate(prompts):
            record = {"response": oracle.reply(name, sample, prompt, True)}
            if name == "gpqa_diamond":
                record["correct"] = gpqa.arrange(sample, repeat)[1]
            assert task.score(sample, record)[0][task.metrics[0]] == 1.0, (sample.id, repeat)
            record["response"] = oracle.reply(name, sample, prompt, False)
            assert task.score(sample, record)[0][task.metrics[0]] == 0.0, (sample.id, repeat)

    class Recorder:  # the prompts listed are the ones solve() sends
        endpoint_type = task.endpoint_types[0]
        sent: list = []

        async def generate(self, prompt, **params):
            from launcher.harness.api import Generation

            self.sent.append(prompt)
            return Generation("x", "stop", None)

        async def loglikelihood(self, context, continuation):
            self.sent.append((context, continuation))
            return -1.0, False

    from launcher.harness.api import Context

    sample = samples[0]
    for repeat in range(3 if name == "gpqa_diamond" else 1):
        asyncio.run(task.solve(sample, Recorder(), Context(params={}, repeat=repeat)))
    expected = oracle.prompts(name, sample)[:3] or [(c, x) for c, x, _ in oracle.continuations(name, sample)]
    assert Recorder.sent == expected
