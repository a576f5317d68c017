"""Data commands: ``deploysim ingest`` (logs into the store), ``stats`` and ``sample``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from deploysim.cli._options import DEID, JsonOpt, NewStoreOpt, StoreOpt
from deploysim.cli._types import LogFormat, SampleMode, Stratum
from deploysim.cli.common import err, out, print_json
from deploysim.errors import InputError
from deploysim.ingest import FileReport
from deploysim.store import Store


def ingest(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Log files or directories (read recursively; see --glob)."),
    ],
    store: NewStoreOpt,
    fmt: Annotated[
        LogFormat | None,
        typer.Option("--format", "-f", help="Force the format (default: detected per file)."),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Stop at the first bad record or unreadable file.")
    ] = False,
    deidentify: Annotated[
        bool,
        typer.Option(
            "--deidentify/--no-deidentify",
            help="Replace personal data with consistent surrogates before storing (default); "
            "switching it off is recorded in the store's manifest.",
            rich_help_panel=DEID,
        ),
    ] = True,
    deid_strict: Annotated[
        bool,
        typer.Option(
            "--deid-strict", help="Drop conversations the audit still flags.", rich_help_panel=DEID
        ),
    ] = False,
    deid_keep_introduced: Annotated[
        bool,
        typer.Option(
            "--deid-keep-introduced/--deid-replace-introduced",
            help="Leave names, places, organisations, dates and links that only the logged "
            "model said (default), or replace them too: for logs whose model saw context the "
            "log does not hold (retrieval, memory).",
            rich_help_panel=DEID,
        ),
    ] = True,
    workers: Annotated[
        int,
        typer.Option(
            help="Processes that de-identify each batch (same output).", min=1, rich_help_panel=DEID
        ),
    ] = 1,
    limit: Annotated[
        int | None, typer.Option(help="Read only the first N records of each file.", min=1)
    ] = None,
    glob: Annotated[
        str, typer.Option(help="Which files of a directory to read (e.g. '*.jsonl').")
    ] = "*",
    as_json: JsonOpt = False,
) -> None:
    """Read logs into the store: formats auto-detected, de-identified, bad records reported."""
    from deploysim.cli.progress import ingest_with_progress
    from deploysim.ingest import expand_paths
    from deploysim.pipeline import ingest_options

    files = expand_paths(paths, glob)
    reports: list[FileReport] = []
    failed: list[dict[str, str]] = []
    with Store(store) as st:
        transform, options = ingest_options(
            st,
            deidentify=deidentify,
            strict=deid_strict,
            workers=workers,
            keep_introduced=deid_keep_introduced,
        )
        try:
            for path in files:
                try:
                    reports.append(
                        ingest_with_progress(
                            path,
                            st,
                            fmt=fmt.value if fmt else None,
                            strict=strict,
                            quiet=as_json,
                            transform=transform,
                            options=options,
                            limit=limit,
                        )
                    )
                except InputError as e:
                    if strict:
                        raise
                    failed.append({"path": str(path), "reason": str(e)})
        finally:
            if transform is not None:
                transform.close()
        counts = st.table_counts()
    if as_json:
        print_json(
            {
                "files": [r.to_json() for r in reports],
                "unreadable": failed,
                "store": str(store),
                "store_rows": counts,
            }
        )
        return
    _print_ingest_table(reports, failed)
    out.print(
        f"store {store}: {counts['conversations']} conversations, "
        f"{counts['messages']} distinct messages"
    )


def _print_ingest_table(reports: list[FileReport], failed: list[dict[str, str]]) -> None:
    table = Table(title="ingest")
    cols = (
        "file",
        "format",
        "status",
        "records",
        "kept",
        "skipped",
        "empty",
        "conversations",
        "new",
    )
    for col in cols:
        table.add_column(
            col,
            justify="left" if col in ("file", "format", "status") else "right",
            no_wrap=True,
        )
    for r in reports:
        table.add_row(
            Path(r.path).name,
            r.format,
            r.status,
            str(r.records),
            str(r.kept),
            str(r.skipped),
            str(r.empty),
            str(r.conversations),
            str(r.new_conversations) if r.status == "ingested" else "-",
        )
    out.print(table)
    for r in reports:
        for s in r.skips:
            where = f"record {s.record}" + (f", line {s.line}" if s.line else "")
            err.print(f"[yellow]skipped[/] {r.path}, {where}: {s.reason}", highlight=False)
        if r.skipped > len(r.skips):
            err.print(
                f"[yellow]... and {r.skipped - len(r.skips)} more skipped in {r.path}[/] "
                f"(by reason: {r.skip_reasons})",
                highlight=False,
            )
    for r in reports:
        for w in r.warnings:
            err.print(f"[yellow]warning[/] {r.path}: {w}", highlight=False)
    for f in failed:
        err.print(f"[red]not ingested[/] {f['reason']}", highlight=False)


def stats(store: StoreOpt, as_json: JsonOpt = False) -> None:
    """Counts by source and format, turns per conversation, and tool use."""
    from deploysim.summary import summarize

    with Store(store) as st:
        summary = summarize(st)
    if as_json:
        print_json(summary)
        return
    table = Table(title=f"{store}: {summary['conversations']} conversations")
    for col in ("format", "inputs", "conversations", "sightings"):
        table.add_column(col, justify="left" if col == "format" else "right")
    for row in summary["by_format"]:
        table.add_row(
            row["format"], *(str(row[k]) for k in ("inputs", "conversations", "sightings"))
        )
    out.print(table)
    for label in ("messages_per_conversation", "user_turns_per_conversation"):
        d = summary[label]
        out.print(
            f"{label.replace('_', ' ')}: min {d['min']}, median {d['median']}, "
            f"mean {d['mean']}, p90 {d['p90']}, max {d['max']}"
        )
    tu = summary["tool_use"]
    out.print(
        f"tool use: {tu['conversations_with_tool_calls']} conversations with tool calls "
        f"({tu['tool_calls']} calls), {tu['conversations_offering_tools']} offering tools"
    )
    if tu["top_tools"]:
        out.print("top tools: " + ", ".join(f"{t['name']}" for t in tu["top_tools"][:10]))


def sample_cmd(
    store: StoreOpt,
    name: Annotated[str, typer.Option("--name", help="Name of the sample.")] = "default",
    mode: Annotated[
        SampleMode,
        typer.Option("--mode", help="turn: uniform over user turns; final: over conversations."),
    ] = "turn",
    size: Annotated[int, typer.Option("--size", "-n", help="Number of prefixes.")] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    formats: Annotated[
        list[LogFormat] | None,
        typer.Option("--source-format", help="Only these formats (repeatable)."),
    ] = None,
    min_user_turns: Annotated[int, typer.Option(help="Eligibility: at least this many.")] = 1,
    max_user_turns: Annotated[
        int | None, typer.Option(help="Eligibility: at most this many.")
    ] = None,
    has_tools: Annotated[
        bool | None, typer.Option("--has-tools/--no-tools", help="Only with / without tool use.")
    ] = None,
    include_multimodal: Annotated[
        bool, typer.Option("--include-multimodal", help="Keep conversations with images etc.")
    ] = False,
    stratify: Annotated[Stratum | None, typer.Option(help="Stratify by this key.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Draw a sample of prefixes (each with its inclusion probability and logged next turn)."""
    from deploysim.prefixes import create_sample
    from deploysim.sampling import SamplingSpec

    spec = SamplingSpec(
        mode=mode,
        size=size,
        seed=seed,
        formats=tuple(f.value for f in formats or ()),
        min_user_turns=min_user_turns,
        max_user_turns=max_user_turns,
        has_tools=has_tools,
        include_multimodal=include_multimodal,
        stratify=stratify,
    )
    with Store(store) as st:
        info = create_sample(st, name, spec)
    result = {
        "sample": info.name,
        "created": info.created,
        "size": info.size,
        "population": info.population,
        "spec": spec.model_dump(mode="json"),
        "spec_hash": info.spec_hash,
    }
    if as_json:
        print_json(result)
    else:
        verb = "drew" if info.created else "already have"
        out.print(
            f"{verb} sample {info.name!r}: {info.size} prefixes out of {info.population} "
            f"eligible ({spec.mode} mode, seed {spec.seed})"
        )


def register(app: typer.Typer) -> None:
    """Add ``ingest``, ``stats`` and ``sample`` to the ``deploysim`` app."""
    app.command()(ingest)
    app.command()(stats)
    app.command("sample")(sample_cmd)
