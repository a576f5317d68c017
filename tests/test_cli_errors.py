"""User mistakes end in one clear line and exit code 2, never a traceback (the real CLI)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import HH, OASST


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploysim", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("mistakes")
    ok = _cli("ingest", str(HH), "--store", "s.db", "--no-deidentify", cwd=d)
    assert ok.returncode == 0, ok.stderr
    (d / "empty").mkdir()
    return d


MISTAKES = {
    "missing log file": ["ingest", "missing.jsonl", "--store", "s.db"],
    "empty directory": ["ingest", "empty", "--store", "s.db"],
    "sample size 0": ["sample", "--store", "s.db", "--size", "0"],
    "unknown sample (estimate)": ["estimate", "--store", "s.db", "--sample", "nosuch"],
    "unknown sample (compare)": [
        "compare",
        "--store",
        "s.db",
        "--sample",
        "nosuch",
        "--candidate",
        "scripted/echo",
    ],
    "missing store": ["estimate", "--store", "nosuch.db"],
    "unknown model provider": ["replay", "--store", "s.db", "--model", "nosuch/model"],
    "missing run config": ["run", "nosuch.toml"],
    "missing backtest config": ["backtest", "nosuch.toml"],
    "missing manifest": ["scorecard", "--forecast", "nosuch.json", "--production", "x.jsonl"],
    "unknown grader": ["grade", "--store", "s.db", "-g", "rule/nosuch"],
}


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_a_mistake_is_one_line_and_exit_2(work: Path, name: str) -> None:
    r = _cli(*MISTAKES[name], cwd=work)
    assert r.returncode == 2, (name, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert lines and len(lines) <= 6, r.stderr  # typer's own usage errors draw a small box
    assert "error" in r.stderr.lower()


def test_a_directory_of_logs_is_read_recursively(tmp_path: Path) -> None:
    (tmp_path / "logs" / "chat").mkdir(parents=True)
    (tmp_path / "logs" / "chat" / "hh.jsonl").write_bytes(HH.read_bytes())
    (tmp_path / "logs" / "oasst.jsonl").write_bytes(OASST.read_bytes())
    (tmp_path / "logs" / ".hidden.jsonl").write_text("not a log\n")
    r = _cli("ingest", "logs", "--store", "s.db", "--no-deidentify", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    files = json.loads(r.stdout)["files"]
    assert [Path(f["path"]).name for f in files] == ["hh.jsonl", "oasst.jsonl"]  # sorted
    assert {f["format"] for f in files} == {"hh-rlhf", "oasst"}
    only = _cli(
        "ingest",
        "logs",
        "--glob",
        "hh*",
        "--store",
        "t.db",
        "--no-deidentify",
        "--json",
        cwd=tmp_path,
    )
    assert [Path(f["path"]).name for f in json.loads(only.stdout)["files"]] == ["hh.jsonl"]
