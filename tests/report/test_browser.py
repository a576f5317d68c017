"""The report and the viewer in a real browser (headless Debian chromium via Playwright).

Skipped when chromium or Playwright's Python package is missing, unless
``DEPLOYSIM_REQUIRE_BROWSER=1`` (CI), which turns a missing browser into a failure. Screenshots
go to ``tests/artifacts/`` (or ``$DEPLOYSIM_ARTIFACTS``).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from deploysim.report import write_report
from deploysim.report.server import make_server
from deploysim.store import Store
from tests.report import conftest
from tests.report.conftest import ARTIFACTS
from tests.report.synthetic import XSS, Synthetic

BIG_REPORT_LIMIT = 50 * 1024 * 1024
OPEN_TIMEOUT_MS = 60_000


def open_page(browser: Any, url: str) -> tuple[Any, list[str]]:
    """A page at ``url`` with every console error and uncaught exception collected."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
    page.goto(url, timeout=OPEN_TIMEOUT_MS)
    page.wait_for_selector("#viewer-items article", timeout=OPEN_TIMEOUT_MS)
    return page, errors


def visible_ids(page: Any) -> list[str]:
    ids: list[str] = page.eval_on_selector_all(
        "#viewer-items article", "els => els.map(e => e.dataset.prefixId)"
    )
    return ids


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.evaluate("document.getElementById('viewer').scrollIntoView()")
    page.screenshot(path=str(path), full_page=False)
    print(f"screenshot: {path}")
    return path


def test_report_opens_and_filters(browser: Any, pipeline: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    with Store(pipeline) as st:
        write_report(st, out)
    page, errors = open_page(browser, out.as_uri())
    assert page.title().startswith("deploysim report")
    before = visible_ids(page)
    assert len(before) == 20
    assert page.locator("svg.chart").count() >= 2
    # The report's faces: round, short axis labels; scores at 3 decimals at most; the
    # de-identification summary as a table; a "how to read this" at the top.
    ticks = page.eval_on_selector_all("svg text.tick", "els => els.map(e => e.textContent)")
    assert ticks and all(len(t) <= 6 for t in ticks), ticks
    metas = page.eval_on_selector_all(".resp .meta", "els => els.map(e => e.textContent)")
    scores = [m.split("score ")[1].split(" ")[0] for m in metas if "score " in m]
    assert any("." in v for v in scores), metas[:5]  # the judge's fractional scores
    assert all(len(v.split(".")[1]) <= 3 for v in scores if "." in v), scores
    assert page.locator("#deid table").count() >= 1
    assert "residual detections" in (page.locator("#deid").text_content() or "")
    assert "How to read this" in (page.locator(".howto").text_content() or "")
    # Category + flagged only: the refusals of the refusing model.
    page.select_option("#filter-category", "REFUSAL")
    page.check("#filter-flagged")
    after = visible_ids(page)
    assert after and after != before
    for card in page.locator("#viewer-items article").all():
        assert card.locator(".badge.flag", has_text="REFUSAL").count() >= 1
    status = page.locator("#viewer-status").text_content() or ""
    assert int(status.split()[0].replace(",", "")) >= len(after)
    # Another category gives another list.
    page.select_option("#filter-category", "TOOL")
    assert visible_ids(page) != after
    # A model filter shows that model's column beside the logged one, and no other.
    page.uncheck("#filter-flagged")
    page.select_option("#filter-category", "")
    page.select_option("#filter-model", "scripted/echo")
    heads = page.eval_on_selector_all(".resp h4", "els => els.map(e => e.textContent)")
    assert set(heads) <= {"logged", "scripted/echo"} and "scripted/echo" in heads
    # Pagination.
    page.select_option("#filter-model", "")
    first = visible_ids(page)
    page.click("#page-next")
    assert visible_ids(page) != first
    page.select_option("#filter-category", "REFUSAL")
    page.check("#filter-flagged")
    screenshot(page, "report-filtered.png")
    assert errors == []
    page.close()


def test_hostile_transcripts_stay_text(browser: Any, hostile: Synthetic, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    with Store(hostile.path) as st:
        write_report(st, out)
    page, errors = open_page(browser, out.as_uri())
    page.check("#filter-flagged")
    assert page.evaluate("window.__xss") is None
    assert page.locator("#viewer-items img").count() == 0
    assert page.locator("#viewer-items script").count() == 0
    texts = page.eval_on_selector_all(".why", "els => els.map(e => e.textContent)")
    assert any(XSS.replace("\u2028", "") in t.replace("\u2028", "") for t in texts)
    assert errors == []
    page.close()


def test_100k_replay_report_is_small_and_opens(
    browser: Any, big: Synthetic, tmp_path: Path
) -> None:
    out = tmp_path / "big.html"
    with Store(big.path) as st:
        stats = write_report(st, out)
    assert stats.bytes < BIG_REPORT_LIMIT
    assert stats.prefixes_total == big.prefixes and stats.prefixes_shown == 2_000
    start = time.perf_counter()
    page, errors = open_page(browser, out.as_uri())
    opened = time.perf_counter() - start
    status = page.locator("#viewer-status").text_content() or ""
    assert f"of {big.prefixes:,} in the store" in status
    page.select_option("#filter-category", "REFUSAL")
    page.check("#filter-flagged")
    assert visible_ids(page)
    screenshot(page, "report-100k.png")
    print(
        f"100k report: {stats.bytes / 1e6:.1f} MB, written in {stats.seconds:.1f} s, "
        f"opened in {opened:.1f} s"
    )
    assert errors == []
    page.close()


def test_backtest_section_renders(browser: Any, backtested: Synthetic, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    with Store(backtested.path) as st:
        write_report(st, out)
    page, errors = open_page(browser, out.as_uri())
    page.click("a[href='#backtest']")
    section = page.locator("#backtest")
    assert section.is_visible()
    assert section.locator("h2").text_content() == "Backtest"
    assert section.locator("table").count() >= 3  # releases, scores, pairs
    svg = section.locator("svg.xy")
    assert svg.count() == 1 and svg.is_visible()
    box = svg.bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] > 100
    points = svg.locator("g.xy-pt")
    assert points.count() == 10
    # Every point is drawn inside the plot, with a size of its own.
    plot = svg.locator("clipPath rect").bounding_box()
    assert plot is not None
    for point in points.all():
        b = point.bounding_box()
        assert b is not None and b["width"] > 0 and b["height"] > 0
        assert plot["x"] - 6 <= b["x"] <= plot["x"] + plot["width"] + 6
        assert plot["y"] - 6 <= b["y"] <= plot["y"] + plot["height"] + 6
    band = svg.locator("polygon.band").bounding_box()
    assert band is not None and band["width"] > 0
    assert page.evaluate("window.__xss") is None
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    svg.screenshot(path=str(ARTIFACTS / "report-backtest.png"))
    assert errors == []
    page.close()


def test_view_server_pages_through_everything(browser: Any, hostile: Synthetic) -> None:
    srv = make_server(hostile.path, port=0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        page, errors = open_page(browser, srv.url)
        status = page.locator("#viewer-status").text_content() or ""
        assert status.startswith(f"{hostile.prefixes} matching prefixes in the store")
        first = visible_ids(page)
        page.click("#page-next")
        page.wait_for_function(
            "ids => document.querySelector('#viewer-items article').dataset.prefixId !== ids[0]",
            arg=first,
        )
        assert not set(visible_ids(page)) & set(first)
        page.select_option("#filter-category", "TOOL")
        page.wait_for_function(
            "() => /^\\d+ matching/.test(document.querySelector('#viewer-status').textContent)"
            " && !document.querySelector('#viewer-status').textContent.startsWith('"
            f"{hostile.prefixes} ')"
        )
        ids = [int(i) for i in visible_ids(page)]
        assert ids and all(i % 3 == 0 for i in ids)  # TOOL: prefixes 3, 6, 9, ... only
        screenshot(page, "view-server.png")
        assert page.evaluate("window.__xss") is None
        assert errors == []
        page.close()
    finally:
        srv.shutdown()
        srv.server_close()
        srv.store.close()
        thread.join(timeout=5)


def test_missing_browser_fails_when_required(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With DEPLOYSIM_REQUIRE_BROWSER=1 a missing chromium is a failure, not a skip."""
    monkeypatch.setattr(conftest, "CHROMIUM", tmp_path / "no-chromium")
    reason = conftest.missing_browser()
    assert reason is not None and "no chromium" in reason
    monkeypatch.setenv("DEPLOYSIM_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="DEPLOYSIM_REQUIRE_BROWSER=1"):
        conftest.skip_or_fail(reason)
    monkeypatch.delenv("DEPLOYSIM_REQUIRE_BROWSER")
    with pytest.raises(pytest.skip.Exception):
        conftest.skip_or_fail(reason)
