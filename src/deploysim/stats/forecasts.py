"""Error decomposition and the bias-corrected forecast (method.md §5.12-5.13)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as sps

from deploysim.errors import StatsError
from deploysim.stats._base import _count, _level, _rate
from deploysim.stats.rates import sme

# --------------------------------------------------------------------------- 5.12-5.13 errors


@dataclass(frozen=True, slots=True)
class ErrorDecomposition:
    """Total error split into prefix error and fidelity (§5.12).

    ``log_*`` are signed natural logs with ``log_total = log_prefix + log_fidelity_x``; the other
    fields are the matching SMEs. ``fidelity_y`` (Y→Y vs prod Y, known before release) is None
    when its inputs were not given.
    """

    total: float
    prefix: float
    fidelity_x: float
    fidelity_y: float | None
    log_total: float
    log_prefix: float
    log_fidelity_x: float


def error_decomposition(
    *,
    sim_xy: float,
    sim_xx: float,
    prod_x: float,
    sim_yy: float | None = None,
    prod_y: float | None = None,
) -> ErrorDecomposition:
    """Split the forecast error (§5.12): ``ln(xy/prod_x) = ln(xy/xx) + ln(xx/prod_x)``.

    total = SME(X→Y, prod X); prefix = SME(X→Y, X→X); fidelity_x = SME(X→X, prod X);
    fidelity_y = SME(Y→Y, prod Y). Rates must be > 0 (smoothed).
    """
    xy, xx = _rate("sim_xy", sim_xy, positive=True), _rate("sim_xx", sim_xx, positive=True)
    px = _rate("prod_x", prod_x, positive=True)
    if (sim_yy is None) != (prod_y is None):
        raise StatsError("give both sim_yy and prod_y, or neither")
    fidelity_y = None if sim_yy is None or prod_y is None else sme(sim_yy, prod_y)
    log_prefix, log_fid = math.log(xy / xx), math.log(xx / px)
    return ErrorDecomposition(
        total=sme(xy, px),
        prefix=sme(xy, xx),
        fidelity_x=sme(xx, px),
        fidelity_y=fidelity_y,
        log_total=log_prefix + log_fid,
        log_prefix=log_prefix,
        log_fidelity_x=log_fid,
    )


@dataclass(frozen=True, slots=True)
class BiasCorrectedForecast:
    """``rate`` with interval ``[rate / factor, rate * factor]`` (§5.13); ``se_log`` = SE of ln."""

    rate: float
    lower: float
    upper: float
    se_log: float
    factor: float


def bias_corrected_forecast(
    *,
    prod_y: float,
    sim_xy: float,
    sim_yy: float,
    k_prod_y: int,
    k_xy: int,
    k_yy: int,
    level: float = 0.95,
    pseudocount: float = 0.5,
) -> BiasCorrectedForecast:
    """Forecast corrected for a fixed multiplicative pipeline bias (§5.13, an assumption).

    ``r = prod_y * sim_xy / sim_yy``; ``Var(ln r) = 1/K_prodY + 1/K_XY + 1/K_YY`` (Poisson,
    ignores the pairing of X→Y and Y→Y, hence conservative), counts ``+ pseudocount`` as in
    :func:`noise_funnel`; interval ``r ×/÷ exp(z * SE)``. ``rate`` may exceed 1 in principle and
    is returned unclipped. method.md's example uses raw counts (``pseudocount=0``).
    """
    py = _rate("prod_y", prod_y, positive=True)
    xy, yy = _rate("sim_xy", sim_xy, positive=True), _rate("sim_yy", sim_yy, positive=True)
    counts = [
        _count(name, k) for name, k in (("k_prod_y", k_prod_y), ("k_xy", k_xy), ("k_yy", k_yy))
    ]
    if not pseudocount >= 0.0 or min(counts) + pseudocount <= 0.0:
        raise StatsError(
            "bias_corrected_forecast needs positive counts (or a positive pseudocount)"
        )
    se_log = math.sqrt(sum(1.0 / (k + pseudocount) for k in counts))
    factor = math.exp(float(sps.norm.ppf((1.0 + _level(level)) / 2.0)) * se_log)
    rate = py * xy / yy
    return BiasCorrectedForecast(rate, rate / factor, rate * factor, se_log, factor)
