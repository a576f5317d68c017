"""Exports of the run store. ``openai``: one OpenAI chat JSONL record per conversation."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import IO

from deploysim.ingest.openai import to_openai_record
from deploysim.store import Store


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


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "wt", encoding="utf-8")
    return path.open("w", encoding="utf-8")
