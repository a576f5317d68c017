"""Grader error: Rogan-Gladen correction and grader validation (method.md §4)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from scipy import special
from scipy import stats as sps

from deploysim.errors import StatsError
from deploysim.stats._base import Interval, _count, _level, _rate
from deploysim.stats.rates import jeffreys_interval

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

# --------------------------------------------------------------------------- §4 graders


@dataclass(frozen=True, slots=True)
class RoganGladen:
    """Prevalence corrected for grader error (§4).

    ``correctable`` is False when ``Se + Sp - 1 < 0.05``: ``estimate`` is then the observed rate,
    uncorrected. ``clipped`` says the raw correction fell outside [0, 1]. ``interval`` (profile
    likelihood) is None when no sample size was given.
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

    With ``n`` (the sample size behind p_obs) the interval is a profile-likelihood interval of
    the true prevalence: the counts ``k = p_obs n``, ``tp = Se n_pos`` and ``tn = Sp n_neg`` are
    three binomials, Se and Sp are profiled out, and the interval holds the prevalences whose
    likelihood ratio stays under the chi-square(1) quantile. The grader's uncertainty is thus
    carried honestly: a specificity measured as 35/35 still allows false positives, so an
    observed rate that false positives alone could explain gives a lower bound of 0, and the
    interval is never of zero width. Se (Sp) is taken as known when ``n_pos`` (``n_neg``) is
    not given. Not correctable: the modified Jeffreys interval of p_obs itself.
    """
    p = _rate("p_obs", p_obs)
    se, sp = _rate("sensitivity", sensitivity), _rate("specificity", specificity)
    fpr = 1.0 - sp
    youden = se - fpr
    correctable = youden >= min_youden
    if not correctable:  # report p_obs itself: the identity correction
        fpr, youden = 0.0, 1.0
    # (p_obs - (1 - Sp)) / (Se - (1 - Sp)) rather than (p_obs + Sp - 1) / ...: with Sp = 1 the
    # subtraction is exact, so Se = Sp = 1 returns p_obs bit for bit.
    raw = (p - fpr) / youden
    estimate = min(1.0, max(0.0, raw))
    interval = None
    if n is not None:
        n = _count("n", n, minimum=1)
        k = round(p * n)
        if not correctable:
            interval = jeffreys_interval(k, n, level)
        else:
            pos = None if n_pos is None else _validation_counts("n_pos", se, n_pos)
            neg = None if n_neg is None else _validation_counts("n_neg", 1.0 - sp, n_neg)
            lo, hi = _profile_interval(_Evidence(k, n, se, pos, 1.0 - sp, neg), _level(level))
            interval = Interval(min(lo, estimate), max(hi, estimate))
    return RoganGladen(estimate, correctable, clipped=raw != estimate, interval=interval)


def _validation_counts(name: str, rate: float, size: int) -> tuple[float, float]:
    """(events, non-events) of a validation rate measured on ``size`` items."""
    size = _count(name, size, minimum=1)
    events = float(round(rate * size))
    return events, size - events


_EPS = 1e-12


class _Evidence(NamedTuple):
    """What the corrected prevalence's likelihood sees: ``k`` of ``n`` flagged, and the
    grader's sensitivity and false-positive rate, each with the validation counts behind it
    (``pos`` = (TP, FN), ``neg`` = (FP, TN)) to be profiled out, or ``None`` when it is fixed."""

    k: int
    n: int
    se: float
    pos: tuple[float, float] | None
    fpr: float
    neg: tuple[float, float] | None


def _profile(pi: npt.NDArray[np.float64], ev: _Evidence) -> npt.NDArray[np.float64]:
    """The log-likelihood at each prevalence ``pi``, maximised over the free Se and FPR.

    For fixed pi the log-likelihood is concave in (Se, FPR) (each term is the log of a linear
    function), so a projected Newton ascent with step halving finds the maximum; a parameter
    at its bound with the gradient pointing out stays there.
    """
    k, n, se, pos, fpr, neg = ev
    s = np.full_like(pi, min(max(se, _EPS), 1 - _EPS))
    f = np.full_like(pi, min(max(fpr, _EPS), 1 - _EPS))
    tp, fn = pos if pos is not None else (0.0, 0.0)
    fp, tn = neg if neg is not None else (0.0, 0.0)

    def loglik(s: npt.NDArray[np.float64], f: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        q = pi * s + (1 - pi) * f
        out = special.xlogy(k, q) + special.xlog1py(n - k, -q)
        out += special.xlogy(tp, s) + special.xlog1py(fn, -s)
        return out + special.xlogy(fp, f) + special.xlog1py(tn, -f)  # type: ignore[no-any-return]

    current = loglik(s, f)
    for _ in range(100):
        q = pi * s + (1 - pi) * f
        g = k / q - (n - k) / (1 - q)
        h = -k / q**2 - (n - k) / (1 - q) ** 2
        gs = pi * g + tp / s - fn / (1 - s)
        gf = (1 - pi) * g + fp / f - tn / (1 - f)
        hss = pi**2 * h - tp / s**2 - fn / (1 - s) ** 2
        hff = (1 - pi) ** 2 * h - fp / f**2 - tn / (1 - f) ** 2
        hsf = pi * (1 - pi) * h
        # Free coordinates: not fixed by the caller, and not at a bound with the gradient
        # pointing outside.
        free_s = (pos is not None) & ~((s <= _EPS) & (gs < 0)) & ~((s >= 1 - _EPS) & (gs > 0))
        free_f = (neg is not None) & ~((f <= _EPS) & (gf < 0)) & ~((f >= 1 - _EPS) & (gf > 0))
        both = free_s & free_f
        det = np.where(both, hss * hff - hsf**2, 1.0)
        hss, hff = np.where(free_s, hss, -1.0), np.where(free_f, hff, -1.0)
        ds = np.where(both, -(hff * gs - hsf * gf) / det, np.where(free_s, -gs / hss, 0.0))
        df = np.where(both, -(hss * gf - hsf * gs) / det, np.where(free_f, -gf / hff, 0.0))
        t = np.ones_like(pi)
        for _halving in range(50):
            ns = np.clip(s + t * ds, _EPS, 1 - _EPS)
            nf = np.clip(f + t * df, _EPS, 1 - _EPS)
            new = loglik(ns, nf)
            worse = ~(new >= current - 1e-9)  # rounding noise at the optimum is not worse
            if not worse.any():
                break
            t = np.where(worse, t / 2, t)
        gain = np.where(worse, 0.0, new - current)
        s, f, current = np.where(worse, s, ns), np.where(worse, f, nf), np.maximum(current, new)
        if float(gain.max()) < 1e-9:  # the cut is 1.92 nats: far below what matters
            break
    return current


def _profile_interval(ev: _Evidence, level: float, points: int = 257) -> tuple[float, float]:
    """The prevalences whose profile log-likelihood is within chi2(1, level)/2 of its maximum.

    A grid over [0, hi] is narrowed around the region above the cut (and widened when the
    region reaches its edge) until a step is 1e-6 of the upper bound; the two crossings are
    interpolated linearly. hi starts at a bound on every plausible prevalence (pi <= q / Se).
    """
    k, n, se, pos = ev.k, ev.n, ev.se, ev.pos
    cut = float(sps.chi2.ppf(level, 1)) / 2.0
    q_hi = float(sps.beta.ppf(1.0 - 1e-9, k + 0.5, n - k + 0.5))
    se_lo = float(sps.beta.ppf(1e-9, pos[0] + 0.5, pos[1] + 0.5)) if pos is not None else se
    lo, hi = 0.0, min(1.0, q_hi / max(se_lo, 1e-9))
    lower, upper = lo, hi
    for _ in range(16):
        grid = np.linspace(lo, hi, points)
        d = _profile(grid, ev)
        d = d - (d.max() - cut)
        inside = np.flatnonzero(d >= 0)
        i, j = int(inside[0]), int(inside[-1])
        at_lo, at_hi = i == 0 and lo > 0.0, j == points - 1 and hi < 1.0
        if at_lo or at_hi:  # the region runs past the grid (a finer grid found a higher max)
            width = hi - lo
            lo, hi = (
                (max(0.0, lo - width) if at_lo else lo),
                (min(1.0, hi + width) if at_hi else hi),
            )
            continue
        lower = 0.0 if i == 0 else _cross(grid, d, i - 1, i)
        upper = 1.0 if j == points - 1 else _cross(grid, d, j, j + 1)
        if grid[1] - grid[0] < 1e-6 * max(upper, 1e-300):
            break
        lo, hi = float(grid[max(i - 2, 0)]), float(grid[min(j + 2, points - 1)])
    return lower, upper


def _cross(grid: npt.NDArray[np.float64], d: npt.NDArray[np.float64], i: int, j: int) -> float:
    """Where the line through (grid[i], d[i]) and (grid[j], d[j]) crosses 0."""
    return float(grid[i] + (grid[j] - grid[i]) * d[i] / (d[i] - d[j]))


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


# --------------------------------------------------------------------------- ROC


def _scored(scores: Sequence[float], labels: Sequence[bool]) -> tuple[FloatArray, BoolArray]:
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=bool)
    if s.ndim != 1 or s.shape != y.shape:
        raise StatsError(f"scores and labels must be 1-D of equal length: {s.shape}, {y.shape}")
    if not y.any() or y.all():
        raise StatsError("AUC needs at least one positive and one negative label")
    return s, y


def _auc_ranked(s: FloatArray, y: BoolArray) -> float:
    # Mann-Whitney: the positives' rank sum with midranks for ties counts a tie as half.
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    ranks = sps.rankdata(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half), in O(n log n)."""
    return _auc_ranked(*_scored(scores, labels))


def auc_interval(
    scores: Sequence[float],
    labels: Sequence[bool],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile interval of the AUC, resampling positives and negatives separately."""
    s, y = _scored(scores, labels)
    pos, neg = s[y], s[~y]
    rng = np.random.default_rng(seed)
    labels_b = np.r_[np.ones(len(pos), dtype=bool), np.zeros(len(neg), dtype=bool)]
    values = [
        _auc_ranked(np.r_[rng.choice(pos, len(pos)), rng.choice(neg, len(neg))], labels_b)
        for _ in range(n_boot)
    ]
    tail = (1.0 - _level(level)) / 2.0
    lo, hi = np.quantile(values, [tail, 1.0 - tail])
    return float(lo), float(hi)


def youden_threshold(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """The threshold maximising Se + Sp - 1 (flag when score >= threshold)."""
    s, y = _scored(scores, labels)
    best, best_t = -2.0, 0.5
    for t in np.unique(s):
        flagged = s >= t
        j = flagged[y].mean() + (~flagged[~y]).mean() - 1
        if j > best:
            best, best_t = float(j), float(t)
    return best_t


@dataclass(frozen=True, slots=True)
class ReliabilityBin:
    """Items whose score fell in ``[lower, upper)`` (the last bin includes 1): how many, their
    mean score, and the share that humans labelled positive, with its Jeffreys interval."""

    lower: float
    upper: float
    n: int
    mean_score: float | None
    positive_rate: float | None
    ci_low: float | None
    ci_high: float | None


def reliability_bins(
    scores: Sequence[float], labels: Sequence[bool], *, bins: int = 10
) -> tuple[ReliabilityBin, ...]:
    """The reliability table of a grader's scores: equal-width bins over [0, 1].

    A calibrated grader's positive rate in each bin is close to the bin's mean score; empty bins
    are kept (n = 0) so the table always has ``bins`` rows.
    """
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=bool)
    if s.shape != y.shape or s.ndim != 1:
        raise StatsError("scores and labels must be 1-D of equal length")
    if not np.all((s >= 0.0) & (s <= 1.0)):
        raise StatsError("scores must lie in [0, 1]")
    if bins < 1:
        raise StatsError(f"bins must be >= 1, got {bins}")
    which = np.minimum((s * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        inside = which == b
        n = int(inside.sum())
        k = int(y[inside].sum())
        ci = jeffreys_interval(k, n) if n else None
        out.append(
            ReliabilityBin(
                lower=b / bins,
                upper=(b + 1) / bins,
                n=n,
                mean_score=float(s[inside].mean()) if n else None,
                positive_rate=k / n if n else None,
                ci_low=ci.lower if ci else None,
                ci_high=ci.upper if ci else None,
            )
        )
    return tuple(out)


def expected_calibration_error(table: Sequence[ReliabilityBin]) -> float:
    """Mean |positive rate - mean score| over bins, weighted by their items."""
    total = sum(b.n for b in table)
    if total == 0:
        raise StatsError("no item in any bin")
    return (
        sum(b.n * abs((b.positive_rate or 0.0) - (b.mean_score or 0.0)) for b in table if b.n)
        / total
    )


def precision_at(tpr: float, fpr: float, base_rate: float) -> float | None:
    """TPR·π / (TPR·π + FPR·(1 − π)): the share of positive verdicts that are right at base
    rate π (``None`` when nothing is called positive)."""
    num = tpr * base_rate
    den = num + fpr * (1 - base_rate)
    return None if den == 0 else num / den
