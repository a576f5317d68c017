"""Rich progress bars around long-running stages (stderr, hidden for ``--json``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from deploysim.ingest import FileReport, Transform, ingest_file
from deploysim.stage import Bar
from deploysim.store import Store


def ingest_with_progress(
    path: Path,
    store: Store,
    *,
    fmt: str | None,
    strict: bool,
    quiet: bool,
    transform: Transform | None = None,
    options: dict[str, Any] | None = None,
    limit: int | None = None,
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
            transform=transform,
            options=options,
            limit=limit,
            on_progress=lambda done: progress.update(task, completed=done),
        )


@contextmanager
def count_progress(label: str, *, quiet: bool) -> Iterator[Bar]:
    """A progress bar over a known number of items: done/total, rate, ETA, failures."""
    console = Console(stderr=True)
    if not quiet and not console.is_terminal:
        # Piped to a file or a CI log, a bar draws nothing; a line now and then shows that a
        # stage which runs for minutes is moving.
        with _line_progress(label, console) as update:
            yield update
        return
    progress = Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:.1f}/s"),
        TextColumn("[red]{task.fields[failed]} failed"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=quiet or not console.is_terminal,
    )
    with progress:
        task = progress.add_task(label, total=None, rate=0.0, failed=0)
        start = time.perf_counter()

        def update(done: int, total: int, failed: int) -> None:
            elapsed = time.perf_counter() - start
            rate = done / elapsed if elapsed > 0 else 0.0
            progress.update(task, total=total, completed=done, failed=failed, rate=rate)

        yield update


LINE_EVERY_S = 30.0


@contextmanager
def _line_progress(label: str, console: Console) -> Iterator[Bar]:
    """Plain progress lines: the first item, then at most one line every ``LINE_EVERY_S``."""
    start = time.perf_counter()
    last, finished = -LINE_EVERY_S, False

    def update(done: int, total: int, failed: int) -> None:
        nonlocal last, finished
        now = time.perf_counter() - start
        if done == 0 or finished or (now - last < LINE_EVERY_S and done < total):
            return
        finished = done >= total
        last = now
        rate = done / now if now > 0 else 0.0
        left = ""
        if rate > 0 and done < total:
            left = f", about {_duration((total - done) / rate)} left"
        bad = f", {failed} failed" if failed else ""
        console.print(
            f"{label}: {done}/{total} after {_duration(now)} ({rate:.2f}/s{bad}{left})",
            highlight=False,
            markup=False,
            soft_wrap=True,  # a log line, not wrapped at the 80 columns rich assumes off a TTY
        )

    yield update


def _duration(seconds: float) -> str:
    """``42 s`` or ``3 min 5 s``."""
    s = round(seconds)
    return f"{s} s" if s < 60 else f"{s // 60} min {s % 60} s"
