"""Weighted and clustered prevalence with a design-based interval.

Replayed turns are rarely independent draws of equal weight: prefixes are sampled with unequal
inclusion probabilities (turn vs final mode, strata), several prefixes come from one
conversation, and ``--samples-per-prefix`` regenerates each prefix several times. Counting every
graded turn as an independent draw gives intervals up to sqrt(draws) too narrow. Pure functions.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

from deploysim.errors import StatsError
from deploysim.stats._base import FloatSeq, _level
from deploysim.stats.rates import beta_interval


@dataclass(frozen=True, slots=True)
class HajekPrevalence:
    """Hajek estimate of a prevalence with a design-based (modified) Jeffreys interval.

    ``effective_n`` is the sample size of independent, equally weighted turns that would give
    the same precision (Korn & Graubard 1998); ``design_effect = n_items / effective_n``.
    ``n_units`` counts the distinct units (prefixes), ``n_clusters`` the clusters
    (conversations).
    """

    estimate: float
    lower: float
    upper: float
    n_items: int
    n_units: int
    n_clusters: int
    effective_n: float
    design_effect: float


def _codes(name: str, ids: Sequence[Hashable] | None, size: int) -> npt.NDArray[np.intp]:
    if ids is None:
        return np.arange(size, dtype=np.intp)
    values = list(ids)
    if len(values) != size:
        raise StatsError(f"{name} has {len(values)} entries for {size} items")
    codes: dict[Hashable, int] = {}
    return np.fromiter((codes.setdefault(c, len(codes)) for c in values), dtype=np.intp)


def hajek_prevalence(
    flags: FloatSeq,
    inclusion_probs: FloatSeq | None = None,
    clusters: Sequence[Hashable] | None = None,
    units: Sequence[Hashable] | None = None,
    *,
    level: float = 0.95,
) -> HajekPrevalence:
    """Hajek-weighted prevalence ``p = sum(y_i / pi_i) / sum(1 / pi_i)`` with its interval.

    ``flags`` are the grader labels y_i in [0, 1]; ``inclusion_probs`` the prefixes' inclusion
    probabilities pi_i in (0, 1] (all 1 when None); ``clusters`` the conversation of each item
    (turns of one conversation are correlated; None: each item its own cluster); ``units`` the
    prefix of each item (repeated draws of one prefix; None: each item its own prefix).

    The interval is Jeffreys' with an effective sample size (Korn & Graubard 1998; Dean &
    Pagano 2015): ``n_eff = p(1-p) / v`` where v is the with-replacement linearisation variance
    of the ratio estimator over clusters, scaled by ``(z / t_{C-1})^2`` for few clusters and
    capped at Kish's ``(sum w)^2 / sum w^2``; ``k_eff = p n_eff``. When nothing (or everything)
    is flagged, v says nothing about the correlation, and ``n_eff`` is Kish's n over prefixes:
    the draws of a never-flagged prefix count once. Never of zero width.
    """
    y = np.asarray(flags, dtype=float)
    if y.ndim != 1 or len(y) == 0:
        raise StatsError("flags must be a non-empty 1-D sequence")
    pi = np.ones_like(y) if inclusion_probs is None else np.asarray(inclusion_probs, dtype=float)
    if pi.shape != y.shape:
        raise StatsError(f"flags and inclusion_probs differ in shape: {y.shape}, {pi.shape}")
    if not np.all((y >= 0.0) & (y <= 1.0)):
        raise StatsError("flags must lie in [0, 1]")
    if not np.all((pi > 0.0) & (pi <= 1.0)):
        raise StatsError("inclusion probabilities must lie in (0, 1]")
    level = _level(level)
    cluster_of = _codes("clusters", clusters, len(y))
    unit_of = _codes("units", units, len(y))
    w = 1.0 / pi
    total = float(w.sum())
    estimate = float((w * y).sum() / total)
    kish = total**2 / float((w**2).sum())
    unit_w = np.bincount(unit_of, weights=w)
    kish_units = total**2 / float((unit_w**2).sum())
    resid = np.bincount(cluster_of, weights=w * (y - estimate))
    n_clusters = len(resid)
    var = (
        n_clusters / (n_clusters - 1) * float((resid**2).sum()) / total**2
        if n_clusters > 1
        else 0.0
    )
    if 0.0 < estimate < 1.0 and var > 0.0:
        z = float(sps.norm.ppf((1.0 + level) / 2.0))
        t = float(sps.t.ppf((1.0 + level) / 2.0, n_clusters - 1))
        n_eff = min(kish, estimate * (1.0 - estimate) / var * (z / t) ** 2)
    else:
        n_eff = kish_units
    ci = beta_interval(estimate * n_eff, n_eff, level)
    return HajekPrevalence(
        estimate=estimate,
        lower=ci.lower,
        upper=ci.upper,
        n_items=len(y),
        n_units=len(unit_w),
        n_clusters=n_clusters,
        effective_n=n_eff,
        design_effect=len(y) / n_eff,
    )
