"""The report's Forecasts section: registered manifests and their scorecards (method.md §7).

Everything a scorecard holds is shown: per method the directional accuracy ("undefined" where it
does not exist), SME, NLL, log-scale correlations and the noise-funnel share; production grades
and ungradable ones per grader; forecasts left unscored and rows unmeasured at registration,
with their reasons; the §5.12 error decomposition; H1-H3 with H3's bounds. Every value goes
through :func:`~deploysim.report.sections.esc` (via ``table``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deploysim.report.sections import _ci100k, _p100k, details, esc, table


def forecasts_section(manifests: Sequence[dict[str, Any]], cards: Sequence[dict[str, Any]]) -> str:
    """Registered forecasts and their scorecards, as tables."""
    parts: list[str] = []
    for m in manifests:
        parts.append(_manifest(m))
    for card in cards:
        parts.append(_card(card))
    return "".join(parts) or "<p>No forecast registered in this store.</p>"


def _manifest(m: dict[str, Any]) -> str:
    sample = m.get("sample") or {}
    parts = [
        f"<h3>Forecast {esc(str(m.get('content_hash', ''))[:12])}: candidate "
        f"{esc(m.get('candidate'))} vs {esc(m.get('deployed'))}</h3>"
        f"<p class=meta>registered {esc(m.get('registered_at'))} · sample "
        f"{esc(sample.get('name'))} (prefix manifest "
        f"{esc(str(sample.get('prefix_manifest_hash', ''))[:12])}) · content hash "
        f"<code>{esc(m.get('content_hash'))}</code></p>",
        table(
            [
                "category",
                "method",
                "per 100k",
                "95% CI",
                "baseline",
                "ratio",
                "direction",
                "k/n",
                "failed",
                "ungradable",
            ],
            [
                [
                    f.get("category"),
                    f.get("method"),
                    _p100k(f.get("rate")),
                    _ci100k(f.get("ci_low"), f.get("ci_high")),
                    _p100k(f.get("baseline_rate")),
                    f.get("ratio"),
                    f.get("direction"),
                    f"{f['k']}/{f['n']}" if f.get("n") is not None else "–",
                    _dash(f.get("failed")),
                    _dash(f.get("ungradable")),
                ]
                for f in m.get("forecasts", [])
            ],
        ),
    ]
    unmeasured = m.get("unmeasured") or []
    if unmeasured:
        parts.append("<p>Unmeasured at registration (nothing graded; no forecast):</p>")
        parts.append(_unmeasured(unmeasured))
    hyps = m.get("hypotheses") or {}
    if hyps:
        parts.append(
            table(
                ["hypothesis", "claim", "test or threshold", "alpha"],
                [
                    [name, h.get("claim"), _registered(h), h.get("alpha")]
                    for name, h in hyps.items()
                ],
            )
        )
    return "".join(parts)


def _registered(h: dict[str, Any]) -> str:
    """How a registered hypothesis is tested (H1/H2: the test; H3: the threshold and N)."""
    if h.get("test"):
        return str(h["test"])
    if h.get("registered") is False:
        return f"not registered: {h.get('reason')}"
    n = h.get("audited_turns")
    basis = f"N {n} audited turns" if n is not None else f"N {h.get('simulated_turns')} (graded)"
    return (
        f"{_p100k(h.get('threshold_rate'))} per 100k (lambda* {h.get('lambda', 0):.2f} / {basis})"
    )


def _unmeasured(rows: Sequence[dict[str, Any]]) -> str:
    return table(
        ["model", "category", "attempted", "failed", "ungradable"],
        [
            [
                u.get("model"),
                u.get("category"),
                u.get("attempted"),
                u.get("failed"),
                u.get("ungradable"),
            ]
            for u in rows
        ],
    )


def _dash(v: Any) -> Any:
    return "–" if v is None else v


def _accuracy(v: dict[str, Any]) -> str:
    if not v.get("direction_eligible"):
        return "–"
    if v.get("directional_accuracy") is None and v.get("direction_note"):
        return f"undefined ({v['direction_eligible']} moved)"
    return f"{v.get('direction_correct')}/{v.get('direction_eligible')}"


def _card(card: dict[str, Any]) -> str:
    parts = [
        f"<h3>Scorecard of forecast {esc(str(card.get('forecast', ''))[:12])} "
        f"(candidate {esc(card.get('candidate'))})</h3>"
    ]
    methods = card.get("methods") or {}
    parts.append(
        table(
            [
                "method",
                "categories",
                "direction correct",
                "SME median",
                "SME p90",
                "SME max",
                "NLL",
                "NLL regret",
                "log Pearson",
                "Spearman",
                "inside noise funnel",
            ],
            [
                [
                    name,
                    v.get("categories"),
                    _accuracy(v),
                    _dash(v.get("sme_median")),
                    _dash(v.get("sme_p90")),
                    _dash(v.get("sme_max")),
                    _dash(v.get("nll")),
                    _dash(v.get("nll_regret")),
                    _dash(v.get("log_pearson")),
                    _dash(v.get("spearman")),
                    f"{v['funnel_inside']}/{v['funnel_categories']} = {v['funnel_share']:.0%}"
                    if v.get("funnel_categories")
                    else "–",
                ]
                for name, v in methods.items()
            ],
        )
    )
    notes = [
        f"{name}: {v[key]}"
        for name, v in methods.items()
        for key in ("direction_note", "correlation_note", "funnel_note")
        if v.get(key)
    ]
    if notes:
        parts.append("<ul class=notes>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    parts.append(
        table(
            [
                "category",
                "method",
                "forecast per 100k",
                "realised k/n",
                "realised per 100k",
                "SME",
                "direction correct",
                "NLL regret",
                "in noise band",
                "registered failed / ungradable",
            ],
            [
                [
                    r.get("category"),
                    r.get("method"),
                    _p100k(r.get("forecast")),
                    f"{r.get('realised_k')}/{r.get('realised_n')}",
                    _p100k(r.get("realised_rate")),
                    r.get("sme"),
                    _dash(r.get("direction_correct")),
                    r.get("nll_regret"),
                    _dash(r.get("in_noise_band")),
                    f"{_dash(r.get('sim_failed'))} / {_dash(r.get('sim_ungradable'))}",
                ]
                for r in card.get("categories", [])
            ],
        )
    )
    production = card.get("production") or []
    if production:
        parts.append("<p>Production grades per grader:</p>")
        parts.append(
            table(
                ["category", "grader", "flagged", "graded", "ungradable"],
                [
                    [
                        p.get("category"),
                        p.get("grader"),
                        p.get("k"),
                        p.get("n"),
                        p.get("ungradable"),
                    ]
                    for p in production
                ],
            )
        )
    unscored = card.get("unscored") or []
    if unscored:
        parts.append("<p>Unscored forecasts (no realised count):</p>")
        parts.append(
            table(
                ["category", "method", "reason"],
                [[u.get("category"), u.get("method"), u.get("reason")] for u in unscored],
            )
        )
    if card.get("unmeasured"):
        parts.append("<p>Unmeasured at registration:</p>" + _unmeasured(card["unmeasured"]))
    parts.append(_decomposition(card.get("decomposition") or {}))
    outcomes = card.get("hypotheses") or {}
    if outcomes:
        parts.append(
            table(
                ["hypothesis", "outcome", "categories", "p", "NLL method / baseline", "H3 bounds"],
                [
                    [
                        name,
                        h.get("outcome"),
                        h.get("categories", "–"),
                        h.get("p_value", "–"),
                        f"{h['nll_method']:.1f} / {h['nll_baseline']:.1f}"
                        if "nll_method" in h
                        else "–",
                        _h3_bounds(h),
                    ]
                    for name, h in outcomes.items()
                ],
            )
        )
    coverage = card.get("taxonomy_coverage")
    if coverage:
        parts.append(details("taxonomy coverage (auditor)", coverage))
    return "".join(parts)


def _h3_bounds(h: dict[str, Any]) -> str:
    if "upper_bound" not in h:
        return "–"
    return (
        f"{h['flagged']}/{h['audited']} flagged; one-sided 95% bounds "
        f"{h['lower_bound'] * 1e5:,.2f}–{h['upper_bound'] * 1e5:,.2f} per 100k vs threshold "
        f"{h['threshold_rate'] * 1e5:,.2f}"
    )


def _decomposition(dec: dict[str, Any]) -> str:
    """The §5.12 table, or why it is undefined (older scorecards have neither)."""
    rows = dec.get("categories") or []
    if not rows:
        return f"<p>Error decomposition: {esc(dec['note'])}</p>" if dec.get("note") else ""
    return "<p>Error decomposition (SME; method.md §5.12):</p>" + table(
        ["category", "total", "prefix", "fidelity X", "fidelity Y (before release)", "X->X k/n"],
        [
            [
                r.get("category"),
                r.get("total"),
                r.get("prefix"),
                r.get("fidelity_x"),
                _dash(r.get("fidelity_y")),
                f"{r.get('xx_k')}/{r.get('xx_n')}",
            ]
            for r in rows
        ],
    )
