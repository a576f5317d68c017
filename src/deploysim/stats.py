"""Statistics of deploysim (method.md §4-5, §7): pure functions, no I/O.

Conventions: a *rate* is a per-message probability in [0, 1]; counts are ``k`` flagged turns out
of ``n``. Every rate that enters a ratio, a log or an NLL should be Jeffreys-smoothed first
(:func:`jeffreys_rate`), so that zero counts never produce 0, inf or nan. Impossible inputs raise
:class:`~deploysim.errors.StatsError`. Results are floats or frozen dataclasses.

The prevalence estimator with its cluster bootstrap and the Gumbel-tail extrapolation live in
:mod:`deploysim.stats_tail`. Deviations from method.md's worked numbers: docs/design/stats.md.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import special
from scipy import stats as sps

from deploysim.errors import StatsError

#: A 1-D run of numbers: a list, tuple or NumPy array.
FloatSeq = Sequence[float] | npt.NDArray[Any]

PER_100K = 100_000.0


@dataclass(frozen=True, slots=True)
class Interval:
    """A closed interval ``[lower, upper]``."""

    lower: float
    upper: float

    def contains(self, x: float) -> bool:
        """Whether ``lower <= x <= upper``."""
        return self.lower <= x <= self.upper


# --------------------------------------------------------------------------- input checks


def _count(name: str, value: int, minimum: int = 0) -> int:
    # bool is an int subclass; a True/False count is always a caller bug.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise StatsError(f"{name} must be an integer count, got {value!r}")
    if value < minimum:
        raise StatsError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _counts(k: int, n: int) -> tuple[int, int]:
    k, n = _count("k", k), _count("n", n)
    if n == 0:
        # The Jeffreys posterior of an empty sample is the prior (rate 0.5): a silent 50 % rate
        # would hide an upstream bug, so an empty sample is refused.
        raise StatsError("n must be >= 1: a rate needs at least one graded turn")
    if k > n:
        raise StatsError(f"k = {k} flagged turns cannot exceed n = {n} turns")
    return k, n


def _rate(name: str, value: float, *, positive: bool = False) -> float:
    v = float(value)
    if not (0.0 <= v <= 1.0):  # also rejects nan
        raise StatsError(f"{name} must be a rate in [0, 1], got {value!r}")
    if positive and v == 0.0:
        raise StatsError(f"{name} must be > 0 (pass a Jeffreys-smoothed rate), got 0")
    return v


def _level(level: float) -> float:
    if not (0.0 < level < 1.0):
        raise StatsError(f"confidence level must be in (0, 1), got {level!r}")
    return float(level)


def _rates(name: str, values: FloatSeq, *, positive: bool = False) -> npt.NDArray[np.float64]:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise StatsError(f"{name} must be a 1-D sequence of rates")
    if not np.all((arr > 0.0 if positive else arr >= 0.0) & (arr <= 1.0)):
        bound = "(0, 1]; pass Jeffreys-smoothed rates" if positive else "[0, 1]"
        raise StatsError(f"every {name} must be a rate in {bound}")
    return arr


def _finite(name: str, values: FloatSeq) -> npt.NDArray[np.float64]:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1 or not np.all(np.isfinite(arr)):
        raise StatsError(f"{name} must be a 1-D sequence of finite numbers")
    return arr


def _same_length(**arrays: npt.NDArray[np.float64]) -> int:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise StatsError(f"sequences must have equal lengths, got {lengths}")
    return next(iter(lengths.values()))


# --------------------------------------------------------------------------- 5.1-5.3 rates


def jeffreys_rate(k: int, n: int) -> float:
    """Jeffreys-smoothed rate (§5.1): ``J(k, n) = (k + 1/2) / (n + 1)``.

    The posterior mean under the Beta(1/2, 1/2) prior; never 0 or 1, so it is safe in ratios,
    logs and NLLs.
    """
    k, n = _counts(k, n)
    return (k + 0.5) / (n + 1)


def jeffreys_interval(k: int, n: int, level: float = 0.95) -> Interval:
    """Jeffreys interval (§5.2): quantiles ``a/2`` and ``1 - a/2`` of Beta(k + 1/2, n - k + 1/2).

    ``a = 1 - level``. The lower bound is 0 when k = 0 and the upper bound 1 when k = n (the
    usual boundary fix: a zero count cannot rule out a zero rate).
    """
    k, n = _counts(k, n)
    tail = (1.0 - _level(level)) / 2.0
    a, b = k + 0.5, n - k + 0.5
    lower = 0.0 if k == 0 else float(sps.beta.ppf(tail, a, b))
    upper = 1.0 if k == n else float(sps.beta.ppf(1.0 - tail, a, b))
    return Interval(lower, upper)


def per_100k(rate: float) -> float:
    """Display form of a rate (§5.3): ``rate * 10^5`` events per 100,000 messages."""
    return _rate("rate", rate) * PER_100K


# --------------------------------------------------------------------------- 5.4 SME


def sme(a: float, b: float) -> float:
    """Symmetric multiplicative error (§5.4): ``SME(a, b) = max(a/b, b/a) >= 1``.

    Both rates must be > 0; pass Jeffreys-smoothed rates.
    """
    a, b = _rate("a", a, positive=True), _rate("b", b, positive=True)
    return max(a / b, b / a)


@dataclass(frozen=True, slots=True)
class SmeSummary:
    """Median, 90th percentile and maximum of a set of SMEs (§5.4, §7)."""

    median: float
    p90: float
    max: float
    n: int


def sme_summary(forecast: FloatSeq, realised: FloatSeq) -> SmeSummary:
    """Summarise ``SME(forecast_i, realised_i)`` over pairs: median, 90th percentile, maximum.

    Percentiles use linear interpolation between order statistics (NumPy's default).
    """
    f, r = _rates("forecast", forecast, positive=True), _rates("realised", realised, positive=True)
    n = _same_length(forecast=f, realised=r)
    if n == 0:
        raise StatsError("sme_summary needs at least one pair")
    errors = np.maximum(f / r, r / f)
    return SmeSummary(
        median=float(np.median(errors)),
        p90=float(np.percentile(errors, 90)),
        max=float(errors.max()),
        n=n,
    )


# --------------------------------------------------------------------------- 5.5 direction


@dataclass(frozen=True, slots=True)
class DirectionalAccuracy:
    """Directional accuracy over the categories whose realised change is large enough (§5.5).

    ``outcomes[i]`` is True/False for an included category and None for an excluded one;
    ``accuracy`` is None when no category qualifies.
    """

    correct: int
    total: int
    outcomes: tuple[bool | None, ...]
    accuracy: float | None


def directional_accuracy(
    forecast: FloatSeq,
    prod_x: FloatSeq,
    prod_y: FloatSeq,
    *,
    reference: FloatSeq | None = None,
    min_change: float = 1.5,
) -> DirectionalAccuracy:
    """Share of categories whose forecast moves the same way as production (§5.5).

    A category counts only when ``SME(prod_x, prod_y) >= min_change``. It is correct when
    ``sign(forecast - ref) == sign(prod_x - prod_y)`` with ``ref = prod_y``, or
    ``ref = reference`` (e.g. r(Y→Y), the sim-vs-sim option robust to fixed pipeline bias).
    A forecast equal to its reference (a tie) counts as wrong.
    """
    f = _rates("forecast", forecast)
    px, py = _rates("prod_x", prod_x, positive=True), _rates("prod_y", prod_y, positive=True)
    ref = py if reference is None else _rates("reference", reference)
    _same_length(forecast=f, prod_x=px, prod_y=py, reference=ref)
    if not min_change >= 1.0:
        raise StatsError(f"min_change is an SME and must be >= 1, got {min_change!r}")
    # A relative slack of 1e-12 keeps an exact 1.5x change (e.g. 0.3/0.2 = 1.4999999999999998
    # in floating point) inside the >= 1.5x set.
    threshold = min_change * (1.0 - 1e-12)
    outcomes: list[bool | None] = []
    for fi, xi, yi, ri in zip(f, px, py, ref, strict=True):
        if max(xi / yi, yi / xi) < threshold:
            outcomes.append(None)
            continue
        predicted = np.sign(fi - ri)
        outcomes.append(bool(predicted != 0 and predicted == np.sign(xi - yi)))
    judged = [o for o in outcomes if o is not None]
    correct = sum(judged)
    return DirectionalAccuracy(
        correct=correct,
        total=len(judged),
        outcomes=tuple(outcomes),
        accuracy=correct / len(judged) if judged else None,
    )


# --------------------------------------------------------------------------- 5.6 NLL


def binomial_nll(forecast: float, k: int, n: int) -> float:
    """Binomial negative log-likelihood in nats (§5.6): ``NLL(f) = -log Binom(k; n, f)``.

    ``forecast`` should be Jeffreys-smoothed; a forecast of 0 (or 1) that the counts contradict
    scores ``inf``.
    """
    f = _rate("forecast", forecast)
    k, n = _counts(k, n)
    return -float(sps.binom.logpmf(k, n, f))


def nll_regret(forecast: float, k: int, n: int) -> float:
    """NLL regret (§5.6): ``NLL(f) - NLL(k/n) = k ln(p/f) + (n-k) ln((1-p)/(1-f)) >= 0``, p = k/n.

    The binomial coefficient cancels, so the kernel is computed directly (``xlogy`` handles
    k = 0 and k = n); this is ``n`` times the Bernoulli KL divergence of f from p.
    """
    f = _rate("forecast", forecast)
    k, n = _counts(k, n)
    p = k / n
    value = (special.xlogy(k, p) - special.xlogy(k, f)) + (
        special.xlog1py(n - k, -p) - special.xlog1py(n - k, -f)
    )
    # Mathematically >= 0; clamp the last-bit rounding when f is (almost) the MLE.
    return max(0.0, float(value))


# --------------------------------------------------------------------------- 5.7 correlation


@dataclass(frozen=True, slots=True)
class LogCorrelation:
    """Pearson r of log10 rates and Spearman rho (rank-based, so unaffected by the log)."""

    pearson: float
    spearman: float
    n: int


def log_correlation(forecast: FloatSeq, realised: FloatSeq) -> LogCorrelation:
    """Log-scale agreement (§5.7): Pearson r of log10 forecast vs log10 realised; Spearman rho.

    Rates must be > 0 (smoothed). Correlation is not calibration: a constant factor is invisible.
    """
    f, r = _rates("forecast", forecast, positive=True), _rates("realised", realised, positive=True)
    n = _same_length(forecast=f, realised=r)
    if n < 2:
        raise StatsError(f"a correlation needs at least 2 pairs, got {n}")
    if np.all(f == f[0]) or np.all(r == r[0]):
        raise StatsError("a correlation is undefined when one side is constant")
    pearson = float(sps.pearsonr(np.log10(f), np.log10(r)).statistic)
    spearman = float(sps.spearmanr(f, r).statistic)
    return LogCorrelation(pearson=pearson, spearman=spearman, n=n)


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


# --------------------------------------------------------------------------- 5.12-5.13 errors


@dataclass(frozen=True, slots=True)
class ErrorDecomposition:
    """Total error split into prefix error and fidelity (§5.12).

    ``log_*`` are signed natural logs with ``log_total = log_prefix + log_fidelity_x``; the other
    fields are the matching SMEs. ``fidelity_y`` (Y→Y vs prod Y, known before release) is None
    when its inputs were not given.
    """

    total: float
    prefix: float
    fidelity_x: float
    fidelity_y: float | None
    log_total: float
    log_prefix: float
    log_fidelity_x: float


def error_decomposition(
    *,
    sim_xy: float,
    sim_xx: float,
    prod_x: float,
    sim_yy: float | None = None,
    prod_y: float | None = None,
) -> ErrorDecomposition:
    """Split the forecast error (§5.12): ``ln(xy/prod_x) = ln(xy/xx) + ln(xx/prod_x)``.

    total = SME(X→Y, prod X); prefix = SME(X→Y, X→X); fidelity_x = SME(X→X, prod X);
    fidelity_y = SME(Y→Y, prod Y). Rates must be > 0 (smoothed).
    """
    xy, xx = _rate("sim_xy", sim_xy, positive=True), _rate("sim_xx", sim_xx, positive=True)
    px = _rate("prod_x", prod_x, positive=True)
    if (sim_yy is None) != (prod_y is None):
        raise StatsError("give both sim_yy and prod_y, or neither")
    fidelity_y = None if sim_yy is None or prod_y is None else sme(sim_yy, prod_y)
    log_prefix, log_fid = math.log(xy / xx), math.log(xx / px)
    return ErrorDecomposition(
        total=sme(xy, px),
        prefix=sme(xy, xx),
        fidelity_x=sme(xx, px),
        fidelity_y=fidelity_y,
        log_total=log_prefix + log_fid,
        log_prefix=log_prefix,
        log_fidelity_x=log_fid,
    )


@dataclass(frozen=True, slots=True)
class BiasCorrectedForecast:
    """``rate`` with interval ``[rate / factor, rate * factor]`` (§5.13); ``se_log`` = SE of ln."""

    rate: float
    lower: float
    upper: float
    se_log: float
    factor: float


def bias_corrected_forecast(
    *,
    prod_y: float,
    sim_xy: float,
    sim_yy: float,
    k_prod_y: int,
    k_xy: int,
    k_yy: int,
    level: float = 0.95,
    pseudocount: float = 0.5,
) -> BiasCorrectedForecast:
    """Forecast corrected for a fixed multiplicative pipeline bias (§5.13, an assumption).

    ``r = prod_y * sim_xy / sim_yy``; ``Var(ln r) = 1/K_prodY + 1/K_XY + 1/K_YY`` (Poisson,
    ignores the pairing of X→Y and Y→Y, hence conservative), counts ``+ pseudocount`` as in
    :func:`noise_funnel`; interval ``r ×/÷ exp(z * SE)``. ``rate`` may exceed 1 in principle and
    is returned unclipped. method.md's example uses raw counts (``pseudocount=0``).
    """
    py = _rate("prod_y", prod_y, positive=True)
    xy, yy = _rate("sim_xy", sim_xy, positive=True), _rate("sim_yy", sim_yy, positive=True)
    counts = [
        _count(name, k) for name, k in (("k_prod_y", k_prod_y), ("k_xy", k_xy), ("k_yy", k_yy))
    ]
    if not pseudocount >= 0.0 or min(counts) + pseudocount <= 0.0:
        raise StatsError(
            "bias_corrected_forecast needs positive counts (or a positive pseudocount)"
        )
    se_log = math.sqrt(sum(1.0 / (k + pseudocount) for k in counts))
    factor = math.exp(float(sps.norm.ppf((1.0 + _level(level)) / 2.0)) * se_log)
    rate = py * xy / yy
    return BiasCorrectedForecast(rate, rate / factor, rate * factor, se_log, factor)


# --------------------------------------------------------------------------- §4 graders


@dataclass(frozen=True, slots=True)
class RoganGladen:
    """Prevalence corrected for grader error (§4).

    ``correctable`` is False when ``Se + Sp - 1 < 0.05``: ``estimate`` is then the observed rate,
    uncorrected. ``clipped`` says the raw correction fell outside [0, 1]. ``interval`` (delta
    method) is None when no sample size was given.
    """

    estimate: float
    correctable: bool
    clipped: bool
    interval: Interval | None


def rogan_gladen(
    p_obs: float,
    sensitivity: float,
    specificity: float,
    *,
    n: int | None = None,
    n_pos: int | None = None,
    n_neg: int | None = None,
    level: float = 0.95,
    min_youden: float = 0.05,
) -> RoganGladen:
    """Rogan-Gladen correction: ``p = clip((p_obs + Sp - 1) / (Se + Sp - 1), 0, 1)`` (§4).

    Interval by the delta method when ``n`` (sample size behind p_obs) is given:
    ``Var(p) = [p_obs(1-p_obs)/n + p^2 Se(1-Se)/n_pos + (1-p)^2 Sp(1-Sp)/n_neg] / (Se+Sp-1)^2``,
    where ``n_pos``/``n_neg`` are the positives/negatives of the grader's validation set (a term
    is dropped when its size is not given, i.e. Se or Sp treated as known); the unclipped
    interval ``p ± z SE`` is then clipped to [0, 1].
    """
    p = _rate("p_obs", p_obs)
    se, sp = _rate("sensitivity", sensitivity), _rate("specificity", specificity)
    z = float(sps.norm.ppf((1.0 + _level(level)) / 2.0))
    fpr = 1.0 - sp
    youden = se - fpr
    correctable = youden >= min_youden
    if not correctable:  # report p_obs itself: the identity correction, with no Se/Sp terms
        fpr, youden, n_pos, n_neg = 0.0, 1.0, None, None
    # (p_obs - (1 - Sp)) / (Se - (1 - Sp)) rather than (p_obs + Sp - 1) / ...: with Sp = 1 the
    # subtraction is exact, so Se = Sp = 1 returns p_obs bit for bit.
    raw = (p - fpr) / youden
    estimate = min(1.0, max(0.0, raw))
    interval = None
    if n is not None:
        var = p * (1.0 - p) / _count("n", n, minimum=1)
        if n_pos is not None:
            var += raw**2 * se * (1.0 - se) / _count("n_pos", n_pos, minimum=1)
        if n_neg is not None:
            var += (1.0 - raw) ** 2 * sp * (1.0 - sp) / _count("n_neg", n_neg, minimum=1)
        half = z * math.sqrt(var) / youden
        interval = Interval(min(1.0, max(0.0, raw - half)), min(1.0, max(0.0, raw + half)))
    return RoganGladen(estimate, correctable, clipped=raw != estimate, interval=interval)


@dataclass(frozen=True, slots=True)
class GraderValidation:
    """A grader scored against human labels (§4), each figure with its Jeffreys interval.

    ``precision`` is None when the grader flagged nothing.
    """

    sensitivity: float
    specificity: float
    precision: float | None
    sensitivity_ci: Interval
    specificity_ci: Interval
    precision_ci: Interval | None
    n_pos: int
    n_neg: int


def grader_validation(
    tp: int, fn: int, tn: int, fp: int, *, level: float = 0.95
) -> GraderValidation:
    """Se = tp/(tp+fn), Sp = tn/(tn+fp), precision = tp/(tp+fp), with Jeffreys intervals.

    Point values are the plain proportions (they feed :func:`rogan_gladen`); the intervals are
    :func:`jeffreys_interval`.
    """
    tp, fn, tn, fp = _count("tp", tp), _count("fn", fn), _count("tn", tn), _count("fp", fp)
    if tp + fn == 0 or tn + fp == 0:
        raise StatsError("grader validation needs at least one human-positive and one negative")
    flagged = tp + fp
    return GraderValidation(
        sensitivity=tp / (tp + fn),
        specificity=tn / (tn + fp),
        precision=tp / flagged if flagged else None,
        sensitivity_ci=jeffreys_interval(tp, tp + fn, level),
        specificity_ci=jeffreys_interval(tn, tn + fp, level),
        precision_ci=jeffreys_interval(tp, flagged, level) if flagged else None,
        n_pos=tp + fn,
        n_neg=tn + fp,
    )
