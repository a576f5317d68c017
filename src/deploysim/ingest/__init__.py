"""Ingest: logs in any supported format -> :class:`~deploysim.schema.Conversation` -> run store.

Files are streamed record by record. A bad record is skipped, counted and reported with its
reason and location; good records are never lost. Work is committed in batches, and an input
is marked complete only at its end, so an interrupted ingest resumes by simply running again.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from deploysim.errors import InputError, RecordError
from deploysim.ingest.formats import FORMATS, Format, Layout, detect, layout_of, records
from deploysim.ingest.sources import Record
from deploysim.keys import load_secret_key, pseudonym
from deploysim.schema import Conversation, Provenance
from deploysim.store import InputRow, Store

__all__ = [
    "FORMATS",
    "FileReport",
    "Skip",
    "Transform",
    "expand_paths",
    "file_sha256",
    "ingest_file",
    "read_file",
]

Transform = Callable[[Sequence[Conversation]], Sequence[Conversation | None]]
MAX_LISTED_SKIPS = 20


@dataclass(frozen=True, slots=True)
class Skip:
    """A skipped record: where it is and why (never its content)."""

    record: int
    line: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class FileReport:
    """What ingesting one file did."""

    path: str
    format: str
    sha256: str
    status: str  # "ingested" | "already ingested"
    records: int = 0
    kept: int = 0
    skipped: int = 0
    conversations: int = 0
    empty: int = 0
    new_conversations: int = 0
    dropped: int = 0
    skips: tuple[Skip, ...] = ()
    skip_reasons: dict[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-compatible data."""
        return {**asdict(self), "warnings": list(self.warnings)}

    @classmethod
    def stored(cls, path: Path, row: InputRow, status: str) -> FileReport:
        """The counts the store's manifest holds for a file, as a report."""
        return cls(
            path=str(path),
            format=row.format,
            sha256=row.sha256,
            status=status,
            records=row.records,
            kept=row.kept,
            skipped=row.skipped,
            conversations=row.conversations,
        )


def expand_paths(paths: Sequence[Path], glob: str = "*") -> list[Path]:
    """The files to ingest: each file as named, each directory's files matching ``glob``
    (recursively, hidden ones skipped) in a stable order. A missing path is an error."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob(glob)
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not found:
                raise InputError(f"{path}: no file matching {glob!r} in this directory")
            out.extend(found)
        elif path.exists():
            out.append(path)
        else:
            raise InputError(f"{path}: no such file or directory; check the path")
    return out


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def read_file(path: Path, fmt: str | None = None) -> tuple[Format, Layout]:
    """The format and record layout of ``path``: detected, or the one named by ``fmt``."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if fmt is None:
        return detect(path)
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    return FORMATS[fmt], layout_of(path, forced=fmt)


def ingest_file(
    path: Path,
    store: Store,
    *,
    fmt: str | None = None,
    strict: bool = False,
    transform: Transform | None = None,
    options: dict[str, Any] | None = None,
    batch_size: int = 500,
    limit: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> FileReport:
    """Ingest one file into ``store``; see the module docstring for the guarantees.

    ``transform`` (de-identification) sees each batch before it is stored and may drop a
    conversation by returning ``None`` in its place. ``on_progress`` receives bytes read so far.
    With ``strict``, the first bad record raises :class:`RecordError` naming file and line.
    ``limit`` reads only the first records (a slice, e.g. for a demo); ``options`` (such as the
    de-identification version) are recorded, and a file ingested with other options is ingested
    again (adding only what is new).
    """
    sha = file_sha256(path)
    options = {**(options or {}), **({"limit": limit} if limit is not None else {})}
    existing = store.input(sha)
    if (
        existing is not None
        and existing.status == "complete"
        and _covers(existing.options, options)
    ):
        return FileReport.stored(path, existing, "already ingested")
    form, layout = read_file(path, fmt)
    key = load_secret_key()
    run = _Run(path=str(path), form=form, sha=sha, store=store, transform=transform)
    with records(path, layout) as (items, position):
        # A file with no record at all is refused before the store records it as an input.
        first = next(items, None)
        if first is None:
            raise InputError(
                f"{path}: not ingested: read as {form.name} but it holds no records; "
                "check that it is a log file (or name its format with --format)"
            )
        store.begin_input(
            sha256=sha, path=str(path), fmt=form.name, size=path.stat().st_size, options=options
        )
        for item in itertools.chain([first], items):
            if limit is not None and run.records >= limit:
                break
            if isinstance(item, Record):
                run.add(item, key, strict=strict)
            else:
                run.skip(item, strict=strict)
            if len(run.pending) >= batch_size:
                run.flush()
                if on_progress is not None:
                    on_progress(position())
    run.flush()
    if on_progress is not None:
        on_progress(path.stat().st_size)
    store.finish_input(
        sha, records=run.records, kept=run.kept, skipped=len(run.all_skips), conversations=run.found
    )
    # The report reads back what the manifest now says, the counts a rerun would report.
    row = store.input(sha)
    assert row is not None  # finish_input just wrote it
    return replace(
        FileReport.stored(path, row, "ingested"),
        empty=run.empty,
        new_conversations=run.new,
        dropped=run.dropped,
        skips=tuple(run.all_skips[:MAX_LISTED_SKIPS]),
        skip_reasons=dict(Counter(_reason_class(s.reason) for s in run.all_skips)),
        warnings=_warnings(form.name, run),
    )


def _warnings(fmt: str, run: _Run) -> tuple[str, ...]:
    """A file read without error that gave no conversation says so, with its counts."""
    if run.found:
        return ()
    return (
        f"read as {fmt} but no conversation found: {run.records} records, {run.kept} kept, "
        f"{len(run.all_skips)} skipped, {run.empty} empty",
    )


@dataclass
class _Run:
    """Mutable bookkeeping of one file's ingest (local to :func:`ingest_file`)."""

    path: str
    form: Format
    sha: str
    store: Store
    transform: Transform | None
    records: int = 0
    kept: int = 0
    found: int = 0
    empty: int = 0
    new: int = 0
    dropped: int = 0
    pending: list[Conversation] = field(default_factory=list)
    new_skips: list[Skip] = field(default_factory=list)
    all_skips: list[Skip] = field(default_factory=list)

    def add(self, item: Record, key: bytes, *, strict: bool) -> None:
        self.records += 1
        try:
            found = self.form.convert(item.value)
        except RecordError as e:
            self.skip(e.located(path=self.path, record=item.number, line=item.line), strict=strict)
            return
        except (ValidationError, TypeError, ValueError, AttributeError, KeyError) as e:
            reason = f"malformed record ({type(e).__name__}: {_first_line(str(e))})"
            self.skip(RecordError(reason, record=item.number, line=item.line), strict=strict)
            return
        self.kept += 1
        if not found:
            self.empty += 1
        for f in found:
            self.found += 1
            source_id = pseudonym(f.source_id, key) if f.source_id is not None else None
            provenance = Provenance(
                source_format=self.form.name,
                source_file=self.path,
                record=item.number,
                source_id=source_id,
                metadata=f.metadata,
            )
            self.pending.append(f.conversation.model_copy(update={"provenance": provenance}))

    def skip(self, error: RecordError, *, strict: bool) -> None:
        if not isinstance(error, RecordError):  # pragma: no cover - typing guard
            raise error
        if error.record is not None and error.record > self.records:
            self.records += 1  # a record the reader could not even parse
        located = RecordError(error.reason, path=self.path, record=error.record, line=error.line)
        if strict:
            raise located
        s = Skip(record=error.record or 0, line=error.line, reason=error.reason)
        self.new_skips.append(s)
        self.all_skips.append(s)

    def flush(self) -> None:
        batch = list(self.pending)
        self.pending.clear()
        if self.transform is not None and batch:
            out = self.transform(batch)
            self.dropped += sum(1 for c in out if c is None)
            batch = [c for c in out if c is not None]
        with self.store.transaction():
            self.new += self.store.add_conversations(self.sha, batch)
            self.store.add_rejects(self.sha, [(s.record, s.line, s.reason) for s in self.new_skips])
        self.new_skips.clear()


def _covers(done: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether an earlier complete ingest with options ``done`` already did what ``wanted`` asks:
    the same options, and a limit at least as large (or none)."""
    rest_done = {k: v for k, v in done.items() if k != "limit"}
    rest_wanted = {k: v for k, v in wanted.items() if k != "limit"}
    if rest_done != rest_wanted:
        return False
    limit_done, limit_wanted = done.get("limit"), wanted.get("limit")
    return limit_done is None or (limit_wanted is not None and limit_done >= limit_wanted)


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else text


def _reason_class(reason: str) -> str:
    """A short class of a skip reason, for counting (the text up to the first detail)."""
    return reason.split(" (")[0].split(";")[0].split(":")[0][:80]
