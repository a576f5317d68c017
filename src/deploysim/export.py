"""Exports of the run store (``deploysim export --format ...``).

* ``openai``: one OpenAI chat JSONL record per stored conversation (a file; gzip for ``.gz``);
* ``csv`` / ``parquet``: the tidy tables of formats.md §2 (a directory):
  :func:`deploysim.report.tables.export_tables`;
* ``inspect``: one Inspect ``.eval`` log per (model, sample) (a directory; needs the
  ``exports`` extra): :func:`deploysim.report.inspect_log.export_inspect`;
* ``otel``: one OpenTelemetry ``gen_ai.evaluation.result`` event per grade (a JSONL file):
  :func:`deploysim.report.otel.export_otel`.

Rationales (``gen_ai.evaluation.explanation``, the ``grades`` table's ``rationale``) can quote
user content and are written only when asked for. Every export streams from the store.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import IO, Any

from deploysim.errors import UsageError
from deploysim.ingest.openai import to_openai_record
from deploysim.store import Store

#: Export formats, and whether each writes a directory (else one file).
FORMATS: dict[str, bool] = {
    "openai": False,
    "csv": True,
    "parquet": True,
    "inspect": True,
    "otel": False,
}


def export_openai(store: Store, output: Path) -> int:
    """Write every stored conversation to ``output`` (gzip when it ends in ``.gz``); streamed."""
    output.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    f: IO[str]
    with _open_text(output) as f:
        for conv in store.conversations():
            f.write(json.dumps(to_openai_record(conv), ensure_ascii=False))
            f.write("\n")
            n += 1
    return n


def export(
    store: Store,
    fmt: str,
    output: Path,
    *,
    sample: str | None = None,
    include_explanations: bool = False,
) -> dict[str, Any]:
    """Export ``store`` in format ``fmt`` to ``output``; returns what was written (JSON-ready)."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; supported: {', '.join(FORMATS)}")
    if FORMATS[fmt] and output.exists() and not output.is_dir():
        raise UsageError(f"{output} is a file; --format {fmt} writes a directory")
    if not FORMATS[fmt] and output.is_dir():
        raise UsageError(f"{output} is a directory; --format {fmt} writes one file")
    result: dict[str, Any] = {"output": str(output), "format": fmt}
    if fmt == "openai":
        result["conversations"] = export_openai(store, output)
    elif fmt in ("csv", "parquet"):
        from deploysim.report.tables import export_tables

        result["tables"] = export_tables(
            store, output, fmt=fmt, sample=sample, include_explanations=include_explanations
        )
    elif fmt == "inspect":
        from deploysim.report.inspect_log import export_inspect

        result["logs"] = [s.to_json() for s in export_inspect(store, output, sample=sample)]
    else:
        from deploysim.report.otel import export_otel

        result["events"] = export_otel(
            store, output, include_explanations=include_explanations, sample=sample
        )
    return result


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "wt", encoding="utf-8")
    return path.open("w", encoding="utf-8")
