"""The report's static sections (everything but the transcript viewer), as HTML strings.

Each function takes JSON-ready data from :mod:`deploysim.report.data` and returns escaped HTML:
every value, whatever its origin, goes through :func:`esc`.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from deploysim.estimates import LOGGED, MIN_POSITIVES, WEAK_AUC, Comparison, Estimate
from deploysim.report import data
from deploysim.report.svg import Point, colour_for, rate_chart, ratio_chart, ratio_colour
from deploysim.stats import PER_100K


def esc(value: Any) -> str:
    """HTML-escape any value's text (``None`` is empty)."""
    return html.escape("" if value is None else str(value), quote=True)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], *, raw: Sequence[int] = ()) -> str:
    """A table; numbers right-aligned. Columns listed in ``raw`` hold HTML made by this module."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for i, v in enumerate(row):
            if i in raw:
                cells.append(f"<td>{v}</td>")
            elif isinstance(v, int | float) and not isinstance(v, bool):
                cells.append(f"<td class=n>{esc(_num(v))}</td>")
            else:
                cells.append(f"<td>{esc(v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def details(summary: str, value: Any) -> str:
    """A collapsed ``<pre>`` block of JSON."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
    return f"<details><summary>{esc(summary)}</summary><pre>{esc(text)}</pre></details>"


def _num(v: float) -> str:
    if isinstance(v, int):
        return f"{v:,}"
    if v != v:  # nan
        return "nan"
    return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"


def _validation_figures(e: Estimate) -> str:
    """`` (AUC 0.94, Se 1.00, Sp 0.87)``: the figures behind a grader's standing, if any."""
    parts = [f"AUC {e.validation_auc:.2f}"] if e.validation_auc is not None else []
    if e.validation_positives is not None:
        parts.append(f"{e.validation_positives} positives")
    if e.judge_se is not None and e.judge_sp is not None:
        parts += [f"Se {e.judge_se:.2f}", f"Sp {e.judge_sp:.2f}"]
    return f" ({', '.join(parts)})" if parts else ""


def _p100k(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * PER_100K:,.0f}"


def _ci100k(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return "–"
    return f"{low * PER_100K:,.0f}–{high * PER_100K:,.0f}"


def _models(estimates: Sequence[Estimate]) -> list[str]:
    names = sorted({e.model for e in estimates} - {LOGGED})
    return ([LOGGED] if any(e.model == LOGGED for e in estimates) else []) + names


def rates_section(estimates: Sequence[Estimate]) -> str:
    """Per category: a chart of every model's rate with its Jeffreys interval, then the table."""
    if not estimates:
        return "<p>No graded responses yet: run <code>deploysim grade</code>.</p>"
    models = _models(estimates)
    by_cat: dict[str, list[Estimate]] = defaultdict(list)
    for e in estimates:
        by_cat[f"{e.category} · {e.grader}"].append(e)
    charts = []
    for title, rows in sorted(by_cat.items()):
        rows.sort(key=lambda e: models.index(e.model))
        charts.append(
            rate_chart(
                f"{title} (per 100k, Jeffreys 95% CI)",
                [
                    Point(
                        f"{e.model} ({e.k:,}/{e.n:,})",
                        e.rate,
                        e.ci_low,
                        e.ci_high,
                        colour_for(e.model, models),
                        f"{e.model}: {e.k:,} of {e.n:,} flagged; {_p100k(e.rate)} per 100k "
                        f"(95% CI {_ci100k(e.ci_low, e.ci_high)})",
                    )
                    for e in rows
                    if e.rate is not None and e.ci_low is not None and e.ci_high is not None
                ],
            )
        )
    rows_html = [
        [
            *data.estimate_counts(e),
            # The smoothed rate alone misleads at small n (0 of 20 shows as 2,381): k/n beside.
            f"{_p100k(e.rate)} ({e.k:,}/{e.n:,})" if e.n else "–",
            _ci100k(e.ci_low, e.ci_high),
            _p100k(e.weighted_rate),
            _p100k(e.corrected_rate)
            + (f" {_ci100k(*e.corrected_ci)}" if e.corrected_ci else "")
            + ("" if e.correctable in (None, True) else " (uncorrectable)")
            + (f" ({e.correction_note})" if e.correction_note else ""),
            e.validation + _validation_figures(e),
        ]
        for e in sorted(estimates, key=lambda e: (e.category, models.index(e.model)))
    ]
    return (
        "<p class=note>Rate = Jeffreys-smoothed (k + ½)/(n + 1), per 100,000 responses, with "
        "the modified Jeffreys 95% interval (clustered by conversation and prefix when turns "
        "share them). n counts graded draws, prefixes the distinct prefixes behind them. "
        "Weighted: Hájek estimate under unequal inclusion probabilities. Corrected: "
        "Rogan–Gladen with a profile-likelihood interval, when the grader was validated at "
        "its threshold. A row with n = 0 had nothing graded.</p>"
        f"<div class=charts>{''.join(charts)}</div>"
        + table(
            [
                *data.COUNT_COLUMNS,
                "per 100k",
                "95% CI",
                "weighted",
                "corrected",
                "grader validation",
            ],
            rows_html,
        )
    )


def how_to_read(
    estimates: Sequence[Estimate], comparisons: Sequence[Comparison], alpha: float
) -> str:
    """A few lines at the top: what the numbers are, which rows are validated, what moved."""
    measured = [e for e in estimates if e.n]
    validated = [e for e in measured if e.validation == "validated"]
    moved = [c for c in comparisons if c.significant]
    lines = [
        "Rates are flagged responses per 100,000, Jeffreys-smoothed, with 95% intervals that "
        "count clustered turns (several per conversation, several draws per prefix) as the "
        "evidence they are; k/n is shown beside each.",
        f"{len(validated)} of {len(measured)} rows come from graders validated against "
        f"labelled responses with AUC ≥ {WEAK_AUC:.2f} on at least {MIN_POSITIVES} positives "
        "(<i>grader validation</i> column; their <i>corrected</i> rate "
        "carries the grader's own error). The others are weak or unvalidated: they measure what "
        "the grader flags, which may not be the behaviour."
        if measured
        else "Nothing was graded yet.",
    ]
    if comparisons:
        headline = [c for c in moved if c.validation == "validated"]
        other = len(moved) - len(headline)
        if headline:
            items = ", ".join(
                f"{esc(c.model_a)} on {esc(c.category)} ({c.ratio:.3g}×)" for c in headline[:8]
            )
            more = f" and {len(headline) - 8} more" if len(headline) > 8 else ""
            lines.append(
                f"Moved significantly vs {esc(headline[0].model_b)} (p ≤ {alpha:g}), validated "
                f"graders: {items}{more}."
            )
        else:
            lines.append(f"No move on a validated grader is significant (p ≤ {alpha:g}).")
        if other:
            lines.append(
                f"{other} significant move(s) on weak or unvalidated graders are in the "
                "comparisons table, not here."
            )
    return "<div class=howto><b>How to read this.</b> " + " ".join(lines) + "</div>"


def comparisons_section(comparisons: Sequence[Comparison], alpha: float) -> str:
    """Every replayed model against the logged responses: ratio chart and table."""
    if not comparisons:
        return (
            "<p>No comparison: it needs a replayed model and the logged responses graded by "
            "the same grader.</p>"
        )
    by_cat: dict[str, list[Comparison]] = defaultdict(list)
    for c in comparisons:
        by_cat[f"{c.category} · {c.grader}"].append(c)
    charts = [
        ratio_chart(
            f"{title}: rate ratio vs logged (95% CI, log scale)",
            [
                Point(
                    c.model_a,
                    c.ratio,
                    c.ratio_ci_low,
                    c.ratio_ci_high,
                    ratio_colour(c.ratio, c.significant),
                    f"{c.model_a}: ratio {c.ratio:.3g} (95% CI {c.ratio_ci_low:.3g}–"
                    f"{c.ratio_ci_high:.3g}), Fisher p = {c.fisher_p:.3g}",
                )
                for c in rows
            ],
        )
        for title, rows in sorted(by_cat.items())
    ]
    rows_html = [
        [
            c.category,
            c.model_a,
            c.model_b,
            f"{c.k_a:,}/{c.n_a:,}",
            f"{c.k_b:,}/{c.n_b:,}",
            c.ratio,
            f"{c.ratio_ci_low:.3g}–{c.ratio_ci_high:.3g}",
            f"{c.rel_change * 100:+.1f}%",
            c.fisher_p,
            c.p_adjusted,
            "<span class=sig>yes</span>" if c.significant else "no",
        ]
        for c in comparisons
    ]
    return (
        f"<p class=note>Candidate (each replayed model) vs baseline (<code>{LOGGED}</code>, the "
        f"deployed model's logged responses on the same prefixes). Fisher exact test, α = "
        f"{esc(alpha)}; red: a significant rise, green: a significant fall.</p>"
        f"<div class=charts>{''.join(charts)}</div>"
        + table(
            [
                "category",
                "candidate",
                "baseline",
                "k/n candidate",
                "k/n baseline",
                "ratio",
                "95% CI",
                "change",
                "Fisher p",
                "p adjusted",
                "significant",
            ],
            rows_html,
            raw=(10,),
        )
    )


def errors_section(replay_errors: Sequence[dict[str, Any]], ungr: Sequence[dict[str, Any]]) -> str:
    """Failed replays by error kind, and ungradable grades (both counted in denominators)."""
    parts = ["<h3>Failed replays</h3>"]
    if replay_errors:
        parts.append(
            table(
                ["model", "error kind", "count", "example"],
                [[r["model"], r["error_kind"], r["count"], r["example"]] for r in replay_errors],
            )
        )
    else:
        parts.append("<p>No failed replays.</p>")
    parts.append("<h3>Ungradable grades</h3>")
    if ungr:
        parts.append(
            table(
                ["model", "category", "grader", "count", "example"],
                [[r["model"], r["category"], r["grader"], r["count"], r["example"]] for r in ungr],
            )
        )
    else:
        parts.append("<p>No ungradable grades.</p>")
    return "".join(parts)


def deid_section(deid: dict[str, str]) -> str:
    """What de-identification did at ingest (store meta ``deid*``), as tables a person reads."""
    totals: dict[str, Any] = {}
    try:
        totals = json.loads(deid.get("deid_totals", "{}"))
    except json.JSONDecodeError:
        totals = {}
    version = deid.get("deid_version", "-")
    if version == "off":
        return "<p>De-identification was <b>off</b> at ingest: logs were stored as read.</p>"
    rows: list[list[Any]] = [
        ["version", version],
        ["conversations de-identified", totals.get("conversations", "-")],
        ["conversations dropped (strict mode, residual found)", totals.get("dropped", "-")],
        ["residual detections", totals.get("residual", "-")],
    ]
    rows += [[k, v] for k, v in deid.items() if k not in ("deid_version", "deid_totals")]
    entities = totals.get("entities") or {}
    parts = [
        table(["", ""], rows),
        "<p class=note>Residual detections: after replacing what it found, de-identification "
        "runs the detector again around every replacement; each hit there is a possible "
        "leftover. 0 is the goal; with <code>--deid-strict</code> a conversation with any is "
        "dropped instead of stored.</p>",
    ]
    if entities:
        parts.append(
            table(
                ["entity type", "distinct values replaced"],
                sorted(([k, v] for k, v in entities.items()), key=lambda r: (-r[1], r[0])),
            )
        )
    return "".join(parts)


def manifest_section(m: dict[str, Any]) -> str:
    """The run manifest: meta, inputs, samples, replay specs, graders, validations."""
    inputs = ("file=path", "sha256", "format", "bytes=size", "status", "records", "kept")
    replays = ("model label=label", "spec hash=hash", "ok", "failed")
    parts = [
        "<h3>Store</h3>",
        table(["key", "value"], [[k, v] for k, v in sorted(m["meta"].items())]),
        _listing("Inputs", m["inputs"], (*inputs, "skipped", "convs=conversations")),
        _listing("Samples", m["samples"], ("name", "size", "population", "spec_hash"), "spec"),
        _listing("Replay specs", m["replay_specs"], replays, "spec"),
        _listing("Graders", m["graders"], ("category", "grader=spec", "hash"), "definition"),
    ]
    if m["validations"]:
        keys = ("category", "grader_hash", "labels_sha256")
        validations = _listing("Grader validations", m["validations"], keys, "metrics", whole=True)
        parts.append(validations)
    return "".join(parts)


def _listing(
    title: str,
    rows: list[dict[str, Any]],
    columns: tuple[str, ...],
    folded: str | None = None,
    *,
    whole: bool = False,
) -> str:
    """A heading and a table of each row's ``columns``: ``"heading=key"``, or a key that is its
    own heading (``_`` read as a space). ``folded`` names a last column of JSON in a collapsed
    block: the row's value under that key, or with ``whole`` the whole row."""
    pairs = [c.split("=") if "=" in c else (c.replace("_", " "), c) for c in columns]
    header = [heading for heading, _ in pairs]
    body = [[r[key] for _, key in pairs] for r in rows]
    if folded is not None:
        header.append(folded)
        for cells, r in zip(body, rows, strict=True):
            cells.append(details(folded, r if whole else r[folded]))
    raw = (len(pairs),) if folded is not None else ()
    return f"<h3>{esc(title)}</h3>" + table(header, body, raw=raw)
