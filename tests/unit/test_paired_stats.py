"""launcher.paired.stats against values computed by hand and by scipy (the test extra installs it)."""

import itertools
import random
import statistics

import pytest
from scipy import stats as scipy_stats

from launcher.paired import stats


@pytest.mark.parametrize(
    ("improved", "regressed", "expected"),
    [
        (0, 0, 1.0),
        (1, 0, 1.0),  # 2 * P(X <= 0 | n=1) = 2 * 1/2
        (0, 5, 2 / 32),  # 2 * (1/2)^5, by hand
        (3, 10, 2 * (1 + 13 + 78 + 286) / 2**13),  # 2 * sum C(13, i), i <= 3, / 2^13
        (10, 10, 1.0),
        (0, 26, 2 / 2**26),  # the 79.5 % -> 73.0 % measurement: 26 regressions, 0 improvements
    ],
)
def test_mcnemar_exact_by_hand(improved, regressed, expected):
    assert stats.mcnemar_p(improved, regressed) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("b", "c"), [(3, 10), (12, 30), (500, 560), (40, 41), (0, 200)])
def test_mcnemar_matches_scipy_binomtest(b, c):
    assert stats.mcnemar_p(b, c) == pytest.approx(scipy_stats.binomtest(b, b + c, 0.5).pvalue, rel=1e-9)


@pytest.mark.parametrize(
    ("q", "df"), [(0.975, 1), (0.975, 2), (0.975, 9), (0.975, 399), (0.975, 99999), (0.6, 3)]
)
def test_t_quantile_matches_scipy(q, df):
    assert stats.t_quantile(q, df) == pytest.approx(scipy_stats.t.ppf(q, df), rel=1e-9)


def test_paired_counts_interval_and_mde():
    base = [1.0] * 320 + [0.0] * 80  # 80 %
    cand = [1.0] * 288 + [0.0] * 112  # 72 %: 32 of the same items lost
    r = stats.paired(base, cand)
    assert (r.n, r.improved, r.regressed, r.tied) == (400, 0, 32, 368)
    assert r.delta == pytest.approx(-0.08)
    # sd of 32 x -1 and 368 x 0 over n-1, by hand
    se = (((0.92**2) * 32 + (0.08**2) * 368) / 399 / 400) ** 0.5
    assert r.se == pytest.approx(se)
    half = scipy_stats.t.ppf(0.975, 399) * se
    assert r.ci == pytest.approx((-0.08 - half, -0.08 + half))
    assert r.test == "mcnemar" and r.p_value == pytest.approx(2 / 2**32)
    assert r.mde == pytest.approx((1.959963984540054 + 0.8416212335729143) * se)
    lo, hi = r.bootstrap_ci
    assert lo < -0.08 < hi and hi < 0  # the percentile interval brackets the delta


def test_bootstrap_is_stable_under_the_fixed_seed():
    rng = random.Random(5)
    base = [float(rng.random() < 0.7) for _ in range(300)]
    cand = [float(rng.random() < 0.6) for _ in range(300)]
    first, second = stats.paired(base, cand), stats.paired(base, cand)
    assert first.bootstrap_ci == second.bootstrap_ci
    assert stats.paired(base, cand, seed=1).bootstrap_ci != first.bootstrap_ci
    # and agrees with the analytic interval to a fraction of its width at this n
    width = first.ci[1] - first.ci[0]
    assert abs(first.bootstrap_ci[0] - first.ci[0]) < 0.1 * width
    assert abs(first.bootstrap_ci[1] - first.ci[1]) < 0.1 * width


def test_identical_runs_have_a_zero_interval_and_a_nonzero_mde():
    values = [1.0, 0.0, 1.0, 1.0] * 10
    r = stats.paired(values, values)
    assert (r.delta, r.ci, r.bootstrap_ci, r.p_value) == (0.0, (0.0, 0.0), (0.0, 0.0), 1.0)
    assert r.mde > 0.2  # 40 items cannot tell small effects apart even when nothing changed


def test_twenty_items_cannot_tell_a_five_point_drop():
    base = [1.0] * 16 + [0.0] * 4
    cand = [1.0] * 15 + [0.0] * 5
    assert stats.paired(base, cand).mde > 0.05


def test_repeats_are_averaged_per_item_first():
    assert stats.per_item({"a": [1.0, 0.0, 1.0, 0.0], "b": [1.0], "c": []}) == {"a": 0.5, "b": 1.0}
    r = stats.paired([0.5, 1.0, 0.25], [0.75, 1.0, 0.25])
    assert r.test == "permutation" and (r.improved, r.regressed, r.tied) == (1, 0, 2)


def test_sign_flip_exact_matches_enumeration():
    deltas = [0.3, -0.1, 0.25, 0.3, 0.05, 0.4, -0.2, 0.1, 0.15, 0.3, 0.0, 0.2]
    observed = abs(sum(deltas))
    nonzero = [d for d in deltas if d]
    sums = [
        abs(sum(s * d for s, d in zip(signs, nonzero, strict=True)))
        for signs in itertools.product((1, -1), repeat=11)
    ]
    expected = sum(s >= observed - 1e-12 for s in sums) / len(sums)
    p, method = stats.sign_flip_p(deltas, random.Random(0))
    assert method == "exact" and p == pytest.approx(expected)


def test_sign_flip_monte_carlo_is_seeded_and_close_to_scipy():
    rng = random.Random(3)
    deltas = [rng.gauss(0.03, 0.2) for _ in range(60)]
    p1, method = stats.sign_flip_p(deltas, random.Random(stats.SEED))
    p2, _ = stats.sign_flip_p(deltas, random.Random(stats.SEED))
    assert method == "monte-carlo" and p1 == p2
    reference = scipy_stats.permutation_test(
        (deltas,),
        lambda x, axis: abs(x.sum(axis=axis)),
        permutation_type="samples",
        alternative="greater",
        n_resamples=20000,
        random_state=0,
    ).pvalue
    assert p1 == pytest.approx(reference, abs=0.02)


def test_clustered_se_matches_the_formula_and_widens_the_interval():
    # two categories whose deltas move together: the clustered SE exceeds the independent one
    deltas = [-1.0] * 10 + [0.0] * 30 + [0.0] * 40
    cats = ["a"] * 40 + ["b"] * 40
    mean = sum(deltas) / 80
    e_a = sum(d - mean for d in deltas[:40])
    e_b = sum(d - mean for d in deltas[40:])
    assert stats.clustered_se(deltas, cats) == pytest.approx((2 / 1 * (e_a**2 + e_b**2) / 80**2) ** 0.5)
    base = [1.0] * 80
    cand = [1.0 + d for d in deltas]
    r = stats.paired(base, cand, cats)
    assert r.clusters == 2 and r.se == pytest.approx(stats.clustered_se(deltas, cats))
    assert r.ci[0] == pytest.approx(r.delta - scipy_stats.norm.ppf(0.975) * r.se)
    assert stats.paired(base, cand, ["x"] * 80).clusters == 0  # one category: the plain paired SE


@pytest.mark.parametrize(("n", "p"), [(1000, 0.3), (30, 0.2), (100000, 0.5), (7, 0.9)])
def test_binomial_draws_have_the_right_moments(n, p):
    rng = random.Random(11)
    draws = [stats.binomial(n, p, rng) for _ in range(20000)]
    assert all(0 <= x <= n for x in draws)
    assert statistics.mean(draws) == pytest.approx(n * p, rel=0.01, abs=0.05)
    assert statistics.variance(draws) == pytest.approx(n * p * (1 - p), rel=0.05)


def test_bad_input():
    with pytest.raises(ValueError):
        stats.paired([], [])
    with pytest.raises(ValueError):
        stats.paired([1.0], [1.0, 0.0])


def test_a_continuous_metric_on_many_items_stays_within_budget():
    rng = random.Random(9)
    base = [rng.random() for _ in range(5_000)]
    cand = [b + rng.gauss(0.01, 0.1) for b in base]
    r = stats.paired(base, cand)
    assert r.p_method == "normal" and r.bootstrap_resamples == 1000  # 5,000,000 draws / 5,000 items
    z = (
        abs(sum(c - b for b, c in zip(base, cand, strict=True)))
        / sum((c - b) ** 2 for b, c in zip(base, cand, strict=True)) ** 0.5
    )
    assert r.p_value == pytest.approx(2 * scipy_stats.norm.sf(z))
    assert r.bootstrap_ci[0] < r.delta < r.bootstrap_ci[1]
