"""What every command module shares: consoles, the store check, JSON output (the shared options
are in :mod:`deploysim.cli._options`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from deploysim.errors import InputError

# Wide enough for file names when piped; a terminal sets its own width.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def require_store(path: Path) -> Path:
    """``path`` if a store is there; else an error that says how to make one (the callback of
    ``--store`` on every command that reads a store)."""
    if not path.is_file():
        raise InputError(
            f"{path}: no such store; create one with `deploysim ingest ... --store {path}`"
        )
    return path


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def parse_model(spec: str) -> Any:
    """A model spec parsed (a clear error for an unknown provider or a bad option)."""
    from deploysim.models import ModelSpec

    return ModelSpec.parse(spec)
