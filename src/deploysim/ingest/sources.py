"""Streaming access to input files: gzip-aware opening and record iteration.

Records come out one at a time, as values or as :class:`~deploysim.errors.RecordError`, so a bad
record never stops the file and no file is ever held in memory whole.
"""

from __future__ import annotations

import gzip
import json
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import ijson

from deploysim.errors import InputError, RecordError

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True, slots=True)
class Record:
    """One raw record of an input: its 1-based number, line (line formats) and parsed value."""

    number: int
    line: int | None
    value: Any


RecordOrError = Record | RecordError


def magic(path: Path) -> bytes:
    """The first four bytes of a file."""
    with path.open("rb") as f:
        return f.read(4)


@contextmanager
def open_binary(path: Path) -> Iterator[tuple[IO[bytes], Callable[[], int]]]:
    """Open a file for binary reading, decompressing gzip transparently.

    Yields the stream and a function giving how many bytes of the *file on disk* have been read,
    for progress bars.
    """
    raw = path.open("rb")
    try:
        if raw.read(2) == GZIP_MAGIC:
            raw.seek(0)
            with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
                yield cast(IO[bytes], gz), raw.tell
        else:
            raw.seek(0)
            yield raw, raw.tell
    finally:
        raw.close()


def iter_jsonl(stream: IO[bytes]) -> Iterator[RecordOrError]:
    """Each non-blank line of a JSONL stream as a parsed value, or the reason it is bad."""
    number = 0
    for line_no, raw in enumerate(stream, start=1):
        if not raw.strip():
            continue
        number += 1
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            yield RecordError(
                f"invalid UTF-8 at byte {e.start} of the line; re-encode the file as UTF-8",
                record=number,
                line=line_no,
            )
            continue
        try:
            yield Record(number, line_no, json.loads(text))
        except json.JSONDecodeError as e:
            yield RecordError(
                f"invalid JSON ({e.msg} at column {e.colno}); each line must be one JSON value",
                record=number,
                line=line_no,
            )
        except RecursionError:
            yield RecordError("JSON nested too deeply", record=number, line=line_no)


def iter_json_items(
    stream: IO[bytes], prefix: str = "item", *, multiple_values: bool = False
) -> Iterator[RecordOrError]:
    """The items of a JSON array (at ``prefix``), streamed.

    With ``prefix=""`` and ``multiple_values`` each top-level document of the stream is one item
    (one JSON document, or several written one after another as pretty-printing exporters do).

    A file that ends mid-item (a truncated download) yields every whole item and then one
    error describing the broken tail; a syntax error mid-file ends the file the same way,
    since a JSON array cannot be resynchronised reliably.
    """
    number = 0
    try:
        for item in ijson.items(stream, prefix, use_float=True, multiple_values=multiple_values):
            number += 1
            yield Record(number, None, item)
    except ijson.common.IncompleteJSONError as e:
        position = _stream_position(stream)
        truncated = "premature EOF" in str(e) or "Incomplete" in str(e)
        what = (
            "file ends in the middle of this record (truncated)"
            if truncated
            else f"invalid JSON ({str(e).splitlines()[0]})"
        )
        yield RecordError(
            f"{what}; {number} whole records before it were kept"
            + (f"; stopped near byte {position}" if position is not None else ""),
            record=number + 1,
        )
    except (ijson.common.JSONError, UnicodeDecodeError) as e:
        yield RecordError(
            f"invalid JSON ({str(e).splitlines()[0]}); {number} whole records before it were kept",
            record=number + 1,
        )


def iter_layout(stream: IO[bytes], kind: str) -> Iterator[RecordOrError]:
    """The top-level values of a stream in layout ``kind`` (``jsonl``, ``json-array``, else
    one or more JSON documents)."""
    if kind == "jsonl":
        return iter_jsonl(stream)
    if kind == "json-array":
        return iter_json_items(stream)
    return iter_json_items(stream, "", multiple_values=True)


def iter_values(path: Path, kind: str) -> Iterator[RecordOrError]:
    """The top-level values of a file in layout ``kind``, streamed (:func:`iter_layout`)."""
    with open_binary(path) as (stream, _):
        yield from iter_layout(stream, kind)


def _stream_position(stream: IO[bytes]) -> int | None:
    try:
        return stream.tell()
    except (OSError, ValueError):
        return None


def first_jsonl_value(path: Path, *, max_lines: int = 50) -> Any:
    """The first line (of the first ``max_lines``) that parses as a non-empty JSON object or
    array, or ``None``.

    Used by format detection, so that a corrupt first line does not hide a good file, while a
    pretty-printed JSON document (whose lines are fragments) is not mistaken for JSONL.
    """
    with open_binary(path) as (stream, _):
        for i, raw in enumerate(stream):
            if i >= max_lines:
                break
            if not raw.strip():
                continue
            try:
                value = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
                continue
            if isinstance(value, dict | list) and value:
                return value
    return None


def first_json_item(path: Path) -> Any:
    """The first item of a JSON array file, or ``None`` when there is none."""
    with open_binary(path) as (stream, _):
        for record in iter_json_items(stream):
            return record.value if isinstance(record, Record) else None
    return None


def first_char(path: Path) -> str:
    """The first non-whitespace character of a (possibly gzipped) text file, or ``""``."""
    with open_binary(path) as (stream, _):
        while chunk := stream.read(4096):
            stripped = chunk.lstrip(b" \t\r\n\xef\xbb\xbf")
            if stripped:
                return chr(stripped[0])
    return ""


def open_zip(path: Path) -> zipfile.ZipFile:
    """Open a zip archive, with a clear error if it is not one."""
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise InputError(f"{path}: not a readable zip archive ({e})") from e
