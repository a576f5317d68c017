"""Worked examples of method.md §4-5 (and the pure-statistics numbers of §6), input checks,
and property tests of deploysim.stats / deploysim.stats_tail.

Expected values are method.md's printed figures, so tolerances follow the printed precision
(half a unit of the last printed digit unless a comment says otherwise).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deploysim.errors import StatsError
from deploysim.stats import (
    bias_corrected_forecast,
    binomial_nll,
    detection_probability,
    detection_sample_size,
    directional_accuracy,
    error_decomposition,
    fisher_compare,
    fisher_compare_many,
    grader_validation,
    gumbel_tail_fit,
    gumbel_tail_from_counts,
    hajek_prevalence,
    jeffreys_interval,
    jeffreys_rate,
    log_correlation,
    nll_regret,
    noise_funnel,
    novel_type_threshold,
    paired_sign_flip_test,
    per_100k,
    prefix_probabilities,
    rogan_gladen,
    sme,
    sme_summary,
    tail_risk,
    zero_event_upper_bound,
)

approx = pytest.approx
PROPS = settings(max_examples=60, deadline=None)


def per100k(x: float) -> float:
    return x / 1e5


# --------------------------------------------------------------------------- §4 Rogan-Gladen


def test_rogan_gladen_worked_example() -> None:
    res = rogan_gladen(0.002, 0.90, 0.999)
    assert res.correctable and not res.clipped
    assert res.estimate == approx(0.00111, abs=5e-6)
    # "half the flags are false": 1 - 0.00111/0.002 = 0.44, so "half" is a rounding.
    assert 1 - res.estimate / 0.002 == approx(0.5, abs=0.07)


def test_rogan_gladen_clips_to_zero_when_specificity_dominates() -> None:
    res = rogan_gladen(0.002, 0.90, 0.998)
    assert res.estimate == 0.0
    assert res.correctable


def test_rogan_gladen_uncorrectable_returns_observed_rate() -> None:
    # Se + Sp - 1 = 0.04 < 0.05: report p_obs, marked uncorrectable.
    res = rogan_gladen(0.3, 0.52, 0.52, n=1000)
    assert not res.correctable
    assert res.estimate == 0.3
    assert res.interval is not None and res.interval.contains(0.3)


def test_rogan_gladen_profile_interval_near_the_delta_method_at_large_counts() -> None:
    # p_obs = 0.3, Se = 0.8, Sp = 0.9: p = (0.3 - 0.1) / 0.7 = 0.285714. With 1000 + 200 + 500
    # observations the profile-likelihood interval is close to the delta method's
    # p +- 1.96 sqrt(Var), Var = [0.21/1000 + p^2 * 0.16/200 + (1-p)^2 * 0.09/500] / 0.7^2
    # = [0.2321, 0.3394], and skewed the way a likelihood is (longer towards 1/2).
    res = rogan_gladen(0.3, 0.8, 0.9, n=1000, n_pos=200, n_neg=500)
    assert res.estimate == approx(0.285714, abs=1e-6)
    assert res.interval is not None
    assert res.interval.lower == approx(0.2321, abs=0.002)
    assert res.interval.upper == approx(0.3394, abs=0.003)
    assert res.interval.upper - 0.285714 > 0.285714 - res.interval.lower


def test_grader_validation_counts() -> None:
    v = grader_validation(tp=90, fn=10, tn=999, fp=1)
    assert (v.sensitivity, v.specificity) == (0.9, 0.999)
    assert v.precision == approx(90 / 91)
    assert v.sensitivity_ci.contains(0.9) and v.specificity_ci.contains(0.999)
    assert (v.n_pos, v.n_neg) == (100, 1000)
    assert grader_validation(tp=0, fn=5, tn=5, fp=0).precision is None


# --------------------------------------------------------------------------- §5.1-5.3


def test_jeffreys_rate_worked_examples() -> None:
    assert per_100k(jeffreys_rate(3, 100_000)) == approx(3.50, abs=0.005)
    assert per_100k(jeffreys_rate(0, 200_000)) == approx(0.25, abs=0.005)


def test_jeffreys_interval_worked_examples() -> None:
    ci = jeffreys_interval(3, 100_000)
    assert per_100k(ci.lower) == approx(0.845, abs=5e-4)
    assert per_100k(ci.upper) == approx(8.01, abs=5e-3)
    ci0 = jeffreys_interval(0, 200_000, modified=False)
    assert ci0.lower == 0.0
    assert per_100k(ci0.upper) == approx(1.26, abs=5e-3)
    # The default (modified) interval takes Clopper-Pearson's bound at k = 0:
    # 1 - 0.025^(1/200000) = 1.844 per 100k.
    assert per_100k(jeffreys_interval(0, 200_000).upper) == approx(1.844, abs=1e-3)
    # ... and at k = 1: Beta(1, n) and Beta(2, n - 1) quantiles.
    ci1 = jeffreys_interval(1, 10)
    assert ci1.lower == approx(1 - 0.975 ** (1 / 10), rel=1e-9)
    assert ci1.upper == approx(0.4450, abs=1e-4)


def test_jeffreys_interval_upper_is_one_at_k_equals_n() -> None:
    ci = jeffreys_interval(50, 50)
    assert ci.upper == 1.0 and 0.9 < ci.lower < 1.0


def test_per_100k_display() -> None:
    assert per_100k(per100k(12.5)) == approx(12.5)
    # §6: a challenging-prompt failure rate of 0.40 is "40,000 per 100k".
    assert per_100k(0.40) == approx(40_000)


# --------------------------------------------------------------------------- §5.4 SME


def test_sme_worked_example() -> None:
    a, b = jeffreys_rate(12, 100_000), jeffreys_rate(20, 200_000)
    assert per_100k(a) == approx(12.50, abs=0.005)
    assert per_100k(b) == approx(10.25, abs=0.005)
    assert sme(a, b) == approx(1.22, abs=0.005)
    assert sme(b, a) == sme(a, b)


def test_sme_median_reading() -> None:
    # "A median of 1.5 means that a true rate of 10 is forecast as 15 or 6.67."
    assert sme(per100k(15), per100k(10)) == approx(1.5)
    assert sme(per100k(6.67), per100k(10)) == approx(1.5, abs=0.001)


def test_sme_summary() -> None:
    f = [per100k(x) for x in (10, 30, 10, 10, 40)]
    r = [per100k(x) for x in (10, 10, 20, 12.5, 10)]
    s = sme_summary(f, r)  # SMEs 1, 3, 2, 1.25, 4
    assert (s.median, s.max, s.n) == (2.0, 4.0, 5)
    assert s.p90 == approx(3.6)  # linear between 3 (80th) and 4 (100th)


# --------------------------------------------------------------------------- §5.5 direction


def test_directional_accuracy_worked_example() -> None:
    # A 10->20, 14; B 40->20, 30; C 5->9, 4; D 10->12 (excluded, 1.2x); E 8->4, 6.
    prod_y = [per100k(x) for x in (10, 40, 5, 10, 8)]
    prod_x = [per100k(x) for x in (20, 20, 9, 12, 4)]
    forecast = [per100k(x) for x in (14, 30, 4, 11, 6)]
    res = directional_accuracy(forecast, prod_x, prod_y)
    assert (res.correct, res.total) == (3, 4)
    assert res.accuracy == 0.75
    assert res.outcomes == (True, True, False, None, True)


def test_directional_accuracy_tie_is_wrong_and_exact_threshold_included() -> None:
    # 0.3/0.2 is 1.4999999999999998 in floating point; a 1.5x change must still count.
    res = directional_accuracy([0.2, 0.25], [0.3, 0.3], [0.2, 0.2])
    assert res.outcomes == (False, True)


def test_directional_accuracy_sim_vs_sim_option() -> None:
    # Forecast 12 vs prod Y 10 says "up"; against Y->Y = 15 it says "down", as production did.
    res = directional_accuracy([per100k(12)], [per100k(5)], [per100k(10)], reference=[per100k(15)])
    assert res.outcomes == (True,)
    assert directional_accuracy([per100k(12)], [per100k(5)], [per100k(10)]).outcomes == (False,)


def test_directional_accuracy_nothing_qualifies() -> None:
    res = directional_accuracy([0.1], [0.1], [0.11])
    assert res.total == 0 and res.accuracy is None


# --------------------------------------------------------------------------- §5.6 NLL


@pytest.mark.parametrize(
    ("forecast_per_100k", "nll", "regret"),
    [(10, 2.421, 0.0), (15, 4.312, 1.891), (20 / 3, 3.864, 1.443), (5, 6.284, 3.863)],
)
def test_nll_table(forecast_per_100k: float, nll: float, regret: float) -> None:
    # The row printed "6.667" is 10/1.5 = 20/3 exactly: at a literal 6.667 the NLL is 3.8633 and
    # the regret 1.4424, one unit off in the last printed digit (docs/design/stats.md).
    f = per100k(forecast_per_100k)
    assert binomial_nll(f, 20, 200_000) == approx(nll, abs=5e-4)
    assert nll_regret(f, 20, 200_000) == approx(regret, abs=5e-4)


def test_nll_regret_equals_nll_difference() -> None:
    f = per100k(15)
    diff = binomial_nll(f, 20, 200_000) - binomial_nll(20 / 200_000, 20, 200_000)
    assert nll_regret(f, 20, 200_000) == approx(diff, abs=1e-9)


def test_nll_edge_forecasts() -> None:
    assert nll_regret(0.0, 0, 10) == 0.0
    assert math.isinf(binomial_nll(0.0, 1, 10))
    assert math.isinf(nll_regret(1.0, 9, 10))


# --------------------------------------------------------------------------- §5.7 correlation


def test_log_correlation_is_not_calibration() -> None:
    forecast = [per100k(x) for x in (1, 10, 100)]
    realised = [per100k(x) for x in (2, 10, 50)]
    res = log_correlation(forecast, realised)
    assert res.pearson == approx(1.0, abs=1e-12)
    assert res.spearman == approx(1.0, abs=1e-12)
    # ... yet two of the three pairs are off by 2x.
    errors = [sme(f, r) for f, r in zip(forecast, realised, strict=True)]
    assert sum(e == approx(2.0) for e in errors) == 2


def test_log_correlation_uses_log_scale() -> None:
    # Linear Pearson of these is 0.86; on log10 they are exactly linear.
    res = log_correlation([1e-5, 1e-4, 1e-3, 1e-2], [2e-5, 2e-4, 2e-3, 2e-2])
    assert res.pearson == approx(1.0)
    res2 = log_correlation([1e-4, 2e-4, 3e-4], [3e-4, 2e-4, 1e-4])
    assert res2.spearman == approx(-1.0)


# --------------------------------------------------------------------------- §5.8 Fisher


def test_fisher_worked_examples() -> None:
    a = fisher_compare(70, 100_000, 50, 100_000)
    assert a.p_value == approx(0.0823, abs=5e-5)
    assert a.significant  # at the default alpha = 0.1
    assert a.rate_ratio == approx(1.40, abs=0.005)  # "+40 %" (1.396 with J smoothing)
    b = fisher_compare(35, 100_000, 20, 100_000)
    assert b.p_value == approx(0.0580, abs=5e-5)
    assert b.significant
    assert not fisher_compare(70, 100_000, 50, 100_000, alpha=0.05).significant


def test_fisher_benjamini_hochberg() -> None:
    tables = [(70, 100_000, 50, 100_000), (35, 100_000, 20, 100_000), (20, 100_000, 20, 100_000)]
    plain = fisher_compare_many(tables)
    bh = fisher_compare_many(tables, correction="bh")
    assert [r.p_value for r in bh] == [r.p_value for r in plain]
    # BH by hand, m = 3: sorted p (0.0580, 0.0823, 1.0) -> p * m / rank = (0.174, 0.1235, 1.0),
    # made monotone from the top: (0.1235, 0.1235, 1.0).
    assert [r.p_adjusted for r in bh] == [approx(0.1235, abs=1e-4)] * 2 + [approx(1.0)]
    assert [r.significant for r in plain] == [True, True, False]
    # The two uncorrected alpha = 0.1 findings do not survive the FDR correction.
    assert [r.significant for r in bh] == [False, False, False]
    assert fisher_compare_many([]) == ()


# --------------------------------------------------------------------------- §5.9 funnel


@pytest.mark.parametrize(
    ("k_prod", "k_sim", "band"), [(20, 20, 1.68), (100, 100, 1.26), (10, 40, 1.79), (5, 5, 2.83)]
)
def test_noise_funnel_table(k_prod: int, k_sim: int, band: float) -> None:
    # method.md's table is computed from the raw counts although its text says "use counts
    # K + 1/2" (which gives 2.70 at (5, 5) and 1.77 at (10, 40)): see docs/design/stats.md.
    assert noise_funnel(k_prod, k_sim, pseudocount=0.0) == approx(band, abs=0.005)


def test_noise_funnel_default_adds_half() -> None:
    # z = 1.644854: exp(z * sqrt(2 / 5.5)) = 2.6963, exp(z * sqrt(1/10.5 + 1/40.5)) = 1.7676.
    assert noise_funnel(5, 5) == approx(2.6963, abs=1e-4)
    assert noise_funnel(10, 40) == approx(1.7676, abs=1e-4)
    assert math.isfinite(noise_funnel(0, 0))


# --------------------------------------------------------------------------- §5.10-5.11


def test_detection_floor_worked_examples() -> None:
    r = 1 / 200_000
    assert detection_probability(r, 200_000) == approx(0.632, abs=5e-4)
    assert detection_probability(r, 700_000) == approx(0.970, abs=5e-4)
    # "95 % detection needs N ~ 3/r = 600k": exactly -ln(0.05)/r = 599,146.5.
    assert detection_sample_size(r) == 599_147
    assert detection_sample_size(r) == approx(600_000, rel=2e-3)


def test_zero_event_upper_bound_rule_of_three() -> None:
    n = 200_000
    assert zero_event_upper_bound(n) * n == approx(2.996, abs=5e-4)
    assert per_100k(zero_event_upper_bound(n)) == approx(1.5, abs=0.005)
    assert zero_event_upper_bound(1) == approx(0.95)  # stays a probability


def test_novel_type_threshold_worked_examples() -> None:
    t = novel_type_threshold(700_000)
    assert t.lam == approx(19.998, abs=5e-4)
    assert per_100k(t.rate) == approx(2.86, abs=0.005)
    assert t.rate * 100 == approx(0.00286, abs=5e-6)  # "0.00286 %"
    # "10 per 100k" at N = 200k is 19.998/2 = 9.999 rounded.
    assert per_100k(novel_type_threshold(200_000).rate) == approx(10.0, abs=0.005)


# --------------------------------------------------------------------------- §7 H1-H2


def _brute_force_p(diff: list[float]) -> float:
    """One-sided sign-flip p-value by enumerating every sign assignment."""
    import itertools

    observed = sum(diff)
    signs = list(itertools.product((1, -1), repeat=len(diff)))
    hits = sum(
        sum(s * abs(d) for s, d in zip(sg, diff, strict=True)) >= observed - 1e-12 for sg in signs
    )
    return hits / len(signs)


def test_paired_sign_flip_test_worked_example() -> None:
    # Six categories: NLL differences (baseline minus method) 0.5, 2, 3, 4, 5, -0.8, sum 13.7.
    # Of the 64 sign assignments three reach it: as observed; -0.8 flipped (15.3); 0.5 and
    # -0.8 flipped (14.3). p = 3/64 = 0.046875, the form of the paper's H2 p-value.
    baseline = [1.5, 3.0, 4.0, 5.0, 6.0, 1.0]
    method = [1.0, 1.0, 1.0, 1.0, 1.0, 1.8]
    t = paired_sign_flip_test(method, baseline)
    assert t.exact and t.n == 6
    assert t.statistic == approx(13.7 / 6)
    assert t.p_value == approx(3 / 64)
    assert paired_sign_flip_test([1.0], [2.0]).p_value == 0.5  # one category: d or -d


@settings(max_examples=40, deadline=None)
# Quarter steps: ties are exact, so the brute force needs no tolerance of its own.
@given(st.lists(st.integers(-20, 20).map(lambda i: i / 4), min_size=1, max_size=9))
def test_paired_sign_flip_test_is_exact(diff: list[float]) -> None:
    t = paired_sign_flip_test([0.0] * len(diff), diff)
    assert t.p_value == approx(_brute_force_p(diff), abs=1e-9)


def test_paired_sign_flip_test_large_and_one_sided() -> None:
    rng = np.random.default_rng(7)
    base = rng.normal(size=40)
    better = paired_sign_flip_test(base - 0.5, base)  # the method always lower: tiny p
    worse = paired_sign_flip_test(base + 0.5, base)  # always higher: p near 1
    assert not better.exact and better.p_value < 1e-5
    assert worse.p_value > 0.99


# --------------------------------------------------------------------------- §5.12-5.13


def test_error_decomposition_worked_example() -> None:
    d = error_decomposition(
        sim_xy=per100k(24),
        sim_xx=per100k(20),
        prod_x=per100k(16),
        sim_yy=per100k(15),
        prod_y=per100k(10),
    )
    assert d.fidelity_y == approx(1.5)
    assert d.fidelity_x == approx(1.25)
    assert d.prefix == approx(1.2)
    assert d.total == approx(1.5)
    assert d.log_total == approx(math.log(24 / 16))
    assert d.log_total == approx(d.log_prefix + d.log_fidelity_x)


def test_error_decomposition_before_release_fields_optional() -> None:
    d = error_decomposition(sim_xy=0.2, sim_xx=0.1, prod_x=0.4)
    assert d.fidelity_y is None
    assert (d.log_prefix > 0) and (d.log_fidelity_x < 0)  # errors of opposite sign cancel
    assert d.total == approx(2.0)


def test_bias_corrected_forecast_worked_example() -> None:
    res = bias_corrected_forecast(
        prod_y=per100k(10),
        sim_xy=per100k(24),
        sim_yy=per100k(15),
        k_prod_y=20,
        k_xy=24,
        k_yy=15,
        pseudocount=0.0,  # method.md's example uses 1/K with the raw counts
    )
    assert per_100k(res.rate) == approx(16.0)
    assert res.se_log == approx(0.398, abs=5e-4)
    assert res.factor == approx(2.18, abs=0.005)
    assert per_100k(res.lower) == approx(7.3, abs=0.05)
    assert per_100k(res.upper) == approx(34.9, abs=0.05)


# --------------------------------------------------------------------------- §5.14 Gumbel tail


def _worked_tail_probabilities() -> list[float]:
    # m = 1000 prefixes whose top 10 lie exactly on ln S = -10 psi - 26.2; the rest are lower.
    psi = [(math.log(j / 1000) + 26.2) / -10 for j in range(1, 11)]
    return [math.exp(-math.exp(-x)) for x in psi] + [1e-6] * 990


def test_gumbel_tail_worked_example() -> None:
    p = _worked_tail_probabilities()
    psi_top = sorted((-math.log(-math.log(x)) for x in p), reverse=True)[:10]
    assert psi_top[0] == approx(-1.9292, abs=5e-5)
    assert psi_top[1] == approx(-1.9985, abs=5e-5)
    assert psi_top[9] == approx(-2.1595, abs=5e-5)
    assert max(p) == approx(1.02e-3, abs=5e-6)
    assert p[9] == approx(1.72e-4, abs=5e-7)
    fit = gumbel_tail_fit(p)
    assert fit.slope == approx(-10.0)
    assert fit.intercept == approx(-26.2)
    assert (fit.m, fit.top_k) == (1000, 10)
    assert fit.worst_query_risk(1e3) == approx(0.00102, abs=5e-6)
    assert fit.worst_query_risk(1e5) == approx(0.0130, abs=5e-5)
    assert fit.worst_query_risk(1e6) == approx(0.0317, abs=5e-5)


def test_gumbel_tail_from_several_samples_per_prefix() -> None:
    assert prefix_probabilities([0, 3], 9) == (0.05, 0.35)  # J(0, 9), J(3, 9)
    counts = [0] * 90 + [1, 1, 2, 2, 3, 3, 4, 5, 7, 9]
    fit = gumbel_tail_from_counts(counts, samples_per_prefix=20, top_k=10)
    assert fit.slope < 0
    assert fit.worst_query_risk(1e4) > fit.worst_query_risk(1e2)


# --------------------------------------------------------------------------- input checks


@pytest.mark.parametrize(
    "call",
    [
        lambda: jeffreys_rate(5, 4),  # k > n
        lambda: jeffreys_rate(-1, 4),
        lambda: jeffreys_rate(0, -4),
        lambda: jeffreys_rate(0, 0),  # an empty sample has no rate
        lambda: jeffreys_rate(1.5, 4),  # type: ignore[arg-type]
        lambda: jeffreys_rate(True, 4),
        lambda: jeffreys_interval(1, 4, level=1.0),
        lambda: per_100k(1.5),
        lambda: per_100k(-0.1),
        lambda: per_100k(float("nan")),
        lambda: sme(0.0, 0.1),  # SME needs smoothed (positive) rates
        lambda: sme_summary([0.1, 0.2], [0.1]),
        lambda: sme_summary([], []),
        lambda: directional_accuracy([0.1], [0.1, 0.2], [0.1]),
        lambda: directional_accuracy([0.1], [0.2], [0.1], min_change=0.5),
        lambda: binomial_nll(1.2, 1, 10),
        lambda: nll_regret(0.1, 11, 10),
        lambda: log_correlation([0.1], [0.2]),
        lambda: log_correlation([0.1, 0.1], [0.1, 0.2]),
        lambda: log_correlation([0.1, 2.0], [0.1, 0.2]),
        lambda: fisher_compare(11, 10, 1, 10),
        lambda: fisher_compare(1, 10, 1, 10, alpha=0.0),
        lambda: fisher_compare_many([(1, 10, 1, 10)], correction="holm"),  # type: ignore[arg-type]
        lambda: noise_funnel(0, 5, pseudocount=0.0),
        lambda: noise_funnel(-1, 5),
        lambda: detection_probability(-0.1, 10),
        lambda: detection_sample_size(0.0),
        lambda: zero_event_upper_bound(0),
        lambda: novel_type_threshold(0),
        lambda: paired_sign_flip_test([], []),
        lambda: paired_sign_flip_test([1.0], [1.0, 2.0]),
        lambda: paired_sign_flip_test([math.inf], [1.0]),
        lambda: error_decomposition(sim_xy=0.1, sim_xx=0.1, prod_x=0.1, sim_yy=0.1),
        lambda: bias_corrected_forecast(
            prod_y=0.1, sim_xy=0.1, sim_yy=0.1, k_prod_y=0, k_xy=1, k_yy=1, pseudocount=0.0
        ),
        lambda: rogan_gladen(0.1, 1.1, 0.9),
        lambda: rogan_gladen(0.1, 0.9, 0.9, n=0),
        lambda: grader_validation(tp=0, fn=0, tn=5, fp=1),
        lambda: hajek_prevalence([1, 0], [0.5]),
        lambda: hajek_prevalence([1, 0], [0.5, 0.0]),
        lambda: hajek_prevalence([2, 0], [0.5, 0.5]),
        lambda: hajek_prevalence([1, 0], [0.5, 0.5], ["a"]),
        lambda: hajek_prevalence([], []),
        lambda: gumbel_tail_fit([0.1, 0.2], top_k=3),
        lambda: gumbel_tail_fit([0.0, 0.2, 0.3]),
        lambda: gumbel_tail_fit([0.1, 0.1, 0.1], top_k=2),
        lambda: gumbel_tail_from_counts([5, 1], samples_per_prefix=4, top_k=2),
        lambda: gumbel_tail_fit(_worked_tail_probabilities()).worst_query_risk(0.5),
    ],
)
def test_impossible_inputs_raise_stats_error(call: object) -> None:
    with pytest.raises(StatsError):
        call()  # type: ignore[operator]


def test_error_message_names_the_problem() -> None:
    with pytest.raises(StatsError, match=r"k = 5 .* n = 4"):
        jeffreys_rate(5, 4)


def test_results_are_immutable() -> None:
    ci = jeffreys_interval(3, 10)
    with pytest.raises(AttributeError):
        ci.lower = 0.0  # type: ignore[misc]


# --------------------------------------------------------------------------- properties


@st.composite
def counts(draw: st.DrawFn) -> tuple[int, int]:
    n = draw(st.integers(1, 10**6))
    k = draw(st.one_of(st.integers(0, min(n, 20)), st.integers(0, n)))
    return k, n


@PROPS
@given(counts(), st.floats(0.5, 0.999))
def test_jeffreys_interval_contains_estimates(kn: tuple[int, int], level: float) -> None:
    k, n = kn
    ci = jeffreys_interval(k, n, level)
    assert 0.0 <= ci.lower <= ci.upper <= 1.0
    assert ci.contains(jeffreys_rate(k, n))
    assert ci.contains(k / n)


@PROPS
@given(counts(), st.floats(0.5, 0.99), st.floats(0.5, 0.99))
def test_jeffreys_interval_nests_by_level(kn: tuple[int, int], a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    inner, outer = jeffreys_interval(*kn, lo), jeffreys_interval(*kn, hi)
    assert outer.lower <= inner.lower and inner.upper <= outer.upper


@PROPS
@given(st.floats(0.0, 1.0))
def test_rogan_gladen_identity_at_perfect_grader(p: float) -> None:
    res = rogan_gladen(p, 1.0, 1.0)
    assert res.estimate == p and res.correctable and not res.clipped


@PROPS
@given(
    st.integers(0, 2000),
    st.integers(1, 2000),
    st.integers(0, 100),
    st.integers(1, 100),
    st.integers(0, 100),
    st.integers(1, 100),
)
def test_rogan_gladen_interval_never_zero_width(
    k: int, n: int, tp: int, n_pos: int, tn: int, n_neg: int
) -> None:
    # The delta method gave [0, 0] whenever the uncorrected value was negative, and a width
    # that vanished with a validation measured at Sp = 1.
    k, tp, tn = min(k, n), min(tp, n_pos), min(tn, n_neg)
    res = rogan_gladen(k / n, tp / n_pos, tn / n_neg, n=n, n_pos=n_pos, n_neg=n_neg)
    assert res.interval is not None
    assert res.interval.upper > res.interval.lower
    assert res.interval.contains(res.estimate)


@pytest.mark.parametrize(("a", "b", "c", "level"), [(20, 24, 15, 0.95), (1, 300, 7, 0.9)])
def test_bias_corrected_interval_by_hand(a: int, b: int, c: int, level: float) -> None:
    # r = a * b / c (per 1e6), SE = sqrt(sum 1/(K + 1/2)), interval r x/÷ exp(z SE).
    res = bias_corrected_forecast(
        prod_y=a / 1e6, sim_xy=b / 1e6, sim_yy=c / 1e6, k_prod_y=a, k_xy=b, k_yy=c, level=level
    )
    z = {0.95: 1.959964, 0.9: 1.644854}[level]
    factor = math.exp(z * math.sqrt(1 / (a + 0.5) + 1 / (b + 0.5) + 1 / (c + 0.5)))
    assert res.rate == approx(a * b / c / 1e6)
    assert res.lower == approx(res.rate / factor, rel=1e-6)
    assert res.upper == approx(res.rate * factor, rel=1e-6)


@PROPS
@given(
    st.lists(st.integers(0, 1), min_size=1, max_size=60),
    st.floats(1e-4, 1.0),
)
def test_hajek_equal_weights_independent_turns(flags: list[int], pi: float) -> None:
    res = hajek_prevalence(flags, [pi] * len(flags))
    assert res.estimate == approx(sum(flags) / len(flags), abs=1e-12)
    assert res.lower <= res.estimate <= res.upper
    assert res.upper > res.lower  # never of zero width, even at k = 0 or k = n


@PROPS
@given(
    st.lists(
        st.tuples(st.integers(0, 1), st.floats(0.01, 1.0), st.integers(0, 5)),
        min_size=1,
        max_size=60,
    ),
    st.floats(0.01, 1.0),
)
def test_hajek_weighted_properties(items: list[tuple[int, float, int]], scale: float) -> None:
    flags = [y for y, _, _ in items]
    pis = [p for _, p, _ in items]
    conv = [f"c{c}" for _, _, c in items]
    res = hajek_prevalence(flags, pis, conv)
    w = [1 / p for p in pis]
    expected = sum(wi * y for wi, y in zip(w, flags, strict=True)) / sum(w)
    assert res.estimate == approx(expected)
    # Hajek, and its interval, are invariant to a common rescaling of the inclusion
    # probabilities.
    scaled = hajek_prevalence(flags, [p * scale for p in pis], conv)
    assert scaled.estimate == approx(res.estimate)
    assert (scaled.lower, scaled.upper) == (approx(res.lower), approx(res.upper))
    assert res.lower <= res.estimate <= res.upper < 1.0 or res.upper == 1.0
    assert res.n_clusters == len(set(conv))
    assert res.effective_n <= sum(w) ** 2 / sum(x * x for x in w) + 1e-9  # at most Kish's n


def test_hajek_weights_by_inverse_inclusion_probability() -> None:
    # A flagged item sampled with pi = 0.1 stands for 10 items; unflagged ones for 1 each.
    res = hajek_prevalence([1, 0, 0, 0, 0], [0.1, 1, 1, 1, 1])
    assert res.estimate == approx(10 / 14)
    # Linearisation: residuals 10(1 - 5/7) = 20/7 and 4 x (0 - 5/7); v = 5/4 * sum r^2 / 14^2.
    v = 5 / 4 * ((20 / 7) ** 2 + 4 * (5 / 7) ** 2) / 196
    t_adj = (1.959964 / 2.776445) ** 2  # z / t(4 df), squared
    kish = 14**2 / 104
    assert res.effective_n == approx(min(kish, (10 / 14) * (4 / 14) / v * t_adj), rel=1e-5)


def test_hajek_zero_count_uses_kish_n_over_prefixes() -> None:
    # 0 flags in 50 prefixes x 4 draws: nothing says how alike the draws are, so the interval
    # counts prefixes: Clopper-Pearson's 1 - 0.025^(1/50), not 1 - 0.025^(1/200).
    prefixes = [i // 4 for i in range(200)]
    res = hajek_prevalence([0] * 200, None, prefixes, prefixes)
    assert res.effective_n == approx(50)
    assert (res.lower, res.upper) == (0.0, approx(1 - 0.025 ** (1 / 50)))
    assert res.design_effect == approx(4)


def test_hajek_clusters_widen_the_interval_of_correlated_turns() -> None:
    # 20 conversations of 4 turns, all flagged or all clean: the turns are worth 20 draws, not
    # 80, and the interval says so.
    flags = [1, 1, 1, 1, 0, 0, 0, 0] * 10
    conv = [i // 4 for i in range(80)]
    clustered = hajek_prevalence(flags, None, conv)
    independent = hajek_prevalence(flags, None)
    assert clustered.effective_n < 25 < 75 < independent.effective_n
    assert (clustered.upper - clustered.lower) > 1.5 * (independent.upper - independent.lower)


@PROPS
@given(
    st.floats(-20.0, -1.0),
    st.floats(-1.0, 3.0),
    st.integers(20, 100_000),
    st.integers(2, 100),
)
def test_gumbel_fit_recovers_exact_synthetic_tail(
    slope: float, psi_top: float, m: int, top_k: int
) -> None:
    # Top scores on ln S = slope * psi + b exactly (plotting positions j/m); the rest below.
    top_k = min(top_k, m)
    intercept = math.log(1 / m) - slope * psi_top
    psi = [(math.log(j / m) - intercept) / slope for j in range(1, top_k + 1)]
    psi += [psi[-1] - 1.0] * (m - top_k)
    fit = gumbel_tail_fit(np.exp(-np.exp(-np.asarray(psi))), top_k=top_k)
    assert fit.slope == approx(slope, rel=1e-6)
    assert fit.intercept == approx(intercept, rel=1e-6, abs=1e-6)
    n = 100.0 * m
    truth = math.exp(-math.exp(-(-math.log(n) - intercept) / slope))
    assert fit.worst_query_risk(n) == approx(truth, rel=1e-6)


# --------------------------------------------------------------------------- tail refusals


def test_tail_refuses_a_fit_to_the_smoothing_floor() -> None:
    # 3 flagged of 1000 prefixes: the top 10 would include 7 never-flagged prefixes at the
    # Jeffreys floor 1/(2(s+1)); the old fit extrapolated that floor to a large risk.
    counts = [1, 2, 1] + [0] * 997
    with pytest.raises(StatsError, match="only 3 of 1000 prefixes were ever flagged"):
        gumbel_tail_from_counts(counts, samples_per_prefix=20)
    with pytest.raises(StatsError, match="only 3 of 1000"):
        tail_risk(counts, 20, 1e6)


def test_tail_risk_interval_and_diagnostic_on_a_known_tail() -> None:
    # Per-prefix rates on an exact Gumbel tail (slope -3, intercept -9), 1000 draws each.
    rng = np.random.default_rng(3)
    a, b, m, s = -3.0, -9.0, 1000, 1000
    p = np.exp(-np.exp(-(np.log(rng.random(m)) - b) / a))
    counts = rng.binomial(s, p).tolist()
    res = tail_risk(counts, s, 1e5, n_boot=300)
    truth = math.exp(-math.exp(-((-math.log(1e5) - b) / a)))
    assert res.lower <= truth <= res.upper
    assert res.lower < res.risk < res.upper
    assert res.r_squared > 0.8 and res.refits >= 250
    # Per-prefix draws may differ (ungradable draws): the same counts with s per prefix.
    same = tail_risk(counts, [s] * m, 1e5, n_boot=300)
    assert same.risk == approx(res.risk)


# --------------------------------------------------------------------------- Rogan-Gladen review


def _lr_statistic(
    pi: float, mle: float, k: int, n: int, tp: int, n_pos: int, tn: int, n_neg: int
) -> float:
    """2 x (max log-likelihood - profile log-likelihood at pi), by brute force with scipy."""
    from scipy import optimize
    from scipy.special import xlog1py, xlogy

    def loglik(pi: float, s: float, f: float) -> float:
        q = pi * s + (1 - pi) * f
        return float(
            xlogy(k, q)
            + xlog1py(n - k, -q)
            + xlogy(tp, s)
            + xlog1py(n_pos - tp, -s)
            + xlogy(n_neg - tn, f)
            + xlog1py(tn, -f)
        )

    box = [(1e-12, 1 - 1e-12)] * 2

    def profile(pi: float) -> float:
        starts = [(tp / n_pos, (n_neg - tn) / n_neg), (0.5, 0.01), (0.9, 1e-6)]
        return max(
            -optimize.minimize(
                lambda x: -loglik(pi, x[0], x[1]),
                [min(max(v, 1e-6), 1 - 1e-6) for v in x0],
                bounds=box,
                method="L-BFGS-B",
            ).fun
            for x0 in starts
        )

    # The constrained maximum is at the clipped Rogan-Gladen estimate (the plug-in MLE).
    return 2 * (profile(mle) - profile(pi))


def test_rogan_gladen_review_example_now_includes_zero() -> None:
    # Observed 0.002 of 100k, Se 0.8 (56/70), Sp 1 (35/35): the delta method gave
    # [0.00205, 0.00295], but false positives at a rate 35 negatives cannot rule out explain
    # every flag, so 0 must be inside. The upper end is where the likelihood-ratio statistic,
    # computed here independently by brute force, reaches chi2(1, 0.95) = 3.8415.
    res = rogan_gladen(0.002, 0.8, 1.0, n=100_000, n_pos=70, n_neg=35)
    assert res.estimate == approx(0.0025)
    assert res.interval is not None and res.interval.lower == 0.0
    assert 0.0025 < res.interval.upper < 0.0035
    assert _lr_statistic(res.interval.upper, 0.0025, 200, 100_000, 56, 70, 35, 35) == approx(
        3.8415, abs=0.02
    )
    assert _lr_statistic(0.0, 0.0025, 200, 100_000, 56, 70, 35, 35) < 3.8415


def test_rogan_gladen_negative_correction_keeps_an_upper_bound() -> None:
    # 1 flagged of 1000 with Sp 0.99 (99/100): the uncorrected value (0.001 - 0.01)/0.79 is
    # negative, and the delta method's interval collapsed to [0, 0].
    res = rogan_gladen(0.001, 0.8, 0.99, n=1000, n_pos=100, n_neg=100)
    assert res.estimate == 0.0 and res.clipped
    assert res.interval is not None and res.interval.lower == 0.0
    assert res.interval.upper > 0.001
    assert _lr_statistic(res.interval.upper, 0.0, 1, 1000, 80, 100, 99, 100) == approx(
        3.8415, abs=0.02
    )
