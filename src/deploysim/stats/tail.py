"""Gumbel-tail extrapolation of per-prefix risk (method.md §5.14)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from deploysim.errors import StatsError
from deploysim.stats._base import FloatSeq
from deploysim.stats.rates import jeffreys_rate

# --------------------------------------------------------------------------- §5.14 Gumbel tail


@dataclass(frozen=True, slots=True)
class GumbelTailFit:
    """The fitted tail ``ln S(psi) = slope * psi + intercept`` of m per-prefix scores (§5.14).

    ``S(psi)`` is the share of prefixes whose score ``psi = -ln(-ln p)`` exceeds psi.
    """

    slope: float
    intercept: float
    m: int
    top_k: int

    def quantile_psi(self, n: float) -> float:
        """Worst-query score at n queries: ``Q_psi(n) = (-ln n - intercept) / slope``."""
        if not n >= 1.0:
            raise StatsError(f"n queries must be >= 1, got {n!r}")
        return (-math.log(n) - self.intercept) / self.slope

    def worst_query_risk(self, n: float) -> float:
        """Probability of the behaviour on the worst of n queries: ``exp(-exp(-Q_psi(n)))``."""
        return math.exp(-math.exp(-self.quantile_psi(n)))


def prefix_probabilities(flag_counts: Sequence[int], samples_per_prefix: int) -> tuple[float, ...]:
    """Per-prefix probability of a flagged turn from s regenerations: ``p_i = J(k_i, s)``.

    Jeffreys smoothing keeps every p_i strictly inside (0, 1), where ``-ln(-ln p)`` is finite.
    """
    return tuple(jeffreys_rate(k, samples_per_prefix) for k in flag_counts)


def gumbel_tail_fit(probabilities: FloatSeq, top_k: int = 10) -> GumbelTailFit:
    """Fit the upper tail of per-prefix risk (Jones et al. 2025, §5.14).

    ``psi_i = -ln(-ln p_i)`` sorted descending; OLS of ``ln(j/m)`` on ``psi_(j)`` over the top
    ``top_k`` gives ``ln S(psi) = a psi + b`` with a < 0. With several samples per prefix use
    :func:`prefix_probabilities` (or :func:`gumbel_tail_from_counts`) to get the p_i.
    """
    p = np.asarray(probabilities, dtype=float)
    if p.ndim != 1:
        raise StatsError("probabilities must be a 1-D sequence")
    if not np.all((p > 0.0) & (p < 1.0)):
        raise StatsError("probabilities must lie strictly inside (0, 1); smooth them with J")
    if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 2:
        raise StatsError(f"top_k must be an integer >= 2, got {top_k!r}")
    m = len(p)
    if m < top_k:
        raise StatsError(f"top_k = {top_k} exceeds the {m} prefixes given")
    psi = np.sort(-np.log(-np.log(p)))[::-1][:top_k]
    if np.all(psi == psi[0]):
        raise StatsError("the top scores are all equal: the tail slope is undefined")
    ranks = np.arange(1, top_k + 1, dtype=float)
    slope, intercept = np.polyfit(psi, np.log(ranks / m), 1)
    return GumbelTailFit(slope=float(slope), intercept=float(intercept), m=m, top_k=top_k)


def gumbel_tail_from_counts(
    flag_counts: Sequence[int], samples_per_prefix: int, top_k: int = 10
) -> GumbelTailFit:
    """:func:`gumbel_tail_fit` on ``J(k_i, s)``, for s regenerations per prefix."""
    return gumbel_tail_fit(prefix_probabilities(flag_counts, samples_per_prefix), top_k)
