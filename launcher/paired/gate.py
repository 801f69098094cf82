"""`launcher gate BASE CAND --policy FILE`: per task PASS / BREACH / INSUFFICIENT_EVIDENCE (MISSING for a
required task one run lacks), overall GO / NO-GO / INCONCLUSIVE, by the rules of NeMo Evaluator 0.3.0's
gate (nemo_evaluator/engine/gate.py), so the same policy on the same paired data gives the same verdicts:
- damage = the drop in the policy's direction (-delta when higher is better), on the paired per-item
  deltas; fewer than 10 paired items is INSUFFICIENT_EVIDENCE;
- with max_relative_drop (and the baseline below relative_guard_below, when set): a point-estimate damage
  above max_relative_drop x |baseline| is a BREACH;
- else the 95 % interval on the damage (paired t, clustered by category when items have one) decides:
  its lower end above max_drop is a BREACH, its upper end at or below max_drop a PASS, and an interval
  straddling max_drop is INSUFFICIENT_EVIDENCE (more items or repeats would decide);
- any critical or supporting BREACH or MISSING: NO-GO; else any INSUFFICIENT_EVIDENCE: INCONCLUSIVE;
  else GO. Advisory tasks are reported and never decide.
A task without per-sample records on either side is INSUFFICIENT_EVIDENCE, as in nel. Where we differ
from nel: runs whose items do not pair (different sample sets, protocols or limits) are refused
(launcher.paired.compare.NotPaired, exit 2) instead of gated on the items they happen to share.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from launcher.export.source import TaskRun
from launcher.paired import compare
from launcher.paired.policy import Policy, Rule

MIN_PAIRED_ITEMS = 10
PASS, BREACH, INSUFFICIENT, MISSING = "PASS", "BREACH", "INSUFFICIENT_EVIDENCE", "MISSING"
GO, NO_GO, INCONCLUSIVE = "GO", "NO-GO", "INCONCLUSIVE"
# Exit codes. nel gate 0.3.0 exits 1 on NO-GO and 2 on INCONCLUSIVE, and a bad argument also exits 2 there
# (click's usage error); we keep 2 for every bad input (one line on stderr), so INCONCLUSIVE is 3.
EXIT = {GO: 0, NO_GO: 1, INCONCLUSIVE: 3}
GATED_TIERS = ("critical", "supporting")


@dataclass(frozen=True)
class TaskVerdict:
    task: str
    rule: Rule
    status: str
    comparison: compare.TaskComparison | None = None  # None: MISSING
    damage: float | None = None
    damage_ci: tuple[float, float] | None = None
    relative_drop: float | None = None
    reasons: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        c = self.comparison
        return {
            "task": self.task,
            "tier": self.rule.tier,
            "status": self.status,
            "metric": c.metric if c else self.rule.metric,
            "direction": self.rule.direction,
            "max_drop": self.rule.max_drop,
            "max_relative_drop": self.rule.max_relative_drop,
            "relative_guard_below": self.rule.relative_guard_below,
            "damage": self.damage,
            "damage_ci": list(self.damage_ci) if self.damage_ci else None,
            "relative_drop": self.relative_drop,
            "reasons": list(self.reasons),
            "comparison": c.as_dict() if c else None,
        }


@dataclass(frozen=True)
class GateReport:
    verdict: str
    tasks: tuple[TaskVerdict, ...]
    reasons: tuple[str, ...]
    policy: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)
    base: tuple[str, ...] = ()
    candidate: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        return EXIT[self.verdict]

    def as_dict(self) -> dict:
        return {
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "reasons": list(self.reasons),
            "policy": self.policy,
            "base": list(self.base),
            "candidate": list(self.candidate),
            "tasks": [t.as_dict() for t in self.tasks],
            "notes": list(self.notes),
        }


def gate_runs(
    base: list[TaskRun],
    cand: list[TaskRun],
    policy: Policy,
    names: tuple[tuple[str, ...], tuple[str, ...]] = ((), ()),
) -> GateReport:
    base_tasks, cand_tasks = compare.by_task(base, "BASE"), compare.by_task(cand, "CAND")
    verdicts = [
        TaskVerdict(t, policy.rule(t), MISSING, reasons=(_missing(t, base_tasks, cand_tasks),))
        for t in policy.required()
        if t not in base_tasks or t not in cand_tasks
    ]
    for task in base_tasks:
        if task in cand_tasks:
            rule = policy.rule(task)
            try:
                verdicts.append(judge(compare.pair(base_tasks[task], cand_tasks[task], rule.metric), rule))
            except compare.NoRecords as err:  # as nel gate: no per-sample evidence, no decision
                verdicts.append(TaskVerdict(task, rule, INSUFFICIENT, reasons=(str(err),)))
    notes = tuple(
        f"{t}: only in {side}, not gated"
        for side, here, there in (("BASE", base_tasks, cand_tasks), ("CAND", cand_tasks, base_tasks))
        for t in here
        if t not in there and t not in policy.benchmarks
    )
    verdict, reasons = overall(verdicts)
    return GateReport(verdict, tuple(verdicts), tuple(reasons), policy.source, notes, *names)


def _missing(task: str, base: dict, cand: dict) -> str:
    sides = [side for side, runs in (("BASE", base), ("CAND", cand)) if task not in runs]
    return f"required task {task} has no run in {' and '.join(sides)}"


def judge(c: compare.TaskComparison, rule: Rule) -> TaskVerdict:
    s = c.stats
    sign = -1.0 if rule.direction == "higher_is_better" else 1.0
    damage = sign * s.delta + 0.0  # + 0.0: no -0.0 in the output
    lo, hi = sorted((sign * s.ci[0] + 0.0, sign * s.ci[1] + 0.0))
    reasons = []
    if any(c.errored):
        reasons.append(f"{c.errored[0]} BASE and {c.errored[1]} CAND item(s) errored and are not paired")

    def verdict(status: str, reason: str, relative: float | None = None) -> TaskVerdict:
        return TaskVerdict(c.task, rule, status, c, damage, (lo, hi), relative, (*reasons, reason))

    if s.n < MIN_PAIRED_ITEMS:
        return verdict(INSUFFICIENT, f"only {s.n} paired items (minimum {MIN_PAIRED_ITEMS})")
    guarded = rule.relative_guard_below is not None and s.base_mean >= rule.relative_guard_below
    if rule.max_relative_drop is not None and s.base_mean != 0 and damage > 0 and not guarded:
        relative = damage / abs(s.base_mean)
        if relative > rule.max_relative_drop:
            return verdict(
                BREACH,
                f"relative drop {relative:.1%} exceeds max_relative_drop {rule.max_relative_drop:.1%}",
                relative,
            )
    where = f"95 % CI on the damage [{lo:+.4f}, {hi:+.4f}] ({s.n} paired items)"
    if lo > rule.max_drop:
        return verdict(BREACH, f"{where} lies above max_drop {rule.max_drop:.4f}")
    if hi <= rule.max_drop:
        return verdict(PASS, f"{where} is within max_drop {rule.max_drop:.4f}")
    return verdict(
        INSUFFICIENT,
        f"{where} straddles max_drop {rule.max_drop:.4f}; the smallest detectable change here is "
        f"{s.mde:.4f}: more items or repeats would decide",
    )


def overall(verdicts: list[TaskVerdict]) -> tuple[str, list[str]]:
    gated = [v for v in verdicts if v.rule.tier in GATED_TIERS]

    def named(status: str) -> list[str]:
        return [f"{v.task} [{v.rule.tier}]" for v in gated if v.status == status]

    failed = [f"{status}: {', '.join(named(status))}" for status in (BREACH, MISSING) if named(status)]
    if failed:
        return NO_GO, failed
    if named(INSUFFICIENT):
        return INCONCLUSIVE, [f"{INSUFFICIENT}: {', '.join(named(INSUFFICIENT))}"]
    passed = named(PASS)
    return GO, [f"all {len(passed)} gated task(s) pass" if passed else "no gated task was evaluated"]
