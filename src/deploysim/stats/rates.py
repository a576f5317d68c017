"""Rates and forecast-error measures (method.md §5.1-5.7)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special
from scipy import stats as sps

from deploysim.errors import StatsError
from deploysim.stats._base import (
    PER_100K,
    FloatSeq,
    Interval,
    _counts,
    _level,
    _rate,
    _rates,
    _same_length,
)

# --------------------------------------------------------------------------- 5.1-5.3 rates


def jeffreys_rate(k: int, n: int) -> float:
    """Jeffreys-smoothed rate (§5.1): ``J(k, n) = (k + 1/2) / (n + 1)``.

    The posterior mean under the Beta(1/2, 1/2) prior; never 0 or 1, so it is safe in ratios,
    logs and NLLs.
    """
    k, n = _counts(k, n)
    return (k + 0.5) / (n + 1)


def jeffreys_interval(k: int, n: int, level: float = 0.95, *, modified: bool = True) -> Interval:
    """Jeffreys interval (§5.2): quantiles ``a/2`` and ``1 - a/2`` of Beta(k + 1/2, n - k + 1/2).

    ``a = 1 - level``. The lower bound is 0 when k = 0 and the upper bound 1 when k = n.
    ``modified`` (the default) is Brown, Cai & DasGupta's (2001) modified Jeffreys interval:
    at k = 0 and 1 (and n - 1, n) the bounds are Clopper-Pearson's, because the plain
    interval's coverage dips to 90-92 % at expected counts near 0.1, 2.5 and 5, which is
    where rare behaviours live (docs/design/stats.md). ``modified=False`` is method.md's
    interval as printed.
    """
    k, n = _counts(k, n)
    return beta_interval(k, n, level, modified=modified)


def beta_interval(k: float, n: float, level: float = 0.95, *, modified: bool = True) -> Interval:
    """:func:`jeffreys_interval` for an effective count ``k`` of an effective size ``n``.

    Design-based intervals (weighted or clustered samples) pass ``k = p * n_eff`` and
    ``n = n_eff``, which need not be integers; ``0 <= k <= n`` and ``n > 0``.
    """
    if not (math.isfinite(n) and n > 0.0 and 0.0 <= k <= n):
        raise StatsError(f"need 0 <= k <= n and n > 0, got k = {k!r}, n = {n!r}")
    tail = (1.0 - _level(level)) / 2.0
    lower = 0.0 if k == 0 else float(sps.beta.ppf(tail, k + 0.5, n - k + 0.5))
    upper = 1.0 if k == n else float(sps.beta.ppf(1.0 - tail, k + 0.5, n - k + 0.5))
    # Clopper-Pearson bounds at the two smallest counts on either side: Beta(k, n-k+1) and
    # Beta(k+1, n-k) quantiles (k = 0 gives 1 - (a/2)^(1/n) as the upper bound).
    if modified and (k <= 1.0 or n - k <= 1.0):
        lower = float(sps.beta.ppf(tail, k, n - k + 1.0)) if k > 0.0 else 0.0
        upper = float(sps.beta.ppf(1.0 - tail, k + 1.0, n - k)) if k < n else 1.0
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


def wilson_interval(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval of k/n (n >= 1); the score interval Newcombe's difference uses."""
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)
