"""Grader error: Rogan-Gladen correction and grader validation (method.md §4)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as sps

from deploysim.errors import StatsError
from deploysim.stats._base import Interval, _count, _level, _rate
from deploysim.stats.rates import jeffreys_interval

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
