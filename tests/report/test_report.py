"""The HTML report: sections, escaping, the bounded transcript selection, filters."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from deploysim.cli import app
from deploysim.estimates import LOGGED, estimate
from deploysim.report import write_ingest_report, write_report
from deploysim.report.data import model_labels
from deploysim.report.page import csp, script_json
from deploysim.report.transcripts import (
    TranscriptFilter,
    count_prefixes,
    load_items,
    page_prefix_ids,
    select_prefixes,
)
from deploysim.store import Store
from tests.report.synthetic import XSS, Synthetic


def viewer_data(html: str) -> dict[str, Any]:
    """The JSON the page's viewer reads."""
    m = re.search(r'<script type="application/json" id=viewer-data>(.*?)</script>', html, re.S)
    assert m is not None
    value: dict[str, Any] = json.loads(m.group(1))
    return value


def test_pipeline_report_has_every_section(pipeline: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", "--store", str(pipeline), "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    html = out.read_text(encoding="utf-8")
    assert stats["bytes"] == len(html.encode())
    for anchor in ("rates", "comparisons", "errors", "transcripts", "manifest"):
        assert f"<section id={anchor}>" in html
    with Store(pipeline) as st:
        rows = estimate(st)
        inputs = st.inputs()
        graders = [h for (h,) in st.db.execute("SELECT hash FROM graders")]
        specs = [h for (h,) in st.db.execute("SELECT hash FROM replay_specs")]
        prefixes = st.count("prefixes")
    # Every model x category rate is plotted (one SVG per category) and tabled.
    assert html.count("<svg class=chart") == 2 * len({e.grader_hash for e in rows})
    for e in rows:
        assert f"{e.k:,} of {e.n:,} flagged" in html
    # Comparisons: each replayed model against logged, per category.
    assert html.count("<td>logged</td></tr>") == 0
    assert "scripted/refuse?rate=0.3" in html and "Fisher p" in html
    # Run manifest: input hashes, grader hashes, replay spec hashes.
    for h in [i.sha256 for i in inputs] + graders + specs:
        assert h in html
    data = viewer_data(html)
    assert data["mode"] == "embedded" and data["total"] == prefixes == stats["prefixes_total"]
    assert len(data["items"]) == data["shown"] == stats["prefixes_shown"] == prefixes
    assert set(data["models"]) == {LOGGED, "scripted/refuse?rate=0.3", "scripted/echo"}
    # Every prefix message an item refers to is in the message table.
    for item in data["items"]:
        assert all(h in data["messages"] for h in item["prefix"])
        models = [r["model"] for r in item["responses"]]
        assert LOGGED not in models[1:]
    assert f"Embedded {prefixes:,} of {prefixes:,} prefixes" in html


def test_report_is_self_contained(hostile: Synthetic, tmp_path: Path) -> None:
    with Store(hostile.path) as st:
        write_report(st, tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    # Nothing to fetch: no external URL in any src/href, no stylesheet or script link.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html
    # The CSP allows exactly the one inline viewer script, by hash, and no connections.
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp(api=False) and "connect-src 'none'" in csp(api=False)
    assert csp(api=False).replace("'", "&#x27;") in html


def test_untrusted_text_is_escaped(hostile: Synthetic, tmp_path: Path) -> None:
    with Store(hostile.path) as st:
        write_report(st, tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    # The payload never appears raw: only two script elements exist (data + viewer).
    assert XSS not in html
    assert "<script>window" not in html and "<img" not in html and "<!--" not in html
    assert len(re.findall(r"<script\b", html)) == 2
    # ...and survives, exactly, as data for textContent.
    data = viewer_data(html)
    texts = json.dumps(data, ensure_ascii=False)
    assert XSS.replace('"', '\\"') in texts
    assert any(m.startswith("evil/") for m in data["models"])
    # Escaped wherever HTML holds it (SVG labels, tables).
    assert "&lt;img src=x onerror=window.__xss=3&gt;" in html


def test_script_json_cannot_close_the_element() -> None:
    text = script_json({"a": "</script><!-- \u2028 &"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"a": "</script><!-- \u2028 &"}


def test_sections_for_forecasts_deid_and_errors(hostile: Synthetic, tmp_path: Path) -> None:
    with Store(hostile.path) as st:
        write_report(st, tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<section id=forecasts>" in html and "Scorecard of forecast" in html
    assert "no_change" in html and "28/100" in html
    # The registered hypotheses and their outcomes: H1's claim and test, H3's threshold.
    assert "predict production rates better than no-change" in html
    assert "sign-flip permutation test" in html and "19,998 per 100k" in html
    assert "<td>not supported</td>" in html and "2.1 / 9.7" in html
    assert "not tested: run the scorecard with --auditor" in html
    assert "<section id=deid>" in html
    assert "deid_version" in html and "deid_entities_replaced" in html and "1,234" not in html
    # Failed replays by error kind and ungradable grades, with their counts.
    assert "timeout" in html and "request timed out after 120 s" in html
    assert "judge returned no verdict" in html
    assert f"({hostile.failed:,} failed)" in html
    assert f"{hostile.ungradable:,} ungradable" in html


def test_selection_is_bounded_flagged_first_and_seeded(big: Synthetic) -> None:
    with Store(big.path) as st:
        labels = model_labels(st)
        a = select_prefixes(st, labels, max_prefixes=300, max_flagged=100, seed=1)
        b = select_prefixes(st, labels, max_prefixes=300, max_flagged=100, seed=1)
        c = select_prefixes(st, labels, max_prefixes=300, max_flagged=100, seed=2)
        all_flagged = select_prefixes(st, labels, max_prefixes=20_000, max_flagged=20_000)
    assert a.total == big.prefixes and a.flagged_total == big.flagged_prefixes
    assert len(a.ids) == 300 and a.flagged_chosen == 100
    assert a.ids == sorted(a.ids) and a.ids == b.ids and a.ids != c.ids
    # Without caps biting, every flagged prefix is in.
    assert all_flagged.flagged_chosen == big.flagged_prefixes


def test_byte_budget_stops_the_embedding(hostile: Synthetic, tmp_path: Path) -> None:
    with Store(hostile.path) as st:
        full = write_report(st, tmp_path / "full.html")
        small = write_report(st, tmp_path / "small.html", max_embed_bytes=20_000)
    assert not full.budget_reached and small.budget_reached
    assert 0 < small.prefixes_shown < full.prefixes_shown
    data = viewer_data((tmp_path / "small.html").read_text(encoding="utf-8"))
    assert len(data["items"]) == small.prefixes_shown
    assert "the size budget stopped the selection early" in (tmp_path / "small.html").read_text()


def _matches(item: dict[str, Any], f: TranscriptFilter) -> bool:
    """The viewer script's filter, in Python (assets.JS ``matches``)."""
    rs = [r for r in item["responses"] if f.model is None or r["model"] == f.model]
    if f.model is not None and not rs:
        return False
    if f.category is None and not f.flagged:
        return True
    return any(
        (f.category is None or g["category"] == f.category) and (not f.flagged or g["flagged"])
        for r in rs
        for g in r["grades"]
    )


@pytest.mark.parametrize(
    "f",
    [
        TranscriptFilter(),
        TranscriptFilter(category="TOOL"),
        TranscriptFilter(flagged=True),
        TranscriptFilter(category="REFUSAL", flagged=True),
        TranscriptFilter(model="synthetic/m1"),
        TranscriptFilter(model="synthetic/m1", category="REFUSAL", flagged=True),
        TranscriptFilter(model=LOGGED, flagged=True),
        TranscriptFilter(model=LOGGED),
        TranscriptFilter(model="no/such-model"),
    ],
)
def test_sql_filters_match_the_viewer_script(hostile: Synthetic, f: TranscriptFilter) -> None:
    """``deploysim view`` (SQL) and the embedded viewer (script) list the same prefixes."""
    with Store(hostile.path) as st:
        labels = model_labels(st)
        everything = page_prefix_ids(st, TranscriptFilter(), labels, offset=0, limit=10**6)
        expected = [
            item["id"] for item, _ in load_items(st, everything, labels) if _matches(item, f)
        ]
        got = page_prefix_ids(st, f, labels, offset=0, limit=10**6)
        assert count_prefixes(st, f, labels) == len(got)
    assert got == expected
    if f == TranscriptFilter(category="TOOL"):
        # TOOL is graded on every third prefix only: the filter really narrows the list.
        assert 0 < len(got) < len(everything)


def test_ingest_report_still_written(tmp_path: Path) -> None:
    summary = {
        "store": "s.db",
        "by_input": [],
        "by_format": [],
        "messages_per_conversation": dict.fromkeys(("min", "median", "mean", "p90", "max"), 1),
        "user_turns_per_conversation": dict.fromkeys(("min", "median", "mean", "p90", "max"), 1),
        "tool_use": {
            "conversations_with_tool_calls": 0,
            "tool_calls": 0,
            "conversations_offering_tools": 0,
        },
    }
    path = write_ingest_report(tmp_path / "i.html", summary, [(1, 2, "<bad>")])
    assert "&lt;bad&gt;" in path.read_text()


def test_unknown_sample_is_a_usage_error(pipeline: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["report", "--store", str(pipeline), "-o", str(tmp_path / "r.html"), "--sample", "x"]
    )
    assert result.exit_code != 0
    assert "no sample 'x'" in str(result.exception)
