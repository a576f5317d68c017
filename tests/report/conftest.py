"""Fixtures of the report tests: synthetic stores (direct SQL), a store made by the real
pipeline (ingest, sample, replay with scripted models, rule graders), and a headless browser."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from typer.testing import CliRunner

from deploysim.cli import app
from deploysim.store import Store
from tests.conftest import HH, TAU
from tests.report.synthetic import Synthetic, backtest_result, build

CHROMIUM = Path(os.environ.get("DEPLOYSIM_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Where browser tests leave their screenshots (git-ignored).
ARTIFACTS = Path(os.environ.get("DEPLOYSIM_ARTIFACTS", Path(__file__).parents[1] / "artifacts"))


@pytest.fixture(scope="session")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Synthetic:
    """400 replays whose transcripts, rationales and one model name try script injection, with
    a forecast, a scorecard and de-identification meta."""
    return build(
        tmp_path_factory.mktemp("hostile") / "s.db", replays=400, hostile=True, extras=True
    )


@pytest.fixture(scope="session")
def backtested(tmp_path_factory: pytest.TempPathFactory) -> Synthetic:
    """200 replays, a forecast and two stored backtest results: an older one whose third
    release is ``old-release`` and the latest (:func:`~tests.report.synthetic.backtest_result`),
    whose release names and system prompt try script injection."""
    syn = build(tmp_path_factory.mktemp("backtest") / "s.db", replays=200, extras=True)
    with Store(syn.path) as store:
        old = backtest_result(hostile_name="old-release")
        store.add_analysis("backtest", {"config": "old"}, old)
        store.add_analysis("backtest", {"config": "synthetic"}, backtest_result())
    return syn


@pytest.fixture(scope="session")
def big(tmp_path_factory: pytest.TempPathFactory) -> Synthetic:
    """100,000 replays (25,000 prefixes x 4 models), about 290,000 grades."""
    return build(tmp_path_factory.mktemp("big") / "s.db", replays=100_000)


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store made by the real commands: HH-RLHF and tau-bench logs, 40 prefixes, two
    scripted models, two rule graders and a scripted judge."""
    store = str(tmp_path_factory.mktemp("pipeline") / "s.db")
    outputs: list[tuple[int, str]] = []

    def run() -> None:
        runner = CliRunner()
        for args in (
            ["ingest", str(HH), str(TAU)],
            ["sample", "--size", "40"],
            ["replay", "--model", "scripted/refuse?rate=0.3"],
            ["replay", "--model", "scripted/echo"],
            ["grade", "-g", "rule/refusal", "-g", "rule/tool-claims"],
            # A judge with a fractional score, for the viewer's rounding.
            ["grade", "-g", "judge/S", "--judge", "scripted/yes?p=0.87654321"],
        ):
            result = runner.invoke(app, [*args, "--store", store])
            outputs.append((result.exit_code, result.output))

    # In a thread of its own: replay and grading call asyncio.run(), which refuses to start
    # inside the event loop that Playwright's sync API keeps on the main thread.
    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    for code, output in outputs:
        assert code == 0, output
    assert len(outputs) == 6
    return Path(store)


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or ``None``."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install playwright)"
    if not CHROMIUM.is_file():
        return f"no chromium at {CHROMIUM} (apt-get install chromium)"
    return None


def skip_or_fail(reason: str) -> NoReturn:
    """Skip, or fail when DEPLOYSIM_REQUIRE_BROWSER=1 (CI must not pass by skipping)."""
    if os.environ.get("DEPLOYSIM_REQUIRE_BROWSER") == "1":
        pytest.fail(f"DEPLOYSIM_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A headless Debian chromium driven by Playwright's Python package (no downloaded
    browser), with a fresh profile directory.

    Module-scoped: Playwright's sync API keeps an event loop running on the main thread while
    it is open, and ``asyncio.run()`` in any later test would refuse to start inside it.
    """
    missing = missing_browser()
    if missing is not None:
        skip_or_fail(missing)
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            yield context
        finally:
            context.close()
