"""Every built-in scorer on degenerate replies (1 MB of whitespace or newlines, "answer" + spaces): it
finishes within the scoring time limit (in a worker process, so a backtracking regex fails this test
instead of hanging it). The extractors themselves belong to the benchmarks; this only bounds them."""

import asyncio

import pytest

from launcher.harness.benchmarks import TASKS
from launcher.harness.scoring import ScorePool
from launcher.testing.endpoint import solve_with

REPLIES = {
    "spaces": " " * (1 << 20),
    "newlines": "\n" * (1 << 20),
    "answer-spaces": "the answer" + " " * (1 << 20) + "x",
    "mixed": "Answer: \n \t " * (1 << 16),
}
LIMIT = 5.0  # seconds: a bound far above linear time (about 0.1 s), far below a backtracking hang

CASES = [
    (name, endpoint_type)
    for name, task in sorted(TASKS.items())
    if task.score is not None
    for endpoint_type in task.endpoint_types
    if endpoint_type == "chat" or not task.metrics[0].startswith("acc")  # log-likelihood tasks score numbers
]


@pytest.mark.skipif(not CASES, reason="no built-in benchmark with a text scorer is registered yet")
@pytest.mark.parametrize(("name", "endpoint_type"), CASES or [("none", "chat")])
def test_degenerate_replies_are_scored_within_the_limit(name, endpoint_type):
    task = TASKS[name]
    sample = task.load()[0]

    async def score_all():
        pool = ScorePool("launcher.harness.benchmarks", name, 1, LIMIT)
        try:
            for reply in REPLIES.values():
                model, output = await solve_with(task, sample, endpoint_type, 0, reply=reply)
                if not model.prompts:
                    return  # this task sends no generation request: nothing to extract from text
                scores, _ = await pool.score(sample, output)
                assert set(task.metrics) <= set(scores)
        finally:
            await pool.close()

    asyncio.run(score_all())
