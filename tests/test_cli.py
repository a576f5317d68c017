"""The deploysim command: --help everywhere, --json figures, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deploysim.cli import app
from tests.conftest import HH, INSPECT_DIR, OASST, TAU

runner = CliRunner()


def _commands() -> list[str]:
    import typer.main

    group = typer.main.get_command(app)
    return sorted(group.commands)  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", [[], *([c] for c in _commands())])
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_ingest_stats_export_with_json(tmp_path: Path) -> None:
    store = str(tmp_path / "s.db")
    files = [str(HH), str(OASST), str(TAU), *map(str, sorted(INSPECT_DIR.iterdir()))]
    result = runner.invoke(app, ["ingest", *files, "--store", store, "--json", "--no-deidentify"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    counts = {Path(f["path"]).name: f["conversations"] for f in data["files"]}
    assert counts[HH.name] == 20 and counts[OASST.name] == 54 and counts[TAU.name] == 100
    assert [Path(u["path"]).name for u in data["unreadable"]] == ["LICENSE"]

    stats = json.loads(runner.invoke(app, ["stats", "--store", store, "--json"]).stdout)
    assert stats["conversations"] == 188
    by_format = {r["format"]: r["conversations"] for r in stats["by_format"]}
    assert by_format == {"hh-rlhf": 20, "oasst": 54, "tau-bench": 100, "inspect": 14}
    # Counted independently from the raw files: 85 tau-bench trajectories call tools (621
    # calls), and the one Inspect browser sample (4 calls).
    assert stats["tool_use"]["conversations_with_tool_calls"] == 86
    assert stats["tool_use"]["tool_calls"] == 625

    out = tmp_path / "out.jsonl.gz"
    result = runner.invoke(app, ["export", "--store", store, "-o", str(out), "--json"])
    assert json.loads(result.stdout)["conversations"] == 188


def test_human_output_lists_files(tmp_path: Path) -> None:
    result = runner.invoke(app, ["ingest", str(HH), "--store", str(tmp_path / "s.db")])
    assert result.exit_code == 0
    assert HH.name in result.stdout and "hh-rlhf" in result.stdout


def test_errors_are_one_clear_line_with_exit_code_2(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "deploysim", "stats", "--store", str(tmp_path / "missing.db")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "no such store" in proc.stderr and "Traceback" not in proc.stderr


def test_strict_ingest_fails_on_unreadable_file(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "deploysim",
            "ingest",
            str(INSPECT_DIR / "LICENSE"),
            "--store",
            str(tmp_path / "s.db"),
            "--strict",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "LICENSE" in proc.stderr
