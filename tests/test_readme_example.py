"""The README's "From Python" example runs as written (read from README.md: no drift)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import HH

README = Path(__file__).resolve().parents[1] / "README.md"


def _example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("### From Python", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README has no python block under 'From Python'"
    return match.group(1)


def test_the_readme_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _example()
    # Only the public API: every name the example uses comes from `deploysim` as `ds`.
    assert "from deploysim" not in code and "import deploysim as ds" in code
    shutil.copy(HH, tmp_path / "logs.jsonl")  # the example's input: real HH-RLHF records
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    echo = [r for r in rows if r and r[0] == "scripted/echo"]
    assert echo and all(int(r[3]) == 10 for r in echo), rows  # model category k n rate
    assert (tmp_path / "run.db").exists()
