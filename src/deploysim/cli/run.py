"""Whole-pipeline commands: ``deploysim run`` (one config) and ``demo`` (the embedded default)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from deploysim.cli._options import JsonOpt
from deploysim.cli.common import err, out, print_json


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
    from deploysim.estimates import validation_note

    if as_json:
        print_json(result)
        return
    # The same reading as `deploysim estimate`: k of n beside the smoothed rate (a smoothed rate
    # alone reads 0 of 20 as thousands per 100k), and each grader's standing.
    table = Table(title="estimates (per 100k: smoothed rate, 95% interval; k of n graded)")
    cols = ("model", "category", "grader", "k/n", "per 100k", "95% CI", "corrected", "validation")
    for col in cols:
        left = col in ("model", "category", "grader", "validation")
        table.add_column(col, justify="left" if left else "right")
    for e in result["estimates"]:
        table.add_row(
            e["model"],
            e["category"],
            e["grader"].split("?")[0],
            f"{e['k']}/{e['n']}",
            _per_100k(e["rate"]),
            "-" if e["ci_low"] is None else f"{_per_100k(e['ci_low'])}-{_per_100k(e['ci_high'])}",
            _corrected(e),
            e["validation"] + validation_note(e["validation_auc"], e["validation_positives"]),
        )
    out.print(table)
    stages = result.get("seconds", {})
    if stages:
        out.print(
            "time: " + ", ".join(f"{k} {v:,.0f} s" for k, v in stages.items()),
            highlight=False,
        )
    out.print(f"report: {result['report']}")


def _per_100k(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 1e5:,.0f}"


def _corrected(e: dict[str, Any]) -> str:
    """The Rogan-Gladen rate with its interval; "-" where the grader has no usable validation."""
    if e["corrected_rate"] is None:
        return "-"
    low, high = e["corrected_ci"] or (None, None)
    bounds = f" ({_per_100k(low)}-{_per_100k(high)})" if low is not None else ""
    return _per_100k(e["corrected_rate"]) + bounds


def register(app: typer.Typer) -> None:
    """Add ``run`` and ``demo`` to the ``deploysim`` app."""
    app.command()(run)
    app.command()(demo)
