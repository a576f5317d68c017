"""The report's Backtest section: aggregate table, forecast-vs-realised plot, pairs table."""

from __future__ import annotations

import re
from pathlib import Path

from deploysim.report import write_report
from deploysim.report.backtest import PLOTTED, backtest_section, forecast_plot
from deploysim.store import Store
from tests.report.synthetic import XSS, Synthetic, backtest_result


def report(syn: Synthetic, tmp_path: Path) -> str:
    out = tmp_path / "r.html"
    with Store(syn.path) as st:
        write_report(st, out)
    return out.read_text(encoding="utf-8")


def section(html: str) -> str:
    m = re.search(r"<section id=backtest>(.*?)</section>", html, re.S)
    assert m is not None
    return m.group(1)


def test_backtest_section_tables_and_plot(backtested: Synthetic, tmp_path: Path) -> None:
    html = report(backtested, tmp_path)
    assert "<a href='#backtest'>Backtest</a>" in html
    sec = section(html)
    result = backtest_result()
    rows = result["rows"]
    # The aggregate table: one row per method, with the accuracy on the eligible categories.
    assert "direction correct / eligible" in sec and "SME median" in sec
    for method, agg in result["aggregate"].items():
        assert f"<tr><td>{method}</td><td class=n>{agg['rows']}</td>" in sec
    sim = result["aggregate"]["sim"]
    pct = round(100 * sim["directional_accuracy"])
    assert f"{sim['direction_correct']}/{sim['direction_eligible']} = {pct}% [10%, 90%]" in sec
    assert "over 4 pair-categories, p = 0.0625 (alpha 0.1): <strong>supported</strong>" in sec
    # No-change has no direction: undefined, not 0%.
    assert f"undefined ({sim['direction_eligible']} moved; no direction)" in sec
    assert "challenging_raw" not in sec  # listed in "methods" but never run
    assert "1.5x or more" in sec and "directional accuracy is undefined" in sec
    assert "95% bootstrap percentile intervals over 2,000 replicates" in sec
    # The plot: one point per row of a plotted method, per series; the funnel and diagonal.
    plotted = [r for r in rows if r["method"] in PLOTTED]
    assert len(plotted) == 10 and len(rows) == 14
    assert sec.count('<svg class="chart xy"') == 1
    assert sec.count("<g class=xy-pt ") == len(plotted)
    for method in PLOTTED:
        n = sum(r["method"] == method for r in rows)
        assert sec.count(f'data-series="{method}"') == n
    assert "<polygon class=band " in sec and "noise funnel (90%)" in sec
    assert "rel-a -&gt; rel-b, REFUSAL, sim: forecast " in sec
    # The pairs table: realised counts, marks, hypotheses.
    assert "61/1,000" in sec and "3/100,000" in sec
    assert "✓" in sec and "✗" in sec and "–</span>" in sec
    assert "not supported" in sec and "p = 0.04" in sec and "p = 0.31" in sec
    assert "<th>H1</th><th>H2</th><th>H3</th>" in sec and "not tested" in sec
    assert "Unscored forecasts" not in sec  # every forecast of the synthetic result scored


def test_pairs_table_shows_h3_bounds_and_unscored_forecasts() -> None:
    result = backtest_result()
    pair = result["pairs"][0]
    pair["hypotheses"]["H3"] = {
        "outcome": "inconclusive: bounds straddle",
        "upper_bound": 1.4978e-4,
        "threshold_rate": 1e-4,
    }
    pair["unscored"] = [
        {
            "category": "PROFANITY",
            "method": "sim",
            "reason": "all 7 production grades were ungradable",
        }
    ]
    sec = backtest_section(result)
    assert "inconclusive: bounds straddle" in sec
    assert "upper 15 vs threshold 10" in sec  # per 100k
    assert "PROFANITY sim: all 7 production grades were ungradable" in sec


def test_backtest_uses_the_latest_result_and_escapes(backtested: Synthetic, tmp_path: Path) -> None:
    html = report(backtested, tmp_path)
    sec = section(html)
    assert "old-release" not in html
    assert XSS not in html and "<img" not in html and "<script>window" not in html
    assert "&lt;img src=x onerror=&quot;window.__xss=2&quot;&gt;" in sec  # table cells
    assert '&lt;img src=x onerror="window.__xss=2"&gt;' in sec  # SVG tooltips
    assert len(re.findall(r"<script\b", html)) == 2


def test_no_backtest_no_section(hostile: Synthetic, tmp_path: Path) -> None:
    html = report(hostile, tmp_path)
    assert "<section id=backtest>" not in html and "#backtest" not in html


def test_plot_clamps_to_a_sane_range() -> None:
    rows = [
        {"method": "sim", "forecast": f, "realised_rate": r, "category": "C"}
        for f, r in ((0.0, 1e-5), (0.9, 0.85), (2e-9, 3e-4), (float("nan"), 0.01))
    ]
    svg = forecast_plot(rows, [{"realised": 1e-12, "low": 1e-13, "high": 1e-11}], ["sim"])
    assert svg.count("<g class=xy-pt ") == 4
    ticks = re.findall(r'text-anchor="middle" fill="#555">([^<]*)<', svg)
    # 1e-7 (the floor, for the 2e-9 forecast) to 1 (the ceiling), in per-100k labels.
    assert ticks[0] == "0.01" and ticks[-1] == "100k"
    coords = [float(v) for v in re.findall(r'c[xy]="([-\d.]+)"', svg)]
    assert all(0 <= v <= 700 for v in coords)


def test_partial_result_does_not_break_the_section() -> None:
    html = backtest_section({"methods": ["sim"]})
    assert "No pair in this backtest" in html and "No forecast of a plotted method" in html
    result = backtest_result()
    result["bootstrap"]["replicates"] = 0
    assert "no bootstrap intervals in this run" in backtest_section(result)
