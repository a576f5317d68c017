"""Statistics of deploysim (method.md §4-5, §7): pure functions, no I/O.

Conventions: a *rate* is a per-message probability in [0, 1]; counts are ``k`` flagged turns out
of ``n``. Every rate that enters a ratio, a log or an NLL should be Jeffreys-smoothed first
(:func:`jeffreys_rate`), so that zero counts never produce 0, inf or nan. Impossible inputs raise
:class:`~deploysim.errors.StatsError`. Results are floats or frozen dataclasses.

Layout: ``rates`` (§5.1-5.7: Jeffreys, SME, direction, NLL, correlation), ``compare`` (§5.8-5.11
and §7: Fisher, noise funnel, detection floors, H1-H3), ``forecasts`` (§5.12-5.13), ``graders``
(§4: Rogan-Gladen, grader validation), ``survey`` (weighted and clustered prevalence), ``tail``
(§5.14 Gumbel tail). Deviations from method.md's worked numbers: docs/design/stats.md.
"""

from __future__ import annotations

from deploysim.stats._base import PER_100K, FloatSeq, Interval
from deploysim.stats.compare import (
    EXACT_CATEGORIES,
    FisherComparison,
    NovelTypeThreshold,
    PairedTest,
    detection_probability,
    detection_sample_size,
    fisher_compare,
    fisher_compare_many,
    newcombe_interval,
    noise_funnel,
    novel_type_threshold,
    paired_sign_flip_test,
    zero_event_upper_bound,
)
from deploysim.stats.forecasts import (
    BiasCorrectedForecast,
    ErrorDecomposition,
    bias_corrected_forecast,
    error_decomposition,
)
from deploysim.stats.graders import (
    GraderValidation,
    ReliabilityBin,
    RoganGladen,
    auc,
    auc_interval,
    expected_calibration_error,
    grader_validation,
    precision_at,
    reliability_bins,
    rogan_gladen,
    youden_threshold,
)
from deploysim.stats.rates import (
    DirectionalAccuracy,
    LogCorrelation,
    SmeSummary,
    beta_interval,
    binomial_nll,
    directional_accuracy,
    jeffreys_interval,
    jeffreys_rate,
    log_correlation,
    nll_regret,
    per_100k,
    sme,
    sme_summary,
    wilson_interval,
)
from deploysim.stats.survey import HajekPrevalence, hajek_prevalence
from deploysim.stats.tail import (
    GumbelTailFit,
    TailRisk,
    gumbel_tail_fit,
    gumbel_tail_from_counts,
    prefix_probabilities,
    tail_risk,
)

__all__ = [
    "EXACT_CATEGORIES",
    "PER_100K",
    "BiasCorrectedForecast",
    "DirectionalAccuracy",
    "ErrorDecomposition",
    "FisherComparison",
    "FloatSeq",
    "GraderValidation",
    "GumbelTailFit",
    "HajekPrevalence",
    "Interval",
    "LogCorrelation",
    "NovelTypeThreshold",
    "PairedTest",
    "ReliabilityBin",
    "RoganGladen",
    "SmeSummary",
    "TailRisk",
    "auc",
    "auc_interval",
    "beta_interval",
    "bias_corrected_forecast",
    "binomial_nll",
    "detection_probability",
    "detection_sample_size",
    "directional_accuracy",
    "error_decomposition",
    "expected_calibration_error",
    "fisher_compare",
    "fisher_compare_many",
    "grader_validation",
    "gumbel_tail_fit",
    "gumbel_tail_from_counts",
    "hajek_prevalence",
    "jeffreys_interval",
    "jeffreys_rate",
    "log_correlation",
    "newcombe_interval",
    "nll_regret",
    "noise_funnel",
    "novel_type_threshold",
    "paired_sign_flip_test",
    "per_100k",
    "precision_at",
    "prefix_probabilities",
    "reliability_bins",
    "rogan_gladen",
    "sme",
    "sme_summary",
    "tail_risk",
    "wilson_interval",
    "youden_threshold",
    "zero_event_upper_bound",
]
