"""The registry of input formats and format auto-detection."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ijson

from deploysim.errors import InputError
from deploysim.ingest import hh_rlhf, inspect, oasst, openai, sharegpt, tau_bench
from deploysim.ingest.common import Found
from deploysim.ingest.sources import (
    ZIP_MAGIC,
    RecordOrError,
    first_char,
    first_json_item,
    first_jsonl_value,
    iter_json_items,
    iter_jsonl,
    magic,
    open_binary,
)

Converter = Callable[[Any], list[Found]]


@dataclass(frozen=True, slots=True)
class Format:
    """An input format: its name, how its records are laid out, and its record converter."""

    name: str
    description: str
    convert: Converter


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "openai", "OpenAI chat JSONL ({messages, tools} or bare message lists)", openai.convert
        ),
        Format(
            "sharegpt",
            "ShareGPT ({conversations: [{from, value}]}), JSON array or JSONL",
            sharegpt.convert,
        ),
        Format("hh-rlhf", "Anthropic HH-RLHF ({chosen, rejected} transcripts)", hh_rlhf.convert),
        Format("oasst", "OpenAssistant message trees ({message_tree_id, prompt})", oasst.convert),
        Format(
            "tau-bench",
            "tau-bench trajectories ([{task_id, trial, reward, info, traj}])",
            tau_bench.convert,
        ),
        Format("inspect", "Inspect eval logs (.eval zip or .json)", inspect.convert),
    )
}


@dataclass(frozen=True, slots=True)
class Layout:
    """How a file's records are laid out: ``jsonl``, ``json-array`` or ``inspect``."""

    kind: str


def layout_of(path: Path, forced: str | None = None) -> Layout:
    """Work out whether a file is a zip (Inspect .eval), a JSON array, JSONL or one document.

    With a ``forced`` format other than ``inspect`` the file is JSONL unless it is an array.
    """
    head = magic(path)
    if head.startswith(ZIP_MAGIC) or forced == "inspect":
        return Layout("inspect")
    c = first_char(path)
    if c == "[":
        # JSONL of bare message lists also starts with '[': its first line is a message list.
        first = first_jsonl_value(path, max_lines=1)
        is_messages = isinstance(first, list) and isinstance(first[0], dict) and "role" in first[0]
        return Layout("jsonl" if is_messages else "json-array")
    if forced is not None:
        return Layout("jsonl")
    if c == "{":
        # JSONL when a line on its own parses; otherwise one JSON document (an Inspect log).
        return Layout("jsonl") if first_jsonl_value(path) is not None else Layout("inspect")
    if c == "":
        raise InputError(f"{path}: the file is empty; nothing to ingest")
    raise InputError(
        f"{path}: not a JSON, JSONL or Inspect log (starts with {c!r}); "
        "pass only log files, or use --format to name the format"
    )


def detect(path: Path) -> tuple[Format, Layout]:
    """The format and layout of a file, from its first readable record."""
    layout = layout_of(path)
    if layout.kind == "inspect":
        if not magic(path).startswith(ZIP_MAGIC) and not _has_top_level_key(
            path, ("eval", "samples")
        ):
            raise InputError(
                f"{path}: one JSON document, but not an Inspect log (no 'eval' or 'samples' "
                f"key); deploysim reads {', '.join(FORMATS)}: use --format if it is one of them"
            )
        return FORMATS["inspect"], layout
    sample = first_json_item(path) if layout.kind == "json-array" else first_jsonl_value(path)
    name = _guess(sample)
    if name is None:
        raise InputError(
            f"{path}: cannot tell the log format from its first record; "
            f"use --format with one of: {', '.join(FORMATS)}"
        )
    return FORMATS[name], layout


def _has_top_level_key(path: Path, keys: tuple[str, ...]) -> bool:
    """Whether a JSON document has one of ``keys`` at its top level (streamed)."""
    with open_binary(path) as (stream, _), contextlib.suppress(ijson.common.JSONError):
        for prefix, event, value in ijson.parse(stream):
            if prefix == "" and event == "map_key" and value in keys:
                return True
    return False


def _guess(sample: Any) -> str | None:
    if isinstance(sample, list):
        return "openai" if sample and isinstance(sample[0], dict) and "role" in sample[0] else None
    if not isinstance(sample, dict):
        return None
    keys = set(sample)
    if "traj" in keys:
        return "tau-bench"
    if "conversations" in keys:
        return "sharegpt"
    if "chosen" in keys or "transcript" in keys:
        return "hh-rlhf"
    if "message_tree_id" in keys or ("prompt" in keys and isinstance(sample.get("prompt"), dict)):
        return "oasst"
    if "messages" in keys:
        return "openai"
    return None


@contextmanager
def records(
    path: Path, layout: Layout
) -> Iterator[tuple[Iterator[RecordOrError], Callable[[], int]]]:
    """The records of a file and a function giving bytes read so far (for progress)."""
    if layout.kind == "inspect":
        yield inspect.read_records(path), lambda: 0
        return
    with open_binary(path) as (stream, position):
        it = iter_jsonl(stream) if layout.kind == "jsonl" else iter_json_items(stream)
        yield it, position
