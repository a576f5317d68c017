"""Options with a fixed set of values are typed choices (validated by typer, listed in --help),
their sets agree with the package's, and no help text loses brackets to Rich markup."""

from __future__ import annotations

import re
from collections.abc import Iterator
from enum import Enum
from typing import Any, get_args

import pytest
import typer.main
from rich.markup import render
from typer.testing import CliRunner

from deploysim.cli import _types, app

# Wide enough that no metavar or value wraps.
runner = CliRunner(env={"COLUMNS": "400"})

LOG_FORMATS = {
    *("openai", "openai-responses", "anthropic", "sharegpt", "hh-rlhf", "oasst", "tau-bench"),
    *("inspect", "otel-genai", "openinference", "langfuse", "langsmith", "swe-agent"),
    *("openhands", "atif", "toolbench"),
}

# (command path, option) -> the values it takes.
CHOICES: dict[tuple[str, str], set[str]] = {
    ("ingest", "--format"): LOG_FORMATS,
    ("sample", "--mode"): {"turn", "final"},
    ("sample", "--source-format"): LOG_FORMATS,
    ("sample", "--stratify"): {"source_format", "source_file", "has_tools", "user_turns"},
    ("replay", "--tools"): {"none", "replay"},
    ("replay", "--executor"): {"local", "processes", "ray"},
    ("grade", "--executor"): {"local", "processes", "ray"},
    ("export", "--format"): {"openai", "csv", "parquet", "inspect", "otel"},
    ("discover", "--unit"): {"segment", "response"},
    ("discover", "--method"): {"auto", "agglomerative", "kmeans", "hdbscan"},
    ("graders validate", "--calibrate"): {"youden", "precision90", "fixed"},
    ("realism", "--discriminator"): {"judge", "consistency", "consistency-tools"},
    ("realism", "--arm"): {"both", "blind", "sees-log"},
}
# Options whose help lists values but that take more than those values.
NOT_FIXED = {("awareness", "--source"): "a source takes arguments (logs:FORMAT, replays:SPEC)"}
# Owned by another change in progress (cli/forecast.py, cli/backtest.py): to fix there.
PENDING: set[tuple[str, str]] = set()

# A help that enumerates values: "a, b or c" at its start or after a colon.
_WORD = r"[a-z][\w-]*(?: \([^)]*\))?"
LISTS_VALUES = re.compile(
    rf"(?:^|: ){_WORD}(?:, {_WORD})*,? or {_WORD}[.]?$|: {_WORD}(?:, {_WORD})+"
)


def _params() -> Iterator[tuple[str, Any, Any]]:
    """(command path, command, parameter) of every command, sub-commands included."""

    def walk(prefix: str, command: Any) -> Iterator[tuple[str, Any, Any]]:
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            path = f"{prefix} {name}".strip()
            yield from walk(path, sub)
            for param in sub.params:
                yield path, sub, param

    yield from walk("", typer.main.get_command(app))


def _name(param: Any) -> str:
    return str(param.opts[0]) if param.param_type_name == "option" else str(param.name)


def _flat(text: str) -> str:
    """Help output without the wrapping: no whitespace, no box lines."""
    return re.sub(r"[\s│]", "", text)


def _choices(param: Any) -> set[str] | None:
    """The values of a choice parameter (typer's own type descriptor, or click's Choice)."""
    desc = getattr(param, "type_descriptor", None)
    values = desc.choices if desc is not None else getattr(param.type, "choices", None)
    if values is None:
        return None
    return {v.value if isinstance(v, Enum) else str(v) for v in values}


def test_listed_options_are_choices_shown_in_help() -> None:
    found = {(path, _name(p)): _choices(p) for path, _, p in _params()}
    for key, values in CHOICES.items():
        assert found[key] == values, key
        out = _flat(runner.invoke(app, [*key[0].split(), "--help"]).output)
        for value in values:
            assert value in out, (key, value)


def test_no_plain_option_lists_fixed_values() -> None:
    offenders = []
    for path, _, param in _params():
        key = (path, _name(param))
        listed = _choices(param) is None and LISTS_VALUES.search(param.help or "")
        if listed and key not in NOT_FIXED and key not in PENDING:
            offenders.append(f"{key}: {param.help!r}")
    assert not offenders, "make these typed choices (deploysim.cli._types):\n" + "\n".join(
        offenders
    )


def test_a_value_outside_the_set_is_a_usage_error(tmp_path: Any) -> None:
    (tmp_path / "s.db").touch()  # --store is checked first: it must exist
    r = runner.invoke(
        app, ["replay", "--store", str(tmp_path / "s.db"), "-m", "x", "--tools", "all"]
    )
    assert r.exit_code == 2 and "'all'isnotoneof'none','replay'" in _flat(r.output)


def test_no_help_text_loses_brackets_to_markup() -> None:
    lost = []
    for path, command, param in _params():
        for text, where in ((param.help, _name(param)), (command.help, "(command)")):
            eaten = text and render(text).plain != text.replace("\\[", "[")
            if eaten and (path, where) not in PENDING:
                lost.append(f"{path} {where}: {text!r}")
    assert not lost, "escape '[' as '\\\\[' in:\n" + "\n".join(lost)
    assert "deploysim[ray]" in _flat(runner.invoke(app, ["replay", "--help"]).output)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (_types.ToolMode, "deploysim.tools:ToolPolicy.mode"),
        (_types.SampleMode, "deploysim.sampling:Mode"),
        (_types.Stratum, "deploysim.sampling:STRATA"),
        (_types.ExportFormat, "deploysim.export:FORMATS"),
        (_types.DiscoveryUnit, "deploysim.discovery:Unit"),
        (_types.ClusterMethod, "deploysim.discovery:Method"),
        (_types.LogFormat, "deploysim.ingest:FORMATS"),
        (_types.ExecutorName, "deploysim.execute:EXECUTORS"),
        (_types.PrimaryMethod, "deploysim.forecast:PRIMARY_METHODS"),
        (_types.Calibrate, "deploysim.graders.calibration:Criterion"),
        (_types.RealismDiscriminator, "deploysim.realism:DiscriminatorName"),
    ],
)
def test_the_cli_sets_match_the_package(ours: Any, theirs: str) -> None:
    import importlib

    module, _, name = theirs.partition(":")
    obj: Any = importlib.import_module(module)
    attr, _, field = name.partition(".")
    obj = getattr(obj, attr)
    if field:
        obj = obj.model_fields[field].annotation
    values = set(get_args(obj)) if get_args(obj) else set(obj)
    mine = {m.value for m in ours} if isinstance(ours, type) else set(get_args(ours))
    assert mine == values
