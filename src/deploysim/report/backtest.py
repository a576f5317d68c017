"""The report's Backtest section: how well each forecasting method predicted the production
rates of releases that did ship, from the latest ``backtest`` analysis in the store.

Three parts: a table of every method's scores over all pairs (directional accuracy, symmetric
multiplicative error, NLL, with their bootstrap intervals), a log-log plot of forecast against
realised rate with the noise funnel, and one table row per pair and category with each method's
forecast. The result is read as stored (see :func:`deploysim.report.data.backtest`); a missing
key shows as "–" rather than failing the whole report. Release names, labels and system prompts
are user data: every one goes through :func:`~deploysim.report.sections.esc` (or the SVG
escaping of :mod:`deploysim.report.svg`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from deploysim.report.sections import esc, table
from deploysim.report.svg import XYPoint, loglog_scatter
from deploysim.stats import PER_100K

#: Methods drawn in the forecast-vs-realised plot, in legend order (those present).
PLOTTED = ("sim", "challenging_scaled", "bias_corrected")
#: What each method forecasts for candidate X deployed in place of Y (see deploysim.forecast).
METHOD_NAMES = {
    "sim": "deployment simulation: X replayed on Y's production prefixes, r(X→Y)",
    "bias_corrected": "prod(Y) · r(X→Y) / r(Y→Y), simulation corrected by its bias on Y",
    "no_change": "Y's production rate, prod(Y)",
    "challenging_raw": "X's rate on challenging prompts",
    "challenging_scaled": "prod(Y) · challenging(X) / challenging(Y)",
}
_MARKS = {True: ("✓", "direction right"), False: ("✗", "direction wrong")}
_NOT_ELIGIBLE = ("–", "not eligible: the category did not move by 1.5x")
_PROMPT_CHARS = 160


def backtest_section(result: dict[str, Any]) -> str:
    """The Backtest section's HTML (without its ``<section>`` element) for one stored result."""
    methods = _methods(result)
    return "".join(
        [
            _releases(result.get("releases") or []),
            "<h3>Scores by method</h3>",
            _aggregate(result, methods),
            "<h3>Forecast vs realised</h3>",
            forecast_plot(result.get("rows") or [], result.get("funnel") or [], methods),
            "<h3>Pairs</h3>",
            _pairs(result, methods),
        ]
    )


def forecast_plot(
    rows: Sequence[dict[str, Any]], funnel: Sequence[dict[str, Any]], methods: Sequence[str]
) -> str:
    """Forecast against realised rate on log-log axes: one point per row of the plotted
    methods (:data:`PLOTTED`), the diagonal, and the noise funnel as a shaded band."""
    series = [m for m in PLOTTED if m in methods]
    points = [
        XYPoint(
            float(r["realised_rate"]),
            float(r["forecast"]),
            str(r["method"]),
            f"{r.get('deployed')} -> {r.get('candidate')}, {r.get('category')}, {r['method']}: "
            f"forecast {_rate(r['forecast'])}, realised {_rate(r['realised_rate'])} per 100k",
        )
        for r in rows
        if r.get("method") in series
        and r.get("forecast") is not None
        and r.get("realised_rate") is not None
    ]
    if not points:
        return "<p>No forecast of a plotted method to draw.</p>"
    band = [
        (float(f["realised"]), float(f["low"]), float(f["high"]))
        for f in funnel
        if all(f.get(k) is not None for k in ("realised", "low", "high"))
    ]
    chart = loglog_scatter(
        "Forecast vs realised production rate (per 100k, log-log)",
        points,
        series=series,
        x_label="realised rate (per 100k)",
        y_label="forecast rate (per 100k)",
        band=band,
        band_label="noise funnel (90%)",
        scale=PER_100K,
    )
    return (
        "<p class=note>One point per pair, category and method; hover a point for its values. "
        "On the dashed diagonal a forecast equals the realised rate. The shaded noise funnel is "
        "where 90% of the forecasts of a perfect method would fall from sampling noise alone. "
        "Rates outside the axes sit on their edge.</p>"
        f"<div class=charts>{chart}</div>"
    )


def _methods(result: dict[str, Any]) -> list[str]:
    """The methods with rows or scores: in the order of the result's list, then the others."""
    used = [str(r.get("method")) for r in result.get("rows") or []]
    used += [str(m) for m in result.get("aggregate") or {}]
    order = [str(m) for m in result.get("methods") or []]
    return list(dict.fromkeys([*(m for m in order if m in used), *used]))


def _releases(releases: Sequence[dict[str, Any]]) -> str:
    if not releases:
        return ""
    rows = []
    for r in releases:
        prompt = r.get("system_prompt")
        text = "–" if prompt is None else str(prompt)
        short = text if len(text) <= _PROMPT_CHARS else text[: _PROMPT_CHARS - 1] + "…"
        cell = f"<span title='{esc(text)}'>{esc(short)}</span>"
        rows.append([r.get("name"), r.get("label"), r.get("model"), cell])
    return "<h3>Releases</h3>" + table(
        ["release", "label", "model", "system prompt"], rows, raw=(3,)
    )


def _aggregate(result: dict[str, Any], methods: Sequence[str]) -> str:
    agg: dict[str, dict[str, Any]] = result.get("aggregate") or {}
    boot = result.get("bootstrap") or {}
    level = boot.get("level")
    ci = (
        f"{level * 100:.0f}% bootstrap percentile intervals over "
        f"{boot.get('replicates', 0):,} replicates resampling {esc(boot.get('unit', 'units'))}s "
        f"(seed {esc(boot.get('seed'))})"
        if isinstance(level, int | float) and boot.get("replicates")
        else "no bootstrap intervals in this run"
    )
    rows = [
        [
            m,
            a.get("rows", "–"),
            _accuracy(a),
            _sme(a.get("sme_median")) + _interval(a.get("sme_median_ci"), _sme),
            _sme(a.get("sme_p90")) + _interval(a.get("sme_p90_ci"), _sme),
            _sme(a.get("sme_max")),
            "–" if a.get("nll") is None else f"{a['nll']:,.2f}",
        ]
        for m in methods
        if (a := agg.get(m)) is not None
    ]
    caption = (
        "<p class=note>Each pair forecasts the candidate release's production rates from the "
        "deployed release's logs, then compares them with the candidate's realised production "
        "rates. A category <em>moved</em> when its realised rate and the deployed release's "
        "production rate differ by 1.5x or more (either way); directional accuracy counts "
        "those categories only (eligible). No-change forecasts no change: it has no "
        "direction, so its directional accuracy is undefined. SME (symmetric multiplicative "
        "error) = max(forecast / realised, realised / forecast) &ge; 1, 1 being exact. NLL: "
        "binomial negative "
        "log-likelihood of the realised counts under the forecasts, summed over the method's "
        f"rows. Brackets: {ci}.</p>"
    )
    legend = "".join(
        f"<li><code>{esc(m)}</code>: {esc(METHOD_NAMES[m])}</li>"
        for m in methods
        if m in METHOD_NAMES
    )
    return (
        caption
        + table(
            [
                "method",
                "rows",
                "direction correct / eligible",
                "SME median",
                "SME p90",
                "SME max",
                "NLL",
            ],
            rows,
        )
        + (f"<ul class=note>{legend}</ul>" if legend else "")
        + _pooled_hypotheses(result.get("hypotheses") or {})
    )


def _pooled_hypotheses(hypotheses: dict[str, Any]) -> str:
    """H1/H2 pooled over every pair and category (the rows share samples: indicative)."""
    items = []
    for name, h in hypotheses.items():
        p = f", p = {h['p_value']:.4g}" if isinstance(h.get("p_value"), int | float) else ""
        items.append(
            f"<li>{esc(name)}: {esc(h.get('method'))} vs {esc(h.get('baseline'))} over "
            f"{esc(h.get('rows'))} pair-categories{p} (alpha {esc(h.get('alpha'))}): "
            f"<strong>{esc(h.get('outcome'))}</strong></li>"
        )
    if not items:
        return ""
    return (
        "<p class=note>Pooled over all pairs (paired sign-flip test on NLL; pairs share "
        f"samples, so the p-value is indicative):</p><ul class=note>{''.join(items)}</ul>"
    )


def _pairs(result: dict[str, Any], methods: Sequence[str]) -> str:
    """One row per pair, category and grader; the pair's cells span its rows."""
    rows: list[dict[str, Any]] = result.get("rows") or []
    pairs: list[dict[str, Any]] = list(result.get("pairs") or [])
    known = {(p.get("deployed"), p.get("candidate")) for p in pairs}
    for r in rows:
        key = (r.get("deployed"), r.get("candidate"))
        if key not in known:
            known.add(key)
            pairs.append({"deployed": key[0], "candidate": key[1]})
    if not pairs:
        return "<p>No pair in this backtest.</p>"
    shown = [m for m in methods if any(r.get("method") == m for r in rows)]
    hyps = [h for h in ("H1", "H2", "H3") if any(h in (p.get("hypotheses") or {}) for p in pairs)]
    head = [
        "deployed → candidate",
        "category",
        "realised k/n",
        "realised per 100k",
        "interval",
        "deployed per 100k",
        *(f"{m} per 100k" for m in shown),
        *hyps,
    ]
    body = []
    for p in pairs:
        mine = [r for r in rows if (r.get("deployed"), r.get("candidate")) == _key(p)]
        groups: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        for r in mine:
            groups.setdefault((str(r.get("category")), str(r.get("grader"))), {})[
                str(r.get("method"))
            ] = r
        span = max(1, len(groups))
        lead = (
            f"<td rowspan={span}>{esc(p.get('deployed'))} → {esc(p.get('candidate'))}"
            + (
                f"<div class=meta>forecast <code>{esc(str(p['forecast'])[:12])}</code>"
                f"<br>registered {esc(p.get('registered_at'))}</div>"
                if p.get("forecast")
                else ""
            )
            + "</td>"
        )
        tail = "".join(
            f"<td rowspan={span}>{_hypothesis((p.get('hypotheses') or {}).get(h))}</td>"
            for h in hyps
        )
        if not groups:
            empty = "<td>–</td>" * (len(head) - 1 - len(hyps))
            body.append(f"<tr>{lead}{empty}{tail}</tr>")
            continue
        for i, ((category, grader), by_method) in enumerate(sorted(groups.items())):
            first = next(iter(by_method.values()))
            cells = [
                f"<td>{esc(category)}<div class=meta>{esc(grader)}</div></td>",
                _num_cell(f"{_count(first.get('realised_k'))}/{_count(first.get('realised_n'))}"),
                _num_cell(_rate(first.get("realised_rate"))),
                _num_cell(
                    f"{_rate(first.get('realised_low'))}–{_rate(first.get('realised_high'))}"
                ),
                _num_cell(_rate(first.get("baseline_rate")) + _moved(first)),
                *(_forecast_cell(by_method.get(m)) for m in shown),
            ]
            body.append(
                "<tr>" + (lead if i == 0 else "") + "".join(cells) + (tail if i == 0 else "")
            )
    return (
        "<p class=note>Per 100k responses. Realised: the candidate's production rate, with its "
        "interval. Beside each forecast: ✓ the direction of change (vs the deployed release's "
        "production rate) was right, ✗ wrong, – not eligible (the category did not move by "
        "1.5x). H1-H3: the pair's preregistered hypotheses and their outcomes (H3 with the "
        "one-sided 95% upper bound of the auditor's flagged production rate).</p>"
        + "<table class=backtest-pairs><thead><tr>"
        + "".join(f"<th>{esc(h)}</th>" for h in head)
        + f"</tr></thead><tbody>{''.join(body)}</tbody></table>"
        + _unscored(pairs)
    )


def _unscored(pairs: list[dict[str, Any]]) -> str:
    """Forecasts a pair's scorecard could not score, with the reason (never dropped)."""
    items = [
        f"<li>{esc(p.get('deployed'))} → {esc(p.get('candidate'))}: {esc(u.get('category'))} "
        f"{esc(u.get('method'))}: {esc(u.get('reason'))}</li>"
        for p in pairs
        for u in p.get("unscored") or []
    ]
    return f"<p>Unscored forecasts:</p><ul>{''.join(items)}</ul>" if items else ""


def _key(pair: dict[str, Any]) -> tuple[Any, Any]:
    return pair.get("deployed"), pair.get("candidate")


def _forecast_cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return "<td class=n>–</td>"
    right = row.get("direction_correct")
    mark, why = (
        _MARKS[right]
        if isinstance(right, bool)
        else ("–", "no direction: no-change forecasts no move")
        if row.get("moved")
        else _NOT_ELIGIBLE
    )
    low, high = row.get("forecast_low"), row.get("forecast_high")
    tip = f"SME {_sme(row.get('sme'))}"
    if low is not None and high is not None:
        tip = f"interval {_rate(low)}–{_rate(high)}; " + tip
    return (
        f"<td class=n title='{esc(tip)}'>{esc(_rate(row.get('forecast')))} "
        f"<span title='{esc(why)}'>{mark}</span></td>"
    )


def _hypothesis(h: dict[str, Any] | None) -> str:
    if not h:
        return "–"
    p, upper = h.get("p_value"), h.get("upper_bound")
    meta = ""
    if isinstance(p, int | float):
        meta = f"<div class=meta>p = {esc(f'{p:.3g}')}</div>"
    elif isinstance(upper, int | float) and isinstance(h.get("threshold_rate"), int | float):
        meta = (
            f"<div class=meta>upper {esc(_rate(upper))} vs threshold "
            f"{esc(_rate(h['threshold_rate']))}</div>"
        )
    return esc(h.get("outcome", "–")) + meta


def _moved(row: dict[str, Any]) -> str:
    realised, base = row.get("realised_rate"), row.get("baseline_rate")
    if not row.get("moved") or not realised or not base:
        return ""
    return f" ({'↑' if realised > base else '↓'} {max(realised / base, base / realised):.1f}x)"


def _count(n: Any) -> str:
    return f"{n:,}" if isinstance(n, int) else "–"


def _num_cell(text: str) -> str:
    return f"<td class=n>{esc(text)}</td>"


def _accuracy(a: dict[str, Any]) -> str:
    correct, eligible = a.get("direction_correct", "–"), a.get("direction_eligible", "–")
    acc = a.get("directional_accuracy")
    text = f"{correct}/{eligible}"
    if acc is None:
        return f"undefined ({eligible} moved; no direction)" if eligible else text
    return f"{text} = {acc * 100:.0f}%" + _interval(
        a.get("directional_accuracy_ci"), lambda v: f"{v * 100:.0f}%"
    )


def _interval(ci: Sequence[float] | None, fmt: Callable[[float], str]) -> str:
    if not ci or len(ci) != 2 or ci[0] is None or ci[1] is None:
        return ""
    return f" [{fmt(ci[0])}, {fmt(ci[1])}]"


def _rate(rate: float | None) -> str:
    """A rate per 100k: whole numbers from 100, else three significant digits."""
    if rate is None:
        return "–"
    v = float(rate) * PER_100K
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def _sme(v: float | None) -> str:
    return "–" if v is None else f"{v:.3g}"
