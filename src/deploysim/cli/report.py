"""Report, viewer and export commands (``deploysim report``, ``view``, ``export``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from deploysim.cli._options import EverySampleOpt, JsonOpt, StoreOpt
from deploysim.cli._types import ExportFormat
from deploysim.cli.common import out, print_json
from deploysim.store import Store


def report(
    store: StoreOpt,
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")] = Path(
        "report.html"
    ),
    sample: EverySampleOpt = None,
    max_prefixes: Annotated[
        int, typer.Option("--max-prefixes", help="Transcripts embedded at most.", min=0)
    ] = 2_000,
    max_flagged: Annotated[
        int,
        typer.Option(
            "--max-flagged", help="Of which prefixes with a flagged response, at most.", min=0
        ),
    ] = 1_500,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the transcript sample.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Write one self-contained HTML report: rates, comparisons, errors, forecasts, the run
    manifest and a transcript viewer (opens offline; no network needed)."""
    from deploysim.report.page import write_report

    with Store(store) as st:
        stats = write_report(
            st,
            output,
            sample=sample,
            max_prefixes=max_prefixes,
            max_flagged=max_flagged,
            seed=seed,
        )
    if as_json:
        print_json(stats.to_json())
        return
    out.print(
        f"wrote {output} ({stats.bytes / 1e6:.1f} MB in {stats.seconds:.1f} s): "
        f"{stats.prefixes_shown:,} of {stats.prefixes_total:,} prefixes embedded "
        f"({stats.flagged_shown:,} of {stats.flagged_total:,} flagged)"
    )


def view(
    store: StoreOpt,
    port: Annotated[
        int, typer.Option("--port", "-p", help="Port on 127.0.0.1 (0: any free port).")
    ] = 8765,
) -> None:
    """Serve the report and a transcript viewer over every prefix on http://127.0.0.1:PORT/
    (local only; Ctrl-C stops it)."""
    from deploysim.report.server import serve

    serve(store, port=port, on_ready=lambda url: out.print(f"serving {store} on {url}"))


def export(
    store: StoreOpt,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="openai: a .jsonl[.gz] file; otel: a .jsonl file; csv, parquet, inspect: "
            "a directory.",
        ),
    ],
    fmt: Annotated[ExportFormat, typer.Option("--format", "-f", help="What to write.")] = "openai",
    sample: EverySampleOpt = None,
    include_explanations: Annotated[
        bool,
        typer.Option(
            "--include-explanations",
            help="Also write grader rationales (otel: gen_ai.evaluation.explanation; tables: "
            "grades.rationale). Off by default: they can quote user content.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write the store out: conversations (openai), tidy tables (csv, parquet), Inspect logs
    (inspect) or OpenTelemetry evaluation events (otel)."""
    from deploysim.export import export as run_export

    with Store(store) as st:
        result = run_export(
            st, fmt, output, sample=sample, include_explanations=include_explanations
        )
    if as_json:
        print_json(result)
        return
    if fmt == "openai":
        out.print(f"wrote {result['conversations']} conversations to {output}")
    elif fmt in ("csv", "parquet"):
        tables = ", ".join(f"{k} ({v:,} rows)" for k, v in result["tables"].items())
        out.print(f"wrote {fmt} tables to {output}: {tables}")
    elif fmt == "inspect":
        for log in result["logs"]:
            out.print(f"wrote {log['path']}: {log['samples']:,} samples, {log['scores']:,} scores")
    else:
        out.print(f"wrote {result['events']:,} evaluation events to {output}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``deploysim`` app."""
    app.command()(report)
    app.command()(view)
    app.command()(export)
