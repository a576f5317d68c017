"""Report, viewer and export commands (``deploysim report``, ``view``, ``export``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from deploysim.cli.common import JsonOpt, StoreOpt, out, print_json, require_store
from deploysim.errors import InputError
from deploysim.store import Store


def export(
    store: StoreOpt,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Output file (.jsonl or .jsonl.gz).")
    ],
    fmt: Annotated[str, typer.Option("--format", "-f", help="Output format: openai.")] = "openai",
    as_json: JsonOpt = False,
) -> None:
    """Write the stored conversations out, one per line (tool calls and results included)."""
    from deploysim.export import export_openai

    if fmt != "openai":
        raise InputError(f"unknown export format {fmt!r}; supported: openai")
    require_store(store)
    with Store(store) as st:
        n = export_openai(st, output)
    if as_json:
        print_json({"output": str(output), "format": fmt, "conversations": n})
    else:
        out.print(f"wrote {n} conversations to {output}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``deploysim`` app."""
    app.command()(export)
