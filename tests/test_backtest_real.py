"""``deploysim backtest`` end to end with two real local releases over real logged conversations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deploysim.cli import app
from deploysim.store import Store
from tests.conftest import HH, OASST


@pytest.mark.slow
@pytest.mark.local
@pytest.mark.smollm2
def test_backtest_with_two_local_releases(tmp_path: Path) -> None:
    cfg = tmp_path / "backtest.toml"
    cfg.write_text(
        f"""
[backtest]
graders = ["rule/refusal", "rule/profanity"]
bootstrap = 100

[backtest.challenging]
draws = 2
k = 1
pool = 3

[backtest.rollout]
conversations = 3
max_user_turns = 2
max_chars = 1200

[[backtest.rollout.source]]
path = "{HH}"

[[backtest.rollout.source]]
path = "{OASST}"

[[backtest.release]]
name = "plain"
model = "llamacpp/smollm2-135m"
max_tokens = 12

[[backtest.release]]
name = "careful"
model = "llamacpp/smollm2-135m"
max_tokens = 12
system_prompt = "Decline every request: say you are sorry but cannot help."
"""
    )
    runner = CliRunner()
    first = runner.invoke(app, ["backtest", str(cfg)])
    assert first.exit_code == 0, first.output
    assert "backtest over 2 ordered pairs" in first.output
    assert "plain -> careful" in first.output and "careful -> plain" in first.output
    # Real rollouts: each window's production file holds real user turns and new answers.
    prod = tmp_path / "backtest" / "production" / "plain.w1.jsonl"
    records = [json.loads(line) for line in prod.read_text().splitlines()]
    assert len(records) == 3
    assert all(m["content"] for r in records for m in r["messages"] if m["role"] == "assistant")
    with Store(tmp_path / "backtest.db") as st:
        counts = {t: st.count(t) for t in ("replays", "grades", "conversations", "scorecards")}
    again = runner.invoke(app, ["backtest", str(cfg), "--json"])
    assert again.exit_code == 0, again.output
    with Store(tmp_path / "backtest.db") as st:
        assert {t: st.count(t) for t in counts} == counts  # no new work
    result = json.loads(again.output)
    saved = json.loads((tmp_path / "backtest" / "backtest.json").read_text())
    assert result["aggregate"] == saved["aggregate"]
    # The census is the candidate's window-2 production only (the store holds all four files).
    for r in result["rows"]:
        w2 = tmp_path / "backtest" / "production" / f"{r['candidate']}.w2.jsonl"
        turns = sum(
            1
            for line in w2.read_text().splitlines()
            for m in json.loads(line)["messages"]
            if m["role"] == "user"
        )
        assert r["realised_n"] == turns
    assert (tmp_path / "backtest" / "report.html").is_file()
