"""Weighted prevalence with a cluster bootstrap, and Gumbel-tail extrapolation (method.md §5.14).

Split from :mod:`deploysim.stats` because both involve resampling or regression over many items
rather than closed-form counts. Pure functions: randomness comes only from an explicit ``seed``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from deploysim.errors import StatsError
from deploysim.stats import FloatSeq, jeffreys_rate

# Bootstrap replicates are drawn in blocks of at most this many cluster indices, which bounds
# memory at ~8 bytes x this, whatever the number of conversations.
_BLOCK_CELLS = 4_000_000


@dataclass(frozen=True, slots=True)
class HajekPrevalence:
    """Hajek estimate of a prevalence with a percentile cluster-bootstrap interval.

    ``effective_n`` is Kish's ``(sum w)^2 / sum w^2``: the sample size an unweighted sample of
    the same precision would need.
    """

    estimate: float
    lower: float
    upper: float
    n_items: int
    n_clusters: int
    effective_n: float


def hajek_prevalence(
    flags: FloatSeq,
    inclusion_probs: FloatSeq,
    clusters: Sequence[Hashable] | None = None,
    *,
    level: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> HajekPrevalence:
    """Hajek-weighted prevalence: ``p = sum(y_i / pi_i) / sum(1 / pi_i)``.

    ``flags`` are the grader labels y_i in [0, 1] of the sampled turns and ``inclusion_probs``
    their inclusion probabilities pi_i in (0, 1] from the prefix manifest (they differ between
    the ``turn`` and ``final`` sampling modes). The interval is a percentile bootstrap that
    resamples whole ``clusters`` (conversation ids) with replacement, because turns of one
    conversation are correlated; with ``clusters=None`` each item is its own cluster. The
    bootstrap is seeded, so the result is a deterministic function of the inputs.
    """
    y = np.asarray(flags, dtype=float)
    pi = np.asarray(inclusion_probs, dtype=float)
    if y.ndim != 1 or pi.ndim != 1 or len(y) != len(pi):
        raise StatsError(
            f"flags and inclusion_probs must be 1-D of equal length: {y.shape}, {pi.shape}"
        )
    if len(y) == 0:
        raise StatsError("hajek_prevalence needs at least one item")
    if not np.all((y >= 0.0) & (y <= 1.0)):
        raise StatsError("flags must lie in [0, 1]")
    if not np.all((pi > 0.0) & (pi <= 1.0)):
        raise StatsError("inclusion probabilities must lie in (0, 1]")
    if not 0.0 < level < 1.0:
        raise StatsError(f"confidence level must be in (0, 1), got {level!r}")
    if n_boot < 1:
        raise StatsError(f"n_boot must be >= 1, got {n_boot}")
    ids = list(range(len(y))) if clusters is None else list(clusters)
    if len(ids) != len(y):
        raise StatsError(f"clusters has {len(ids)} entries for {len(y)} items")
    codes: dict[Hashable, int] = {}
    cluster_of = np.fromiter((codes.setdefault(c, len(codes)) for c in ids), dtype=np.intp)
    w = 1.0 / pi
    # Per-cluster totals: resampling a conversation brings all its turns, so the bootstrap only
    # needs these two sums per cluster.
    num = np.bincount(cluster_of, weights=w * y)
    den = np.bincount(cluster_of, weights=w)
    n_clusters = len(den)
    estimate = float(num.sum() / den.sum())
    rng = np.random.default_rng(seed)
    block = max(1, _BLOCK_CELLS // n_clusters)
    replicates: list[npt.NDArray[np.float64]] = []
    for start in range(0, n_boot, block):
        idx = rng.integers(0, n_clusters, size=(min(block, n_boot - start), n_clusters))
        replicates.append(num[idx].sum(axis=1) / den[idx].sum(axis=1))
    boot = np.concatenate(replicates)
    tail = (1.0 - level) / 2.0
    lower, upper = np.quantile(boot, [tail, 1.0 - tail])
    return HajekPrevalence(
        estimate=estimate,
        lower=float(lower),
        upper=float(upper),
        n_items=len(y),
        n_clusters=n_clusters,
        effective_n=float(w.sum() ** 2 / (w**2).sum()),
    )


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
