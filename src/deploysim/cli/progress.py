"""Rich progress bars around long-running stages (stderr, hidden for ``--json``)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from deploysim.ingest import FileReport, ingest_file
from deploysim.store import Store


def ingest_with_progress(
    path: Path, store: Store, *, fmt: str | None, strict: bool, quiet: bool
) -> FileReport:
    """:func:`deploysim.ingest.ingest_file` with a byte-progress bar on stderr."""
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=quiet or not console.is_terminal,
    )
    with progress:
        task = progress.add_task(
            f"ingest {path.name}", total=path.stat().st_size if path.is_file() else None
        )
        return ingest_file(
            path,
            store,
            fmt=fmt,
            strict=strict,
            on_progress=lambda done: progress.update(task, completed=done),
        )
