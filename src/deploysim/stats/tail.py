"""Gumbel-tail extrapolation of per-prefix risk (method.md §5.14)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

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
    """:func:`gumbel_tail_fit` on ``J(k_i, s)``, for s regenerations per prefix.

    Refused when fewer than ``top_k`` prefixes were ever flagged: the top scores would then
    include the Jeffreys floor ``1/(2(s+1))`` of never-flagged prefixes, and the fit would
    extrapolate the smoothing, not the data.
    """
    _require_flagged(flag_counts, top_k)
    return gumbel_tail_fit(prefix_probabilities(flag_counts, samples_per_prefix), top_k)


def _require_flagged(flag_counts: Sequence[int] | npt.NDArray[np.int64], top_k: int) -> int:
    """The number of ever-flagged prefixes; refused when fewer than ``top_k``."""
    flagged = sum(1 for k in flag_counts if k > 0)
    if flagged < top_k:
        raise StatsError(
            f"only {flagged} of {len(flag_counts)} prefixes were ever flagged, fewer than the "
            f"top {top_k} the tail fit needs: regenerate each prefix more often (samples per "
            "prefix), replay more prefixes, or lower top_k"
        )
    return flagged


@dataclass(frozen=True, slots=True)
class TailRisk:
    """The worst-query risk at ``queries`` queries with a prefix-bootstrap interval.

    ``r_squared`` is the OLS fit's on the top k (the diagnostic: a straight line in
    (psi, ln S) is the Gumbel assumption); ``refits`` counts the bootstrap replicates that could
    be fitted (a replicate with fewer than k flagged prefixes cannot).
    """

    fit: GumbelTailFit
    queries: float
    risk: float
    lower: float
    upper: float
    r_squared: float
    flagged_prefixes: int
    prefixes: int
    refits: int
    n_boot: int


def tail_risk(
    flag_counts: Sequence[int],
    samples_per_prefix: int | Sequence[int],
    queries: float,
    *,
    top_k: int = 10,
    level: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> TailRisk:
    """Worst-query risk at ``queries`` from per-prefix flag counts (§5.14), with its interval.

    ``samples_per_prefix`` is one s for every prefix or one per prefix (a draw that could not
    be graded leaves its prefix with fewer). Refused, like :func:`gumbel_tail_from_counts`,
    when fewer than ``top_k`` prefixes were ever flagged. The interval is a percentile
    bootstrap over prefixes (resample prefixes with replacement, refit, extrapolate);
    replicates that cannot be fitted are left out and counted.
    """
    counts = np.asarray(flag_counts, dtype=np.int64)
    draws = (
        np.full(len(counts), samples_per_prefix, dtype=np.int64)
        if isinstance(samples_per_prefix, numbers.Integral)
        else np.asarray(samples_per_prefix, dtype=np.int64)
    )
    if counts.ndim != 1 or draws.shape != counts.shape:
        raise StatsError("flag_counts and samples_per_prefix must match, one per prefix")
    if np.any(draws < 1) or np.any(counts < 0) or np.any(counts > draws):
        raise StatsError("every prefix needs 0 <= flagged <= draws and draws >= 1")
    flagged = _require_flagged(counts, top_k)
    p = (counts + 0.5) / (draws + 1.0)  # J(k_i, s_i)
    fit = gumbel_tail_fit(p, top_k)
    risk = fit.worst_query_risk(queries)
    psi = np.sort(-np.log(-np.log(p)))[::-1][:top_k]
    ranks = np.log(np.arange(1, top_k + 1) / len(p))
    r_squared = float(np.corrcoef(psi, ranks)[0, 1] ** 2)
    rng = np.random.default_rng(seed)
    risks: list[float] = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(counts), size=len(counts))
        if int((counts[idx] > 0).sum()) < top_k:
            continue
        try:
            refit = gumbel_tail_fit(p[idx], top_k)
        except StatsError:  # tied top scores: no slope
            continue
        if refit.slope < 0:
            risks.append(refit.worst_query_risk(queries))
    if not risks:
        raise StatsError("no bootstrap replicate of the prefixes could be fitted")
    tail = (1.0 - level) / 2.0
    lower, upper = np.quantile(risks, [tail, 1.0 - tail])
    return TailRisk(
        fit=fit,
        queries=float(queries),
        risk=risk,
        lower=float(min(lower, risk)),
        upper=float(max(upper, risk)),
        r_squared=r_squared,
        flagged_prefixes=flagged,
        prefixes=len(counts),
        refits=len(risks),
        n_boot=n_boot,
    )
