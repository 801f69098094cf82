"""Paired statistics on per-item scores of two runs over the same items (standard library only).

Items are paired by id; a run's repeats are averaged per item before pairing, so the unit of analysis is
the item (delta = candidate - base). What is computed, and why this way:
- the delta's 95 % interval two ways: a paired bootstrap (percentile, fixed seed: the same input gives
  the same interval) and the analytic paired SE sd(d)/sqrt(n) with Student's t at n-1 degrees of
  freedom; with a category per item, the clustered SE sqrt(G/(G-1) * sum_g e_g² / n²) (e_g: the sum of
  the residuals d - mean in cluster g) and a normal quantile, as NeMo Evaluator 0.3.0's gate does
  (nemo_evaluator.metrics.confidence.clustered_ci), so its verdicts and ours agree;
- the p-value: the exact two-sided McNemar (binomial) test when every per-item value is 0 or 1, else a
  two-sided sign-flip permutation test (exact by convolution when the distribution of the sum stays
  small, otherwise seeded Monte Carlo, and its normal approximation past BUDGET draws);
- the minimum detectable effect at 80 % power and two-sided alpha 0.05: (z_.975 + z_.80) * SE.
Resampling draws counts per distinct delta value (a multinomial / binomials), not items, so 100,000
0/1 items cost what 100 do; a continuous metric (many distinct deltas) resamples items, with fewer
resamples past BUDGET (stated in the result).
"""

from __future__ import annotations

import math
import operator
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist

CONFIDENCE = 0.95
POWER = 0.80
SEED = 20260526  # fixed: the same records always give the same bootstrap interval and Monte Carlo p
BOOTSTRAP_RESAMPLES = 2000
PERMUTATIONS = 10000
EXACT_STATES = 200_000  # the exact sign-flip distribution is used while it has at most this many sums
DIRECT_RESAMPLING = 256  # more distinct deltas than this: resample items directly (continuous metrics)
BUDGET = (
    5_000_000  # draws per p-value or interval (about 2 s); past it fewer resamples, or a normal approximation
)
EXACT, MONTE_CARLO, NORMAL = "exact", "monte-carlo", "normal"


@dataclass(frozen=True)
class Paired:
    """The comparison of one metric on n paired items."""

    n: int
    base_mean: float
    cand_mean: float
    delta: float  # cand_mean - base_mean = mean of the per-item deltas
    improved: int  # items whose value went up
    regressed: int  # went down
    tied: int
    se: float  # analytic paired SE (clustered when categories were given)
    ci: tuple[float, float]  # analytic 95 % interval on the delta
    bootstrap_ci: tuple[float, float]  # paired bootstrap 95 % interval (percentile, seeded)
    test: str  # "mcnemar" (exact) or "permutation" (sign-flip)
    p_value: float  # two-sided
    mde: float  # minimum detectable |delta| at 80 % power, two-sided 5 %
    clusters: int = 0  # categories used for the clustered SE (0: none)
    p_method: str = "exact"  # how p was computed: exact, monte-carlo or normal (see sign_flip_p)
    bootstrap_resamples: int = BOOTSTRAP_RESAMPLES

    def as_dict(self) -> dict:
        return {
            "n": self.n,
            "base": self.base_mean,
            "candidate": self.cand_mean,
            "delta": self.delta,
            "improved": self.improved,
            "regressed": self.regressed,
            "tied": self.tied,
            "se": self.se,
            "ci": list(self.ci),
            "bootstrap_ci": list(self.bootstrap_ci),
            "test": self.test,
            "p_value": self.p_value,
            "p_method": self.p_method,
            "bootstrap_resamples": self.bootstrap_resamples,
            "mde": self.mde,
            "clusters": self.clusters,
        }


def per_item(values: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """item -> the mean of its repeats (items without a value are left out)."""
    return {item: sum(v) / len(v) for item, v in values.items() if v}


def paired(
    base: Sequence[float],
    cand: Sequence[float],
    categories: Sequence[str] | None = None,
    seed: int = SEED,
) -> Paired:
    """`base[i]` and `cand[i]` are the same item's per-item values; `categories[i]` its category."""
    n = len(base)
    if n != len(cand) or (categories is not None and len(categories) != n):
        raise ValueError("base, cand and categories must have one entry per item")
    if n == 0:
        raise ValueError("no paired items")
    deltas = list(map(operator.sub, cand, base))
    counts = Counter(deltas)  # 0/1 items: three distinct deltas, whatever n
    improved = sum(c for d, c in counts.items() if d > 0)
    regressed = sum(c for d, c in counts.items() if d < 0)
    mean = sum(d * c for d, c in counts.items()) / n
    clusters = len(set(categories)) if categories is not None else 0
    if clusters > 1:
        se = clustered_se(deltas, categories)
        half = NormalDist().inv_cdf(0.5 + CONFIDENCE / 2) * se
    else:
        clusters = 0
        se = _se(counts, n)
        half = t_quantile(0.5 + CONFIDENCE / 2, n - 1) * se if n > 1 else 0.0
    binary = set(base) <= {0.0, 1.0} and set(cand) <= {0.0, 1.0}
    rng = random.Random(seed)
    if binary:
        test, p, method = "mcnemar", mcnemar_p(improved, regressed), EXACT
    else:
        p, method = sign_flip_p(deltas, rng)
        test = "permutation"
    return Paired(
        n=n,
        base_mean=sum(base) / n,
        cand_mean=sum(cand) / n,
        delta=mean,
        improved=improved,
        regressed=regressed,
        tied=n - improved - regressed,
        se=se,
        ci=(mean - half, mean + half),
        bootstrap_ci=bootstrap_ci(deltas, rng, counts, resamples_for(len(counts), n)),
        test=test,
        p_value=p,
        mde=mde(se if se > 0 else unpaired_se(base, cand)),
        clusters=clusters,
        p_method=method,
        bootstrap_resamples=resamples_for(len(counts), n),
    )


# ---- standard errors and intervals ----------------------------------------------------------------------


def paired_se(deltas: Sequence[float]) -> float:
    return _se(Counter(deltas), len(deltas))


def _se(counts: Mapping[float, int], n: int) -> float:
    """sd / sqrt(n) from the counts of each distinct value."""
    if n < 2:
        return 0.0
    mean = sum(v * c for v, c in counts.items()) / n
    return math.sqrt(sum(c * (v - mean) ** 2 for v, c in counts.items()) / (n - 1) / n)


def clustered_se(deltas: Sequence[float], categories: Sequence[str]) -> float:
    """Cluster-robust SE of the mean: items of one category (an MMLU subject) are not independent."""
    n = len(deltas)
    mean = sum(deltas) / n
    sums: dict[str, float] = {}
    for d, c in zip(deltas, categories, strict=True):
        sums[c] = sums.get(c, 0.0) + (d - mean)
    g = len(sums)
    if g < 2:
        return paired_se(deltas)
    return math.sqrt(g / (g - 1) * sum(e * e for e in sums.values()) / (n * n))


def unpaired_se(base: Sequence[float], cand: Sequence[float]) -> float:
    """The SE of the difference of two independent means: the MDE's fallback when no item differs (the
    observed paired SD is then 0, which would claim any effect detectable)."""
    return math.sqrt(paired_se(base) ** 2 + paired_se(cand) ** 2) or 0.5 / math.sqrt(len(base))


def mde(se: float, power: float = POWER, confidence: float = CONFIDENCE) -> float:
    z = NormalDist()
    return (z.inv_cdf(0.5 + confidence / 2) + z.inv_cdf(power)) * se


def bootstrap_ci(
    deltas: Sequence[float],
    rng: random.Random,
    counts: Mapping[float, int] | None = None,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> tuple[float, float]:
    """Percentile interval of the mean delta over resamples of the items (with replacement)."""
    n = len(deltas)
    counts = counts if counts is not None else Counter(deltas)
    values = list(counts)
    if len(values) == 1:
        return values[0], values[0]
    means = []
    if len(values) <= DIRECT_RESAMPLING:
        probs = [counts[v] / n for v in values]
        for _ in range(resamples):
            drawn = multinomial(n, probs, rng)
            means.append(sum(k * v for k, v in zip(drawn, values, strict=True)) / n)
    else:
        for _ in range(resamples):
            means.append(sum(rng.choices(deltas, k=n)) / n)
    means.sort()
    tail = (1 - CONFIDENCE) / 2
    return _quantile(means, tail), _quantile(means, 1 - tail)


def _quantile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default)."""
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


# ---- tests ----------------------------------------------------------------------------------------------


def mcnemar_p(improved: int, regressed: int) -> float:
    """Exact two-sided McNemar p: the discordant items, binomial(b + c, 1/2), doubled smaller tail."""
    m, k = improved + regressed, min(improved, regressed)
    if m == 0:
        return 1.0
    return min(1.0, 2.0 * binomial_cdf(k, m, 0.5))


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k), X ~ binomial(n, p), summed in log space (n up to millions)."""
    if k >= n:
        return 1.0
    if k < 0:
        return 0.0
    lp, lq = math.log(p), math.log1p(-p)
    logs = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq
        for i in range(k + 1)
    ]
    top = max(logs)
    return min(1.0, math.exp(top) * sum(math.exp(x - top) for x in logs))


def sign_flip_p(deltas: Sequence[float], rng: random.Random, draws: int = PERMUTATIONS) -> tuple[float, str]:
    """Two-sided p of |sum d| under random signs per item (H0: the runs are exchangeable per item), and
    how it was computed: exactly by convolution while the distribution of the sum is small, else by
    seeded Monte Carlo (binomial sign counts per distinct |d|), and when even that would pass BUDGET
    (a continuous metric on very many items) by the normal approximation N(0, sum d²) of the sum."""
    sizes = Counter(abs(d) for d in deltas if d != 0)
    if not sizes:
        return 1.0, EXACT
    observed = abs(sum(deltas))
    tol = 1e-9 * max(1.0, observed)
    exact = _sign_flip_distribution(sizes)
    if exact is not None:
        return min(1.0, sum(p for s, p in exact.items() if abs(s) >= observed - tol)), EXACT
    if draws * len(sizes) > BUDGET:
        spread = math.sqrt(sum(c * v * v for v, c in sizes.items()))
        return min(1.0, 2 * (1 - NormalDist().cdf(observed / spread))), NORMAL
    hits = 0
    for _ in range(draws):
        total = sum(v * (2 * binomial(c, 0.5, rng) - c) for v, c in sizes.items())
        hits += abs(total) >= observed - tol
    return (hits + 1) / (draws + 1), MONTE_CARLO  # the observed labelling counts as one of the draws


def resamples_for(distinct: int, n: int) -> int:
    """Bootstrap resamples within BUDGET: all of them for few distinct deltas (their counts are drawn,
    not the items), fewer (at least 200) when items must be drawn one by one."""
    if distinct <= DIRECT_RESAMPLING:
        return BOOTSTRAP_RESAMPLES
    return max(200, min(BOOTSTRAP_RESAMPLES, BUDGET // n))


def _sign_flip_distribution(sizes: Mapping[float, int]) -> dict[float, float] | None:
    """sum -> probability of sum(v * s_i), s_i = ±1, by convolution; None when it would grow too big."""
    dist = {0.0: 1.0}
    for v, c in sizes.items():
        # c items of size v: (2 * binomial(c, 1/2) - c) * v
        if len(dist) * (c + 1) > EXACT_STATES:
            return None
        weights = [
            math.exp(math.lgamma(c + 1) - math.lgamma(j + 1) - math.lgamma(c - j + 1) - c * math.log(2))
            for j in range(c + 1)
        ]
        nxt: dict[float, float] = {}
        for s, p in dist.items():
            for j, w in enumerate(weights):
                key = round(s + (2 * j - c) * v, 9)
                nxt[key] = nxt.get(key, 0.0) + p * w
        dist = nxt
    return dist


# ---- distributions --------------------------------------------------------------------------------------


def t_quantile(q: float, df: int) -> float:
    """Student's t quantile (bisection on the CDF; |error| < 1e-10)."""
    if df < 1:
        raise ValueError("t_quantile needs df >= 1")
    if q == 0.5:
        return 0.0
    if q < 0.5:
        return -t_quantile(1 - q, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < q:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if t_cdf(mid, df) < q:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return (lo + hi) / 2


def t_cdf(t: float, df: float) -> float:
    tail = 0.5 * incomplete_beta(df / 2, 0.5, df / (df + t * t))
    return 1 - tail if t >= 0 else tail


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta I_x(a, b), by its continued fraction (modified Lentz)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x > (a + 1) / (a + b + 2):  # the fraction converges fast only below this point
        return 1.0 - incomplete_beta(b, a, 1 - x)
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    f = d
    for m in range(1, 500):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            f *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return front * f / a


def multinomial(n: int, probs: Sequence[float], rng: random.Random) -> list[int]:
    """Counts of n draws over categories with `probs`, by successive conditional binomials."""
    out, left, mass = [], n, 1.0
    for p in probs[:-1]:
        k = binomial(left, min(1.0, p / mass), rng) if left and mass > 0 else 0
        out.append(k)
        left -= k
        mass -= p
    out.append(left)
    return out


def binomial(n: int, p: float, rng: random.Random) -> int:
    """One binomial(n, p) draw: waiting times when n*p is small, else Hörmann's BTRS rejection sampler
    ("The generation of binomial random variates", 1993), O(1) in n."""
    if p <= 0 or n <= 0:
        return 0
    if p >= 1:
        return n
    if p > 0.5:
        return n - binomial(n, 1 - p, rng)
    if n * p < 10:
        x, y, c = 0, 0, math.log1p(-p)
        while True:
            y += math.floor(math.log(1.0 - rng.random()) / c) + 1
            if y > n:
                return x
            x += 1
    q = 1 - p
    spq = math.sqrt(n * p * q)
    b = 1.15 + 2.53 * spq
    a = -0.0873 + 0.0248 * b + 0.01 * p
    c = n * p + 0.5
    v_r = 0.92 - 4.2 / b
    alpha = (2.83 + 5.1 / b) * spq
    lpq = math.log(p / q)
    m = math.floor((n + 1) * p)
    h = math.lgamma(m + 1) + math.lgamma(n - m + 1)
    while True:
        u = rng.random() - 0.5
        v = rng.random()
        us = 0.5 - abs(u)
        if us == 0:
            continue
        k = math.floor((2 * a / us + b) * u + c)
        if k < 0 or k > n:
            continue
        if us >= 0.07 and v <= v_r:
            return k
        v = math.log(v * alpha / (a / (us * us) + b))
        if v <= h - math.lgamma(k + 1) - math.lgamma(n - k + 1) + (k - m) * lpq:
            return k
