"""Format auto-detection: from a file's first records (or a document's top-level keys).

Detection looks at up to :data:`SAMPLE` records, so a log whose first records are plain text but
whose later ones use Anthropic blocks is still read as Anthropic. A file no reader understands is
refused with the reason (never "ingested" with nothing in it); known non-log files (benchmark
question sets) are named as such.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import ijson

from deploysim.errors import InputError
from deploysim.ingest import anthropic, responses, traces
from deploysim.ingest.formats import FORMATS, Format, Layout, layout_of
from deploysim.ingest.sources import Record, iter_json_items, iter_jsonl, open_binary
from deploysim.ingest.spans import flatten, raw_spans, to_span

SAMPLE = 20


def detect(path: Path) -> tuple[Format, Layout]:
    """The format and layout of a file, from its first readable records."""
    layout = layout_of(path)
    if layout.kind == "zip":
        return FORMATS["inspect"], layout
    if layout.kind == "document":
        name = _guess_document(path)
    else:
        name = None
        samples = _samples(path, layout.kind)
        for sample in samples:
            name = _guess(sample, path)
            if name is not None:
                break
        if name == "openai" and any(anthropic.looks_like(s) for s in samples):
            name = "anthropic"
        if name is None and samples and layout.kind == "json-array" and _is_event(samples[0]):
            name = "openhands"  # OpenHands' exported trajectory: a bare list of events
    if name is None:
        what = "its first records" if layout.kind != "document" else "its top-level keys"
        raise InputError(
            f"{path}: not ingested: cannot tell the log format from {what}; "
            f"use --format with one of: {', '.join(FORMATS)}"
        )
    form = FORMATS[name]
    return form, Layout(layout.kind, name if form.read is not None else None)


def _samples(path: Path, kind: str) -> list[Any]:
    out: list[Any] = []
    with open_binary(path) as (stream, _):
        items = iter_jsonl(stream) if kind == "jsonl" else iter_json_items(stream)
        for item in items:
            if isinstance(item, Record) and isinstance(item.value, dict | list) and item.value:
                out.append(item.value)
            if len(out) >= SAMPLE:
                break
    return out


def _top_level_keys(path: Path) -> set[str]:
    keys: set[str] = set()
    with open_binary(path) as (stream, _), contextlib.suppress(ijson.common.JSONError):
        for prefix, event, value in ijson.parse(stream, multiple_values=True):
            if prefix == "" and event == "map_key":
                keys.add(value)
            elif prefix == "" and event == "end_map":
                break  # the first document's keys are enough
    return keys


def _first(path: Path, prefix: str) -> Any:
    with open_binary(path) as (stream, _):
        for item in iter_json_items(stream, prefix):
            return item.value if isinstance(item, Record) else None
    return None


def _guess_document(path: Path) -> str | None:
    keys = _top_level_keys(path)
    if keys & {"eval", "samples"}:
        return "inspect"
    if "history" in keys:
        owner = _history_owner(_first(path, "history.item"))
        return owner or ("swe-agent" if "trajectory" in keys else None)
    if "resourceSpans" in keys:
        return _span_format({"resourceSpans": [_first(path, "resourceSpans.item")]})
    if "steps" in keys and keys & {"schema_version", "session_id", "agent"}:
        return "atif"
    if "answer_generation" in keys:
        return "toolbench"
    for list_key in ("data", "runs", "spans"):
        if list_key in keys:
            first = _first(path, f"{list_key}.item")
            return _guess({list_key: [first]} if first is not None else {}, path)
    return None


def _guess(sample: Any, path: Path) -> str | None:
    """The format of one record, or ``None``; raises for known files that are not logs."""
    if isinstance(sample, list):
        if sample and isinstance(sample[0], dict) and "role" in sample[0]:
            return "openai"
        return None
    if not isinstance(sample, dict):
        return None
    keys = set(sample)
    is_bfcl_question = "question" in keys and "function" in keys
    is_bfcl_answer = "id" in keys and len(keys) == 2 and bool(keys & {"ground_truth", "result"})
    if is_bfcl_question or is_bfcl_answer:
        raise InputError(
            f"{path}: not ingested: a BFCL benchmark file (questions, answers or results with "
            "no logged model turns), not a conversation log; ingest the logs of a run instead"
        )
    if "traj" in keys:
        return "tau-bench"
    if "history" in keys and isinstance(sample["history"], list):
        return _history_owner(sample["history"][0] if sample["history"] else None)
    if "steps" in keys and keys & {"schema_version", "session_id", "agent"}:
        return "atif"
    if "answer_generation" in keys:
        return "toolbench"
    if "conversations" in keys:
        return "sharegpt"
    if "chosen" in keys or "transcript" in keys:
        return "hh-rlhf"
    if "message_tree_id" in keys or ("prompt" in keys and isinstance(sample.get("prompt"), dict)):
        return "oasst"
    if traces.is_langsmith(sample):
        return "langsmith"
    if traces.is_langfuse(sample):
        return "langfuse"
    spans = _span_format(sample)
    if spans is not None:
        return spans
    if responses.looks_like(sample):
        return "openai-responses"
    if anthropic.looks_like(sample):
        return "anthropic"
    if "messages" in keys:
        return "openai"
    return None


def _history_owner(first: Any) -> str | None:
    if not isinstance(first, dict):
        return None
    if "role" in first:
        return "swe-agent"
    if "action" in first or "observation" in first:
        return "openhands"
    return None


def _is_event(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and "source" in value
        and ("action" in value or "observation" in value)
    )


def _span_format(value: Any) -> str | None:
    """``openinference`` or ``otel-genai`` for spans (or an export of them), else ``None``."""
    genai = False
    for n, raw in enumerate(raw_spans(value)):
        if n >= 200:
            break
        try:
            span = to_span(raw)
        except Exception:  # not a span: this is not a span file
            return None
        keys = flatten(span.attributes)
        if "openinference.span.kind" in keys or any(k.startswith("llm.input_") for k in keys):
            return "openinference"
        genai = genai or any(k.startswith("gen_ai.") for k in keys)
    return "otel-genai" if genai else None
