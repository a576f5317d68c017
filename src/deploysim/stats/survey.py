"""Weighted and clustered prevalence (design-based intervals)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from deploysim.errors import StatsError
from deploysim.stats._base import FloatSeq

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
