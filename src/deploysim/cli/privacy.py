"""``deploysim privacy``: measure de-identification on labelled data."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from deploysim.cli._types import Part
from deploysim.errors import DeploysimError

app = typer.Typer(
    help="De-identification: measure PII detection against labelled data and Presidio.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _group() -> None:
    """De-identification: measure PII detection against labelled data and Presidio."""


@app.command("eval")
def eval_cmd(
    data: Annotated[
        Path, typer.Argument(help="Span-labelled texts in presidio-research JSON format.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Use only the first N texts.")
    ] = None,
    part: Annotated[
        Part,
        typer.Option(
            "--part",
            help="Records to use: dev (even template_id, or even index without one), test "
            "(odd), or all. Tune on dev only.",
        ),
    ] = "all",
) -> None:
    """Per-entity recall, character precision and F2 of deploysim and of Presidio's default
    analyzer on the same texts, and how many labelled raw values survive de-identification."""
    err = Console(stderr=True)
    try:
        report = run_eval(data, limit=limit, part=part, progress=None if as_json else err)
    except DeploysimError as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(report, sort_keys=True))
    else:
        Console(width=None if sys.stdout.isatty() else 140).print(_table(report))


def run_eval(
    data: Path, *, limit: int | None = None, part: Part = "all", progress: Console | None = None
) -> Any:
    """The evaluation report as JSON-ready data (see :mod:`deploysim.privacy.evaluation`)."""
    from deploysim.privacy.detector import Detector
    from deploysim.privacy.evaluation import load_labelled, measure, presidio_default_analyzer

    items = load_labelled(data, limit, part)
    if progress:
        progress.print(f"{len(items)} labelled texts; running deploysim and Presidio...")
    body = measure(items, Detector(), presidio_default_analyzer())
    return {"data": str(data), "part": part, **body}


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _table(report: Any) -> Table:
    ours, theirs = report["systems"]["deploysim"], report["systems"]["presidio_default"]
    table = Table(
        title=f"PII detection on {report['texts']} texts ({report['spans']} labelled spans)",
        caption=(
            "recall: labelled spans overlapped by a detection; precision: detected characters "
            f"inside a label. Labelled values left after de-identification: "
            f"{report['leaks']['total']}"
        ),
    )
    table.add_column("entity")
    table.add_column("spans", justify="right")
    for name in ("recall", "precision", "F2"):
        table.add_column(f"{name}\ndeploysim", justify="right")
        table.add_column(f"{name}\npresidio", justify="right")
    types = sorted(set(ours["per_entity"]) | set(theirs["per_entity"]))
    for t in types:
        a, b = ours["per_entity"].get(t, {}), theirs["per_entity"].get(t, {})
        spans = a.get("spans") or b.get("spans") or 0
        cells = [_fmt(x.get(k)) for k in ("recall", "precision", "f2") for x in (a, b)]
        table.add_row(t, str(spans), *cells)
    table.add_section()
    total = [_fmt(x[k]) for k in ("recall", "char_precision", "f2") for x in (ours, theirs)]
    table.add_row("all", str(report["spans"]), *total, style="bold")
    return table
