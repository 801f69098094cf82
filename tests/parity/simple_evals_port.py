"""A faithful port of the parts of openai/simple-evals that decide a GPQA score, kept beside the parity test.
Source: github.com/openai/simple-evals at commit ee3b0318d8d1d9d72755a4120879be65f7c07e9e, files common.py
(QUERY_TEMPLATE_MULTICHOICE, ANSWER_PATTERN_MULTICHOICE, format_multichoice_question) and gpqa_eval.py
(GPQAEval.__init__ and fn), with pandas.read_csv replaced by csv.DictReader (every cell of the five columns
read is a string there too).

Not nvidia-simple-evals 26.3 (the package NEL runs): it needs pandas, datasets, openai, scipy, sympy and
nemo-evaluator, and differs from upstream: ANSWER_PATTERN_MULTICHOICE without the optional '$' around the
letter, option orders from SeedGenerator(42) instead of Random(0), data from Idavidrein/gpqa via datasets.
Its QUERY_TEMPLATE_MULTICHOICE equals upstream's.
"""

import csv
import random
import re

QUERY_TEMPLATE_MULTICHOICE = """
Answer the following multiple choice question. The last line of your response should be of the following format: 'Answer: $LETTER' (without quotes) where LETTER is one of ABCD. Think step by step before answering.

{Question}

A) {A}
B) {B}
C) {C}
D) {D}
""".strip()  # noqa: E501

ANSWER_PATTERN_MULTICHOICE = r"(?i)Answer[ \t]*:[ \t]*\$?([A-D])\$?"


def gpqa_examples(csv_path, n_repeats=10):
    with open(csv_path, encoding="utf-8", newline="") as fh:
        examples = list(csv.DictReader(fh))
    rng = random.Random(0)
    examples = examples * n_repeats
    return [example | {"permutation": rng.sample(range(4), 4)} for example in examples]


def gpqa_prompt_and_answer(row):
    choices = [
        row["Correct Answer"],
        row["Incorrect Answer 1"],
        row["Incorrect Answer 2"],
        row["Incorrect Answer 3"],
    ]
    choices = [choices[i] for i in row["permutation"]]
    correct_answer = "ABCD"[choices.index(row["Correct Answer"])]
    choices_dict = dict(A=choices[0], B=choices[1], C=choices[2], D=choices[3], Question=row["Question"])
    return QUERY_TEMPLATE_MULTICHOICE.format(**choices_dict), correct_answer


def gpqa_score(response_text, correct_answer):
    match = re.search(ANSWER_PATTERN_MULTICHOICE, response_text)
    extracted_answer = match.group(1) if match else None
    return 1.0 if extracted_answer == correct_answer else 0.0
