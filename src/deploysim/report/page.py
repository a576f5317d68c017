"""``deploysim report``: the whole run in one self-contained HTML file.

The page needs nothing from the network: CSS, the viewer script and the SVG plots are inline,
and a Content-Security-Policy forbids every fetch (``default-src 'none'``) and runs only the one
viewer script (by its hash), so even a transcript that slipped past escaping could not execute.

The transcript viewer embeds a bounded selection (:func:`~deploysim.report.transcripts.
select_prefixes`) as JSON in ``<script type="application/json">``, written item by item as it is
read from the store, with a byte budget on top of the count cap; ``deploysim view`` serves the
same viewer over every prefix.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from deploysim import __version__
from deploysim.estimates import LOGGED
from deploysim.report import data
from deploysim.report.assets import CSS, JS
from deploysim.report.backtest import backtest_section
from deploysim.report.scorecard import forecasts_section
from deploysim.report.sections import (
    comparisons_section,
    deid_section,
    errors_section,
    esc,
    how_to_read,
    manifest_section,
    rates_section,
)
from deploysim.report.transcripts import (
    MAX_TEXT,
    Selection,
    TranscriptFilter,
    count_prefixes,
    load_items,
    load_messages,
    select_prefixes,
)
from deploysim.store import Store

#: Default caps of the embedded transcript selection.
MAX_PREFIXES = 2_000
MAX_FLAGGED = 1_500
#: Bytes of transcript JSON a report embeds at most: keeps the file well under 50 MB.
MAX_EMBED_BYTES = 40_000_000


@dataclass(frozen=True, slots=True)
class ReportStats:
    """What a written report holds."""

    path: str
    bytes: int
    seconds: float
    prefixes_total: int
    prefixes_shown: int
    flagged_total: int
    flagged_shown: int
    budget_reached: bool

    def to_json(self) -> dict[str, Any]:
        """The figures as JSON-ready data."""
        return asdict(self)


def script_json(value: Any) -> str:
    """JSON that is safe inside ``<script type="application/json">``.

    ``<``, ``>`` and ``&`` only ever occur inside JSON strings, where ``\\u003c`` etc. mean the
    same, so ``</script>`` or ``<!--`` in a transcript cannot end the element.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def csp(*, api: bool) -> str:
    """The page's Content-Security-Policy: no fetches (the API only for ``view``), one script."""
    digest = base64.b64encode(hashlib.sha256(JS.encode("utf-8")).digest()).decode()
    connect = "'self'" if api else "'none'"
    return (
        f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; "
        f"img-src data:; connect-src {connect}; base-uri 'none'; form-action 'none'"
    )


def viewer_facets(store: Store) -> dict[str, Any]:
    """Filter choices: every graded category, and the models (``logged`` first)."""
    labels = data.model_labels(store)
    return {"categories": data.categories(store), "models": [LOGGED, *labels.values()]}


def write_report(
    store: Store,
    path: Path,
    *,
    sample: str | None = None,
    max_prefixes: int = MAX_PREFIXES,
    max_flagged: int = MAX_FLAGGED,
    max_embed_bytes: int = MAX_EMBED_BYTES,
    seed: int = 0,
    alpha: float = 0.1,
) -> ReportStats:
    """Write the report of ``store`` to ``path``; see the module docstring."""
    start = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    sid = data.sample_id(store, sample)
    labels = data.model_labels(store)
    selection = select_prefixes(
        store,
        labels,
        max_prefixes=max_prefixes,
        max_flagged=max_flagged,
        seed=seed,
        sample_id=sid,
    )
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(_head(store, api=False))
        f.write(_sections(store, sample=sample, alpha=alpha))
        f.write(
            "<section id=transcripts><h2>Transcripts</h2>"
            f"<p class=note>This file embeds a bounded selection: every prefix with a flagged "
            f"response (a seeded sample of them past {max_flagged:,}), then a seeded sample "
            f"(seed {seed}) of the others, {max_prefixes:,} prefixes at most. "
            "<code>deploysim view</code> pages through all of them.</p><div id=viewer></div>"
        )
        shown, flagged_shown, budget_reached = _write_viewer_data(
            f, store, selection, labels, facets=viewer_facets(store), max_bytes=max_embed_bytes
        )
        f.write(
            f"<p class=note id=embed-count>Embedded {shown:,} of {selection.total:,} prefixes "
            f"({flagged_shown:,} of the {selection.flagged_total:,} with a flagged response)"
            + ("; the size budget stopped the selection early" if budget_reached else "")
            + ".</p></section>"
        )
        f.write(_tail(store))
    tmp.replace(path)
    return ReportStats(
        path=str(path),
        bytes=path.stat().st_size,
        seconds=round(time.perf_counter() - start, 3),
        prefixes_total=selection.total,
        prefixes_shown=shown,
        flagged_total=selection.flagged_total,
        flagged_shown=flagged_shown,
        budget_reached=budget_reached,
    )


def render_api_page(store: Store) -> str:
    """The report page whose viewer pages through every prefix via ``api/prefixes``."""
    labels = data.model_labels(store)
    total = count_prefixes(store, TranscriptFilter(), labels)
    meta = {"mode": "api", "total": total, **viewer_facets(store)}
    return (
        _head(store, api=True)
        + _sections(store, sample=None, alpha=0.1)
        + "<section id=transcripts><h2>Transcripts</h2>"
        f"<p class=note>Served from the store: all {total:,} prefixes.</p><div id=viewer></div>"
        f'<script type="application/json" id=viewer-data>{script_json(meta)}</script>'
        "</section>" + _tail(store)
    )


def _write_viewer_data(
    f: IO[str],
    store: Store,
    selection: Selection,
    labels: dict[str, str],
    *,
    facets: dict[str, Any],
    max_bytes: int,
) -> tuple[int, int, bool]:
    """Stream the selection's items, then the messages they refer to; returns (items written,
    flagged items written, whether the byte budget stopped it)."""
    head = script_json({"mode": "embedded", "total": selection.total, **facets})
    f.write(f'<script type="application/json" id=viewer-data>{head[:-1]},"items":[')
    used = 0
    shown = flagged = 0
    budget_reached = False
    messages: dict[str, str] = {}
    for item, refs in load_items(store, selection.ids, labels, max_text=MAX_TEXT):
        text = script_json(item)
        new = [h for h in dict.fromkeys(refs) if h not in messages]
        bodies = {h: script_json(m) for h, m in load_messages(store, new)}
        size = len(text.encode()) + sum(len(b.encode()) + 70 for b in bodies.values())
        if used + size > max_bytes:
            budget_reached = True
            break
        used += size
        messages.update(bodies)
        f.write(("," if shown else "") + text)
        shown += 1
        flagged += any(g.get("flagged") for r in item["responses"] for g in r["grades"])
    f.write('],"messages":{')
    f.write(",".join(f'"{h}":{body}' for h, body in messages.items()))
    f.write(f'}},"shown":{shown}}}</script>')
    return shown, flagged, budget_reached


def _head(store: Store, *, api: bool) -> str:
    title = f"deploysim report: {store.path.name}"
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f'<meta http-equiv="Content-Security-Policy" content="{esc(csp(api=api))}">'
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
    )


def _sections(store: Store, *, sample: str | None, alpha: float) -> str:
    counts = data.counts(store)
    res = data.results(store, sample=sample, alpha=alpha)
    manifests, cards = data.forecasts(store), data.scorecards(store)
    deid = data.deid_summary(store)
    backtest = data.backtest(store)
    nav = [
        ("rates", "Rates"),
        ("comparisons", "Comparisons"),
        ("errors", "Errors"),
        *([("forecasts", "Forecasts")] if manifests or cards else []),
        *([("backtest", "Backtest")] if backtest is not None else []),
        *([("deid", "De-identification")] if deid else []),
        ("transcripts", "Transcripts"),
        ("manifest", "Run manifest"),
    ]
    summary = (
        f"{counts['conversations']:,} conversations · {counts['prefixes']:,} prefixes in "
        f"{counts['samples']:,} samples · {counts['replays']:,} replays "
        f"({counts['replays_failed']:,} failed) · {counts['grades']:,} grades "
        f"({counts['grades_flagged']:,} flagged, {counts['grades_ungradable']:,} ungradable)"
    )
    parts = [
        "<header class=top><h1>deploysim report</h1>",
        f"<p class=meta>store <code>{esc(store.path.name)}</code>"
        + (f" · sample <code>{esc(sample)}</code>" if sample else "")
        + f" · deploysim {esc(__version__)} · generated "
        f"{esc(time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))}</p>",
        f"<p>{esc(summary)}</p><nav>",
        "".join(f"<a href='#{a}'>{esc(t)}</a>" for a, t in nav),
        "</nav></header><main>",
        how_to_read(res.estimates, res.comparisons, alpha),
        f"<section id=rates><h2>Rates by category</h2>{rates_section(res.estimates)}</section>",
        "<section id=comparisons><h2>Candidate vs baseline</h2>"
        f"{comparisons_section(res.comparisons, alpha)}</section>",
        "<section id=errors><h2>Errors</h2>"
        f"{errors_section(data.replay_errors(store), data.ungradable(store))}</section>",
    ]
    if manifests or cards:
        parts.append(
            "<section id=forecasts><h2>Forecasts and scorecards</h2>"
            f"{forecasts_section(manifests, cards)}</section>"
        )
    if backtest is not None:
        parts.append(
            f"<section id=backtest><h2>Backtest</h2>{backtest_section(backtest)}</section>"
        )
    if deid:
        parts.append(f"<section id=deid><h2>De-identification</h2>{deid_section(deid)}</section>")
    return "".join(parts)


def _tail(store: Store) -> str:
    return (
        "<section id=manifest><h2>Run manifest</h2>"
        f"{manifest_section(data.manifest(store))}</section></main>"
        f"<script>{JS}</script></body></html>"
    )
