"""`deploysim run` as a person reads it in a log: stage times, progress lines, k of n."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from deploysim.cli import app
from deploysim.cli import progress as progress_module
from tests.conftest import DATA

CONFIG = """
store = "run.db"
[ingest]
paths = ["{data}/chat/*.jsonl"]
deidentify = false
[sample]
size = 12
seed = 1
[[replay]]
model = "scripted/refuse?rate=0.5"
[grade]
graders = ["rule/refusal", "judge/K_NV"]
judge = "scripted/yes?p=0.2"
[[compare]]
candidate = "scripted/refuse?rate=0.5"
baseline = "logged"
"""


def test_run_logs_stage_times_progress_and_k_of_n(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Every update is worth a line here (the real interval is 30 s).
    monkeypatch.setattr(progress_module, "LINE_EVERY_S", 0.0)
    config = tmp_path / "run.toml"
    config.write_text(CONFIG.format(data=DATA.as_posix()))
    result = CliRunner().invoke(app, ["run", str(config)])
    assert result.exit_code == 0, result.output
    text = result.output
    # Not a terminal: plain progress lines instead of a bar that draws nothing.
    assert "replay scripted/refuse?rate=0.5: 12/12 after" in text
    assert "grade: " in text and "/s" in text
    # Each stage says how long it took; the summary lists them.
    assert "conversations, 0 skipped (" in text
    assert "time: ingest" in text and "grade" in text.split("time:")[1]
    # k of n beside every smoothed rate, and each grader's standing.
    assert "k/n" in text and "/12" in text
    assert "unvalidated" in text
    assert "Jeffreys 95% interval" not in text
