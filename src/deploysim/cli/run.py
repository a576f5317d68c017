"""Whole-pipeline commands: ``deploysim run`` (one config) and ``demo`` (the embedded default)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from deploysim.cli.common import JsonOpt, err, out, print_json


def run(
    config: Annotated[Path, typer.Argument(help="The run config (TOML).")],
    as_json: JsonOpt = False,
) -> None:
    """The whole pipeline from one config file; each stage resumes where it stopped."""
    from deploysim.config import load_config
    from deploysim.pipeline import run_pipeline

    cfg = load_config(config)
    result = run_pipeline(cfg, config.parent, **_stage_output(as_json))
    _finish(result, as_json)


def demo(
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Where to put the store and the report.")
    ] = Path("deploysim-demo"),
    prefixes: Annotated[
        int | None, typer.Option(help="Prefixes to replay (default: the demo's 20).")
    ] = None,
    categories: Annotated[
        list[str] | None,
        typer.Option("--categories", help="Judge categories (codes, repeatable), e.g. S K_NV."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The main job on the embedded default: real ShareGPT logs, local models, no API keys."""
    from deploysim.demo import run_demo

    cats = [c for item in categories or [] for c in item.replace(",", " ").split()]
    result = run_demo(out_dir, prefixes=prefixes, categories=cats or None, **_stage_output(as_json))
    _finish(result, as_json)


def _stage_output(quiet: bool) -> dict[str, Any]:
    from deploysim.cli.progress import count_progress

    def progress(label: str) -> Any:
        return count_progress(label, quiet=quiet)

    def log(line: str) -> None:
        if not quiet:
            err.print(line, highlight=False)

    return {"progress": progress, "log": log}


def _finish(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    table = Table(title="estimates (per 100k, Jeffreys 95% interval)")
    for col in ("model", "category", "grader", "n", "k", "per 100k", "95% CI"):
        table.add_column(col, justify="left" if col in ("model", "category", "grader") else "right")
    for e in result["estimates"]:
        table.add_row(
            e["model"],
            e["category"],
            e["grader"].split("?")[0],
            str(e["n"]),
            str(e["k"]),
            f"{e['per_100k']:,.0f}",
            f"{e['ci_low'] * 1e5:,.0f}-{e['ci_high'] * 1e5:,.0f}",
        )
    out.print(table)
    out.print(f"report: {result['report']}")


def register(app: typer.Typer) -> None:
    """Add ``run`` and ``demo`` to the ``deploysim`` app."""
    app.command()(run)
    app.command()(demo)
