"""Monte Carlo checks of deploysim's intervals and tail fit. Every simulation is seeded, so the
results are deterministic; run with ``pytest -s`` to see the printed coverage figures."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from deploysim.stats import (
    gumbel_tail_fit,
    gumbel_tail_from_counts,
    hajek_prevalence,
    jeffreys_interval,
    rogan_gladen,
)

DRAWS = 10_000


def _coverage(rate: float, n: int, rng: np.random.Generator) -> float:
    """Share of DRAWS binomial samples whose 95 % Jeffreys interval contains ``rate``."""
    ks = rng.binomial(n, rate, size=DRAWS)
    # One interval per distinct count (a few hundred at most), then map back to the draws.
    values, inverse = np.unique(ks, return_inverse=True)
    covered = np.array([jeffreys_interval(int(k), n).contains(rate) for k in values])
    return float(covered[inverse].mean())


# (rate, n): expected counts n * rate from 20 to 500, the regime the per-100k tables live in.
COVERAGE_CASES = [
    (10 / 100_000, 200_000),
    (25 / 100_000, 200_000),
    (50 / 100_000, 200_000),
    (0.05, 1_000),
    (0.3, 1_000),
    (0.5, 1_000),
]


@pytest.mark.parametrize(("rate", "n"), COVERAGE_CASES)
def test_jeffreys_95_coverage_simulation(rate: float, n: int) -> None:
    rng = np.random.default_rng(20_260_616 + int(rate * 1e6) + n)
    coverage = _coverage(rate, n, rng)
    print(f"Jeffreys 95% coverage: rate={rate:g} n={n} expected k={rate * n:g}: {coverage:.2%}")
    assert 0.93 <= coverage <= 0.97


def _exact_coverage(expected: float, n: int = 200_000, *, modified: bool = True) -> float:
    """Exact coverage of the 95 % interval at an expected count (binomial sum, no noise)."""
    ks = np.arange(0, int(expected * 4 + 60))
    rate = expected / n
    covered = np.array([jeffreys_interval(int(k), n, modified=modified).contains(rate) for k in ks])
    return float(sps.binom.pmf(ks, n, rate)[covered].sum())


def test_modified_jeffreys_fixes_the_dips_at_tiny_counts() -> None:
    # The plain interval (method.md §5.2) covers 91.7 % at an expected count of 3 and 92.8 % at
    # 5 (Brown, Cai & DasGupta 2001): the k = 0 and k = 1 upper bounds are too low. The modified
    # interval (Clopper-Pearson bounds at k <= 1) covers 96.6 % and 96.1 % there; its lowest
    # point over expected counts 0.5-30 is 92.3 % near 6.5 (docs/design/stats.md).
    assert _exact_coverage(3, modified=False) == pytest.approx(0.917, abs=2e-3)
    assert _exact_coverage(5, modified=False) == pytest.approx(0.9277, abs=5e-4)
    assert _exact_coverage(3) >= 0.96 and _exact_coverage(5) >= 0.955
    lowest = min(_exact_coverage(e) for e in np.arange(0.5, 30.0, 0.25))
    print(f"modified Jeffreys: lowest exact coverage over expected counts 0.5-30: {lowest:.1%}")
    assert 0.92 <= lowest < 0.93


@pytest.mark.parametrize("expected", [1, 3, 10])
def test_jeffreys_coverage_at_small_expected_counts(expected: int) -> None:
    # Done-when 1 of issue 19: simulated coverage at expected counts 1, 3 and 10.
    n = 100_000
    rng = np.random.default_rng(1900 + expected)
    coverage = _coverage(expected / n, n, rng)
    print(f"modified Jeffreys 95% coverage at expected k={expected}: {coverage:.2%}")
    assert 0.93 <= coverage <= 0.99


def _true_risk(slope: float, intercept: float, n: float) -> float:
    return math.exp(-math.exp(-(-math.log(n) - intercept) / slope))


def test_gumbel_fit_on_sampled_tail_within_an_order_of_magnitude() -> None:
    # Scores psi drawn with an exactly exponential tail S(psi) = exp(a psi + b) (the worked
    # example's line); fit the top 10 of m = 1000 and extrapolate 100x to 10^5 queries.
    # Stated tolerance (docs/design/stats.md): >= 80 % of fits within one order of magnitude
    # (Jones et al. report 86 % over 900 -> 90,000 queries), and the median error is an
    # over-prediction below 3x (the estimator is known to over-predict).
    a, b, m, n = -10.0, -26.2, 1000, 1e5
    rng = np.random.default_rng(2025)
    ratios = []
    for _ in range(400):
        psi = (np.log(rng.random(m)) - b) / a
        fit = gumbel_tail_fit(np.exp(-np.exp(-psi)), top_k=10)
        ratios.append(fit.worst_query_risk(n) / _true_risk(a, b, n))
    log_err = np.abs(np.log10(ratios))
    within = float(np.mean(log_err <= 1.0))
    print(f"Gumbel tail: {within:.1%} within 10x, median ratio {np.median(ratios):.2f}")
    assert within >= 0.80
    assert 1.0 <= float(np.median(ratios)) < 3.0


def test_gumbel_fit_from_resampled_prefixes() -> None:
    # Several samples per prefix: the true p_i follow a known tail, each prefix is regenerated
    # s = 1000 times, and the fit on J(k_i, s) must land within 2x of the true risk at 10^5
    # queries in at least 90 % of 200 replications (measured: all of them).
    a, b, m, s, n = -3.0, -9.0, 1000, 1000, 1e5
    rng = np.random.default_rng(7)
    ratios = []
    for _ in range(200):
        p = np.exp(-np.exp(-(np.log(rng.random(m)) - b) / a))
        fit = gumbel_tail_from_counts(rng.binomial(s, p).tolist(), s, top_k=10)
        ratios.append(fit.worst_query_risk(n) / _true_risk(a, b, n))
    assert float(np.mean(np.abs(np.log2(ratios)) <= 1.0)) >= 0.9


def _weighted_coverage(expected: float, reps: int = 2000, seed: int = 0) -> float:
    # A fixed population of 20,000 conversations of 1-7 turns; turns of short conversations are
    # sampled with probability 0.2, of long ones with 0.02 (Poisson sampling), and long
    # conversations carry 3x the propensity, which turns of one conversation share. Flags are
    # thinned so that about ``expected`` flagged turns land in a sample.
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 8, size=20_000)
    conv = np.repeat(np.arange(20_000), lengths)
    pi = np.where(lengths[conv] <= 3, 0.2, 0.02)
    propensity = rng.beta(0.3, 30, size=20_000) * np.where(lengths > 3, 3.0, 1.0)
    y = (rng.random(len(conv)) < propensity[conv]).astype(float)
    y *= rng.random(len(y)) < min(1.0, expected / float((pi * y).sum()))
    truth, hits = float(y.mean()), 0
    for _ in range(reps):
        s = rng.random(len(y)) < pi
        res = hajek_prevalence(y[s], pi[s], conv[s].tolist())
        hits += res.lower <= truth <= res.upper
    return hits / reps


@pytest.mark.parametrize("expected", [2, 10])
def test_weighted_prevalence_coverage_at_small_counts(expected: int) -> None:
    coverage = _weighted_coverage(expected)
    print(f"weighted (Hajek) 95% coverage at expected k={expected}: {coverage:.2%}")
    assert 0.92 <= coverage <= 0.99


def _draws_coverage(
    expected: float,
    *,
    clustered: bool,
    concentration: float = 10.0,
    reps: int = 2000,
    s: int = 5,
    m: int = 400,
) -> float:
    # 400 prefixes, 5 draws each; each prefix has its own rate p_i ~ Beta with mean
    # expected / 2000 and the given concentration c (intra-prefix correlation 1/(c + 1): 1/11 at
    # c = 10, design effect 1.36; 1/5 at c = 4, design effect 1.8). The target is the mean rate.
    rng = np.random.default_rng(5 + expected + int(concentration))
    mean = expected / (s * m)
    ids = np.repeat(np.arange(m), s).tolist()
    hits = 0
    for _ in range(reps):
        p = rng.beta(mean * concentration, (1 - mean) * concentration, size=m)
        flags = rng.random(s * m) < np.repeat(p, s)
        if clustered:
            res = hajek_prevalence(flags, None, ids, ids)
            hits += res.lower <= mean <= res.upper
        else:
            hits += jeffreys_interval(int(flags.sum()), s * m).contains(mean)
    return hits / reps


@pytest.mark.parametrize("expected", [2, 10, 50])
def test_draws_per_prefix_coverage(expected: int) -> None:
    coverage = _draws_coverage(expected, clustered=True)
    naive = _draws_coverage(expected, clustered=False, reps=1000)
    print(
        f"5 draws per prefix (correlation 1/11), expected k={expected}: clustered 95% coverage "
        f"{coverage:.2%}, counting draws as independent {naive:.2%}"
    )
    assert 0.92 <= coverage <= 0.99
    if expected >= 10:  # the pseudo-replication the clustered interval removes
        assert naive < coverage - 0.01


def test_draws_per_prefix_coverage_exception_at_strong_correlation() -> None:
    # The documented exception: with intra-prefix correlation 1/5 and 10 expected flags, the
    # flags come from a handful of prefixes, the variance estimate rests on those few, and the
    # clustered interval covers ~92 %; counting draws as independent covers ~83 %.
    coverage = _draws_coverage(10, clustered=True, concentration=4.0)
    naive = _draws_coverage(10, clustered=False, concentration=4.0, reps=1000)
    print(
        f"5 draws per prefix (correlation 1/5), expected k=10: clustered {coverage:.2%}, "
        f"independent {naive:.2%}"
    )
    assert 0.89 <= coverage <= 0.99 and naive < coverage - 0.05


def _rg_coverage(
    rate: float, se: float, sp: float, n_pos: int, n_neg: int, reps: int, n: int = 20_000
) -> tuple[float, float]:
    """Coverage of the Rogan-Gladen interval, and how often Sp was measured as 1."""
    rng = np.random.default_rng(int(rate * 1e5) + n_pos + n_neg)
    hits = perfect = 0
    for _ in range(reps):
        tp, tn = int(rng.binomial(n_pos, se)), int(rng.binomial(n_neg, sp))
        k = int(rng.binomial(n, rate * se + (1 - rate) * (1 - sp)))
        res = rogan_gladen(k / n, tp / n_pos, tn / n_neg, n=n, n_pos=n_pos, n_neg=n_neg)
        assert res.interval is not None
        hits += res.interval.contains(rate)
        perfect += tn == n_neg
    return hits / reps, perfect / reps


RG_CASES = [
    # rate, Se, Sp, validation positives, negatives: Sp = 1 is always measured as 1; Sp = 0.99
    # on 35 negatives is measured as 1 in 70 % of the validations.
    (0.01, 0.8, 1.0, 70, 35),
    (0.2, 0.9, 0.99, 100, 35),
    (0.02, 0.85, 0.97, 50, 100),
]


@pytest.mark.parametrize(("rate", "se", "sp", "n_pos", "n_neg"), RG_CASES)
def test_rogan_gladen_coverage(rate: float, se: float, sp: float, n_pos: int, n_neg: int) -> None:
    coverage, perfect = _rg_coverage(rate, se, sp, n_pos, n_neg, reps=2000)
    print(
        f"Rogan-Gladen 95% coverage: rate {rate}, Se {se} (n={n_pos}), Sp {sp} (n={n_neg}; "
        f"measured as 1 in {perfect:.0%}): {coverage:.2%}"
    )
    assert 0.92 <= coverage <= 0.995


def test_rogan_gladen_covers_always_when_validation_cannot_rule_out_zero() -> None:
    # The other documented exception: a 1 % rate with Sp 0.99 measured on 35 negatives. The
    # false-positive rate those 35 allow (up to ~8 %) dwarfs the rate, so every interval runs
    # from 0 to well above it, and coverage is ~100 %: honest, since the validation cannot
    # tell 1 % from 0, but above the 99 % the issue names.
    coverage, perfect = _rg_coverage(0.01, 0.9, 0.99, 100, 35, reps=500)
    print(f"Rogan-Gladen 95% coverage, rate 0.01, Sp 0.99 on 35 negatives: {coverage:.2%}")
    assert coverage > 0.99 and perfect > 0.5


def test_rogan_gladen_coverage_exception_when_false_positives_hide() -> None:
    # The documented exception: a false-positive rate of 2 % measured on 100 negatives is seen
    # as 0 of 100 in 13 % of validations, and the likelihood then rules out the true 2 %
    # (a boundary case of the likelihood-ratio interval). Coverage ~87-90 %.
    coverage, _ = _rg_coverage(0.002, 0.95, 0.98, 100, 100, reps=1000)
    print(f"Rogan-Gladen 95% coverage, rate 0.002, Se 0.95, Sp 0.98 (n=100 each): {coverage:.2%}")
    assert 0.8 <= coverage < 0.93
