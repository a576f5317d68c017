"""Tests and thresholds: Fisher, noise funnel, detection floors, H1-H3 (method.md §5.8-5.11, §7)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats as sps

from deploysim.errors import StatsError
from deploysim.stats._base import FloatSeq, _count, _counts, _finite, _level, _rate, _same_length
from deploysim.stats.rates import jeffreys_rate, wilson_interval

# --------------------------------------------------------------------------- 5.8 Fisher


@dataclass(frozen=True, slots=True)
class FisherComparison:
    """Two-sided Fisher exact test of ``k_a/n_a`` vs ``k_b/n_b`` (§5.8).

    ``rate_ratio`` is ``J(k_a, n_a) / J(k_b, n_b)``; ``p_adjusted`` equals ``p_value`` unless a
    multiple-comparison correction was applied; ``significant`` is ``p_adjusted <= alpha``.
    """

    rate_ratio: float
    odds_ratio: float
    p_value: float
    p_adjusted: float
    significant: bool


def fisher_compare(
    k_a: int, n_a: int, k_b: int, n_b: int, *, alpha: float = 0.1
) -> FisherComparison:
    """Fisher exact test on ``[[k_a, n_a - k_a], [k_b, n_b - k_b]]``, two-sided (§5.8).

    The p-value sums the probabilities of all tables (same margins) no more likely than the
    observed one, SciPy's convention. Default ``alpha = 0.1``, uncorrected, as in the GPT-5.6
    card. Typically a = X→Y and b = Y→Y on the same prefixes.
    """
    return fisher_compare_many([(k_a, n_a, k_b, n_b)], alpha=alpha)[0]


def fisher_compare_many(
    tables: Sequence[tuple[int, int, int, int]],
    *,
    alpha: float = 0.1,
    correction: Literal["none", "bh"] = "none",
) -> tuple[FisherComparison, ...]:
    """:func:`fisher_compare` for many categories ``(k_a, n_a, k_b, n_b)``, optionally with BH.

    With ``correction="bh"`` the Benjamini-Hochberg adjusted p-values
    ``p_(i) * m / i`` (made monotone, capped at 1) are compared with ``alpha``, which then
    controls the false discovery rate across the categories.
    """
    if not 0.0 < alpha < 1.0:
        raise StatsError(f"alpha must be in (0, 1), got {alpha!r}")
    if correction not in ("none", "bh"):
        raise StatsError(f"correction must be 'none' or 'bh', got {correction!r}")
    rows: list[tuple[int, int, int, int, float, float]] = []
    for table in tables:
        if len(table) != 4:
            raise StatsError(f"a table is (k_a, n_a, k_b, n_b), got {table!r}")
        k_a, n_a, k_b, n_b = table
        k_a, n_a = _counts(k_a, n_a)
        k_b, n_b = _counts(k_b, n_b)
        res = sps.fisher_exact([[k_a, n_a - k_a], [k_b, n_b - k_b]], alternative="two-sided")
        rows.append((k_a, n_a, k_b, n_b, float(res.statistic), float(res.pvalue)))
    if not rows:
        return ()
    raw = np.array([row[5] for row in rows])
    adjusted = sps.false_discovery_control(raw, method="bh") if correction == "bh" else raw
    return tuple(
        FisherComparison(
            rate_ratio=jeffreys_rate(k_a, n_a) / jeffreys_rate(k_b, n_b),
            odds_ratio=odds,
            p_value=p,
            p_adjusted=float(p_adj),
            significant=bool(p_adj <= alpha),
        )
        for (k_a, n_a, k_b, n_b, odds, p), p_adj in zip(rows, adjusted, strict=True)
    )


# --------------------------------------------------------------------------- 5.9 noise funnel


def noise_funnel(
    k_prod: int, k_sim: int, *, level: float = 0.90, pseudocount: float = 0.5
) -> float:
    """SME band that holds ``level`` of the time when sim and production share one rate (§5.9).

    Delta method on the log ratio of two Poisson counts: ``Var(ln R) = 1/k_prod + 1/k_sim``, so
    ``band = exp(z * sqrt(1/k_prod + 1/k_sim))`` with ``z`` the ``(1 + level)/2`` normal quantile
    (1.645 at 90 %). Counts get ``+ pseudocount`` (method.md's assumption: K + 1/2; it keeps
    k = 0 finite). method.md's table uses raw counts: pass ``pseudocount=0`` to reproduce it.
    """
    k_prod, k_sim = _count("k_prod", k_prod), _count("k_sim", k_sim)
    if not pseudocount >= 0.0:
        raise StatsError(f"pseudocount must be >= 0, got {pseudocount!r}")
    kp, ks = k_prod + pseudocount, k_sim + pseudocount
    if kp <= 0.0 or ks <= 0.0:
        raise StatsError("noise_funnel needs positive counts (or a positive pseudocount)")
    z = float(sps.norm.ppf((1.0 + _level(level)) / 2.0))
    return math.exp(z * math.sqrt(1.0 / kp + 1.0 / ks))


# --------------------------------------------------------------------------- 5.10-5.11 floors


def detection_probability(rate: float, n: int) -> float:
    """Chance of seeing at least one event in n messages (§5.10): ``1 - exp(-rate * n)``."""
    return -math.expm1(-_rate("rate", rate) * _count("n", n))


def detection_sample_size(rate: float, probability: float = 0.95) -> int:
    """Smallest n with ``detection_probability(rate, n) >= probability``: ``ceil(-ln(1-P)/rate)``.

    At P = 0.95 this is about 3/rate (§5.10).
    """
    r = _rate("rate", rate, positive=True)
    return math.ceil(-math.log1p(-_level(probability)) / r)


def zero_event_upper_bound(n: int, level: float = 0.95) -> float:
    """Exact one-sided upper bound on the rate after 0 events in n (§5.10): ``1 - (1-level)^(1/n)``.

    About ``-ln(1 - level)/n = 2.996/n`` at 95 % (rule of three); unlike that approximation it
    stays <= 1 for tiny n.
    """
    n = _count("n", n, minimum=1)
    return -math.expm1(math.log1p(-_level(level)) / n)


@dataclass(frozen=True, slots=True)
class NovelTypeThreshold:
    """H3 threshold (§5.11): Poisson mean ``lam`` and the rate ``lam / n`` above which no
    undiscovered type can hide with family-wise confidence ``1 - alpha``."""

    lam: float
    rate: float


def novel_type_threshold(
    n: int, *, min_occurrences: int = 10, max_types: int = 10, alpha: float = 0.05
) -> NovelTypeThreshold:
    """Smallest ``lam`` with ``P(Poisson(lam) >= m) >= 1 - alpha/M_max``, and ``rate = lam/n``.

    ``P(Poisson(lam) >= m) = P(Gamma(m, 1) <= lam)``, so ``lam = Gamma(m).ppf(1 - alpha/M_max)``
    exactly (no root search): 19.998 for m = M_max = 10, alpha = 0.05.
    """
    n, m = _count("n", n, minimum=1), _count("min_occurrences", min_occurrences, minimum=1)
    types = _count("max_types", max_types, minimum=1)
    if not 0.0 < alpha < 1.0:
        raise StatsError(f"alpha must be in (0, 1), got {alpha!r}")
    lam = float(sps.gamma.ppf(1.0 - alpha / types, m))
    return NovelTypeThreshold(lam=lam, rate=lam / n)


# --------------------------------------------------------------------------- §7 H1-H2 tests


@dataclass(frozen=True, slots=True)
class PairedTest:
    """A one-sided paired sign-flip permutation test over categories (§7, H1 and H2).

    ``statistic`` is the mean of the paired differences (baseline loss minus method loss:
    positive means the method did better); ``p_value`` the share of sign assignments whose
    mean is at least as large; ``exact`` whether all ``2**n`` assignments were enumerated.
    """

    n: int
    statistic: float
    p_value: float
    exact: bool


#: Up to this many categories (2**20 sign assignments) the test is exact.
EXACT_CATEGORIES = 20


def paired_sign_flip_test(method_loss: FloatSeq, baseline_loss: FloatSeq) -> PairedTest:
    """Whether ``method_loss`` is lower than ``baseline_loss`` (paired, per category).

    Under the null hypothesis that neither method is better, each category's difference is as
    likely positive as negative; the p-value counts the sign assignments whose mean difference
    reaches the observed one (scipy's ``permutation_test``). Exact for up to
    :data:`EXACT_CATEGORIES` categories (with 6 categories p is a multiple of 1/64, as the
    paper's 3/64); beyond that 2**20 random assignments from a fixed seed.
    """
    method = _finite("method_loss", method_loss)
    baseline = _finite("baseline_loss", baseline_loss)
    n = _same_length(method_loss=method, baseline_loss=baseline)
    if n < 1:
        raise StatsError("a paired test needs at least one category")
    diff = baseline - method
    if n == 1:  # scipy wants two observations; one has two sign assignments, d and -d
        return PairedTest(
            n=1, statistic=float(diff[0]), p_value=0.5 if diff[0] > 0 else 1.0, exact=True
        )
    result = sps.permutation_test(
        (diff,),
        np.mean,
        permutation_type="samples",
        alternative="greater",
        n_resamples=2**EXACT_CATEGORIES,
        vectorized=True,
        random_state=0,
    )
    return PairedTest(
        n=n,
        statistic=float(np.mean(diff)),
        p_value=float(result.pvalue),
        exact=n <= EXACT_CATEGORIES,
    )


def newcombe_interval(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float]:
    """Newcombe's hybrid score 95% interval of p1 - p2 (method 10 of Newcombe 1998)."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_interval(k1, n1)
    l2, u2 = wilson_interval(k2, n2)
    d = p1 - p2
    return d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2)
