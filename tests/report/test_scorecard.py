"""The report's scorecard tables: every part of a scorecard shown, nothing dropped."""

from __future__ import annotations

from typing import Any

from deploysim.report.scorecard import forecasts_section
from deploysim.scorecard import _h3_outcome, score

XSS = '<img src=x onerror="window.__xss=9">'


def _f(cat: str, method: str, rate: float, k: int) -> dict[str, Any]:
    return {
        "category": cat,
        "grader_hash": f"g{cat}",
        "method": method,
        "rate": rate,
        "baseline_rate": 1e-3,
        "k": k,
        "n": 1000,
        "failed": 4,
        "ungradable": 3,
    }


def test_scorecard_tables_show_every_part() -> None:
    forecasts = [
        _f("A", "sim", 1e-4, 0),
        _f("B", "sim", 1e-2, 10),
        _f(XSS, "sim", 1e-3, 1),
        _f("D", "sim", 1e-3, 0),
        *[_f(c, "no_change", 1e-3, 1) for c in ("A", "B", XSS)],
    ]
    graders = {f["grader_hash"]: {"spec": "rule/x"} for f in forecasts}
    h3 = {"registered": True, "audited_turns": 199_980, "threshold_rate": 1e-4, "lambda": 19.998}
    manifest = {
        "content_hash": "c" * 64,
        "candidate": "X",
        "graders": graders,
        "forecasts": forecasts,
        "rates": {"gA": {"yy": {"rate": 15e-5}, "prod_y": {"rate": 10e-5}}},
        "hypotheses": {"H3": h3},
        "unmeasured": [
            {"model": "Y", "category": "A", "attempted": 9, "failed": 9, "ungradable": 0}
        ],
    }
    realised = {"gA": (0, 999), "gB": (1, 999), f"g{XSS}": (13, 999)}
    coverage = {"audited": 20_000, "flagged": 0}
    card = score(manifest, realised, coverage, ungradable={"gD": 7}, sim_xx={"gA": (0, 2499)})
    html = forecasts_section([], [card])
    # Correlations (hand-computed in tests/test_forecast.py): r = 0.3273, rho = 0.5.
    assert "<td class=n>0.3273</td><td class=n>0.5</td>" in html
    assert "1/3 = 33%" in html  # one of three inside the noise funnel
    assert "undefined (3 moved)" in html  # no-change has no direction
    assert "no_change: undefined: no-change forecasts no move" in html
    assert "no_change: undefined: the forecasts are constant" in html
    assert "all 7 production grades were ungradable" in html  # D, unscored
    assert "<td>D</td><td>rule/x</td><td class=n>0</td><td class=n>0</td><td class=n>7</td>" in html
    assert "4 / 3" in html  # the registration's failed / ungradable counts
    assert "Unmeasured at registration" in html
    assert "Error decomposition (SME" in html
    # H3: 0 of 20,000 flagged, upper bound 14.98 per 100k vs threshold 10: inconclusive.
    assert "inconclusive" in html and "0.00–14.98 per 100k vs threshold 10.00" in html
    assert XSS not in html and "&lt;img src=x" in html


def test_h3_not_registered_and_older_cards_render() -> None:
    h3 = {"claim": "c", "registered": False, "reason": "no audit (register with --auditor)"}
    manifest = {
        "content_hash": "d" * 64,
        "candidate": "X",
        "forecasts": [],
        "hypotheses": {"H3": h3},
    }
    old_card = {"forecast": "d" * 64, "candidate": "X", "methods": {"sim": {"categories": 1}}}
    card = {**old_card, "hypotheses": {"H3": _h3_outcome(h3, None)}}
    html = forecasts_section([manifest], [old_card, card])
    assert html.count("not registered: no audit (register with --auditor)") == 2
