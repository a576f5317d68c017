"""Inspect eval logs: ``.json`` (one document) and the zipped ``.eval`` archive.

Each sample is one conversation (``samples[].messages``, Inspect's ``ChatMessage`` union). The
tools offered are taken from the sample's last model event. Only score values are kept in the
metadata: explanations can quote user content.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ijson

from deploysim.errors import RecordError
from deploysim.ingest.common import Found, optional, require
from deploysim.ingest.openai import parse_tools
from deploysim.ingest.parts import PartReader, image_part, read_content, reasoning_part, text_part
from deploysim.ingest.sources import Record, RecordOrError, iter_json_items, open_binary, open_zip
from deploysim.schema import (
    ContentPart,
    Conversation,
    JSONValue,
    Message,
    ToolCall,
)

_ROLES = ("system", "user", "assistant", "tool")


def read_records(path: Path) -> Iterator[RecordOrError]:
    """Samples of a ``.eval`` or ``.json`` log, each as ``{"eval": header, "sample": ...}``."""
    if path.suffix == ".eval":
        yield from _read_eval_zip(path)
        return
    header: Any = {}
    # A broken header is not fatal: the samples pass below reports where the file breaks.
    with (
        open_binary(path) as (stream, _),
        contextlib.suppress(ijson.common.JSONError, UnicodeDecodeError),
    ):
        header = next(ijson.items(stream, "eval", use_float=True), {})
    with open_binary(path) as (stream, _):
        for rec in iter_json_items(stream, "samples.item"):
            if isinstance(rec, Record):
                yield Record(rec.number, None, {"eval": header, "sample": rec.value})
            else:
                yield rec


def _read_eval_zip(path: Path) -> Iterator[RecordOrError]:
    with open_zip(path) as z:
        names = z.namelist()
        header: Any = {}
        if "header.json" in names:
            header = json.loads(z.read("header.json")).get("eval", {})
        elif "_journal/start.json" in names:
            header = json.loads(z.read("_journal/start.json")).get("eval", {})
        samples = sorted((n for n in names if n.startswith("samples/")), key=_natural)
        for number, name in enumerate(samples, start=1):
            try:
                sample = json.loads(z.read(name))
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                yield RecordError(f"{name} is not valid JSON ({e})", record=number)
                continue
            yield Record(number, None, {"eval": header, "sample": sample})


def _natural(name: str) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def convert(value: Any) -> list[Found]:
    """One sample (wrapped with its log's ``eval`` header by :func:`read_records`)."""
    sample = require(value, "sample", dict)
    header = value.get("eval") if isinstance(value.get("eval"), dict) else {}
    raw_messages = require(sample, "messages", list, "sample")
    if not raw_messages:
        raise RecordError("sample has no messages")
    messages = tuple(_message(m, f"message {i}") for i, m in enumerate(raw_messages))
    tools: Any = ()
    for event in reversed(sample.get("events") or []):
        if isinstance(event, dict) and event.get("event") == "model" and event.get("tools"):
            tools = parse_tools(event["tools"])
            break
    scores = sample.get("scores") if isinstance(sample.get("scores"), dict) else {}
    meta: dict[str, JSONValue] = {
        "task": header.get("task"),
        "eval_model": header.get("model"),
        "run_id": header.get("run_id"),
        "sample_id": sample.get("id"),
        "epoch": sample.get("epoch"),
        "scores": {k: s.get("value") for k, s in scores.items() if isinstance(s, dict)},
    }
    source_id = (
        f"{header.get('task_id', header.get('task'))}/{sample.get('id')}/{sample.get('epoch')}"
    )
    return [Found(Conversation(messages=messages, tools=tools), source_id, meta)]


def _message(m: Any, where: str) -> Message:
    role = require(m, "role", str, where)
    if role not in _ROLES:
        raise RecordError(f"{where} has unknown role {role!r}")
    calls = tuple(
        _call(c, f"{where} tool call {j}")
        for j, c in enumerate(optional(m, "tool_calls", list, where) or [])
    )
    error = m.get("error")
    if isinstance(error, dict):
        error = f"{error.get('type', 'error')}: {error.get('message', '')}"
    meta: dict[str, JSONValue] = {}
    if isinstance(m.get("source"), str):
        meta["source"] = m["source"]
    return Message(
        role=role,
        content=_content(m.get("content"), where),
        tool_calls=calls,
        tool_call_id=optional(m, "tool_call_id", str, where) if role == "tool" else None,
        function=optional(m, "function", str, where) if role == "tool" else None,
        error=error if isinstance(error, str) else None,
        id=m.get("id") if isinstance(m.get("id"), str) else None,
        model=optional(m, "model", str, where),
        metadata=meta,
    )


def _call(c: Any, where: str) -> ToolCall:
    call_id = require(c, "id", str, where)
    function = require(c, "function", str, where)
    args = c.get("arguments")
    parse_error = c.get("parse_error")
    return ToolCall(
        id=call_id,
        function=function,
        arguments=args,
        parse_error=parse_error if isinstance(parse_error, str) else None,
    )


# Inspect's ``Content`` union.
_READERS: dict[str, PartReader] = {
    "text": text_part,
    "reasoning": reasoning_part,
    "image": lambda p, where: image_part(p, "image"),
}


def _content(raw: Any, where: str) -> str | tuple[ContentPart, ...]:
    return read_content(raw, where, _READERS)
