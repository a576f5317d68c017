"""The registry of input formats, record layouts and reading records.

Detection is in :mod:`deploysim.ingest.detection`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploysim.errors import InputError
from deploysim.ingest import (
    agents,
    anthropic,
    hh_rlhf,
    inspect,
    oasst,
    openai,
    openinference,
    otel_genai,
    responses,
    sharegpt,
    tau_bench,
    traces,
)
from deploysim.ingest.common import Found
from deploysim.ingest.sources import (
    ZIP_MAGIC,
    Record,
    RecordOrError,
    first_char,
    first_jsonl_value,
    iter_json_items,
    iter_layout,
    iter_values,
    magic,
    open_binary,
)

Converter = Callable[[Any], list[Found]]
Reader = Callable[[Path, str], Iterator[RecordOrError]]


@dataclass(frozen=True, slots=True)
class Format:
    """An input format: its name, its record converter, and its own record reader when records
    are not simply a file's lines, array items or documents (span formats group a file's spans
    into one record per conversation)."""

    name: str
    description: str
    convert: Converter
    read: Reader | None = None


def _whole_list(path: Path, kind: str) -> Iterator[RecordOrError]:
    """A JSON array that is one record (OpenHands' exported event list), else records as usual."""
    if kind != "json-array":
        yield from iter_values(path, kind)
        return
    items: list[Any] = []
    with open_binary(path) as (stream, _):
        for item in iter_json_items(stream):
            if not isinstance(item, Record):
                yield item
                return
            items.append(item.value)
    yield Record(1, None, items)


def _inspect(path: Path, kind: str) -> Iterator[RecordOrError]:
    return inspect.read_records(path)


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "openai", "OpenAI chat JSONL ({messages, tools} or bare message lists)", openai.convert
        ),
        Format(
            "openai-responses",
            "OpenAI Responses API items ({instructions, input[], output[]})",
            responses.convert,
        ),
        Format(
            "anthropic",
            "Anthropic Messages requests (+ responses): tool_use/tool_result/thinking blocks",
            anthropic.convert,
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
        Format("inspect", "Inspect eval logs (.eval zip or .json)", inspect.convert, _inspect),
        Format(
            "otel-genai",
            "OpenTelemetry GenAI spans (OTLP JSON or SDK JSON), one conversation per id/trace",
            otel_genai.convert,
            otel_genai.read_records,
        ),
        Format(
            "openinference",
            "OpenInference / Arize Phoenix LLM spans (llm.input_messages.N.message.*)",
            openinference.convert,
            openinference.read_records,
        ),
        Format(
            "langfuse",
            "Langfuse traces + observations export (GENERATION input/output)",
            traces.convert_langfuse,
            traces.read_langfuse,
        ),
        Format(
            "langsmith",
            "LangSmith runs export (llm runs' inputs.messages / outputs)",
            traces.convert_langsmith,
            traces.read_langsmith,
        ),
        Format("swe-agent", "SWE-agent trajectories (.traj: history[])", agents.swe_agent),
        Format(
            "openhands",
            "OpenHands runs (history events with tool_call_metadata) or event lists",
            agents.openhands,
            _whole_list,
        ),
        Format("atif", "Harbor ATIF trajectories ({schema_version, steps[]})", agents.atif),
        Format(
            "toolbench",
            "ToolBench answer files (answer_generation.train_messages)",
            agents.toolbench,
        ),
    )
}


@dataclass(frozen=True, slots=True)
class Layout:
    """How a file's records are laid out: ``jsonl``, ``json-array``, ``document`` (one or more
    JSON documents) or ``zip``; ``reader`` names the format whose own reader makes records."""

    kind: str
    reader: str | None = None


def layout_of(path: Path, forced: str | None = None) -> Layout:
    """Work out whether a file is a zip (Inspect .eval), a JSON array, JSONL or JSON documents.

    With a ``forced`` format, its own reader (if it has one) makes the records.
    """
    reader = forced if forced is not None and FORMATS[forced].read is not None else None
    if magic(path).startswith(ZIP_MAGIC):
        return Layout("zip", "inspect")
    if forced == "inspect":
        return Layout("document", "inspect")
    c = first_char(path)
    if c == "[":
        # JSONL of bare message lists also starts with '[': its first line is a message list.
        first = first_jsonl_value(path, max_lines=1)
        is_messages = (
            isinstance(first, list)
            and bool(first)
            and isinstance(first[0], dict)
            and "role" in first[0]
        )
        return Layout("jsonl" if is_messages else "json-array", reader)
    if c == "{":
        # JSONL when the name says so or a line on its own parses; otherwise JSON documents
        # (pretty-printed). The name matters when every line is corrupt: each is then its own
        # bad record, not one unreadable document.
        named = path.name.lower().removesuffix(".gz").endswith((".jsonl", ".ndjson"))
        kind = "jsonl" if named or first_jsonl_value(path) is not None else "document"
        return Layout(kind, reader)
    if c == "":
        raise InputError(f"{path}: the file is empty; nothing to ingest")
    if forced is not None:  # a named line format: bad lines are reported record by record
        return Layout("jsonl", reader)
    raise InputError(
        f"{path}: not a JSON, JSONL or Inspect log (starts with {c!r}); "
        "pass only log files, or use --format to name the format"
    )


@contextmanager
def records(
    path: Path, layout: Layout
) -> Iterator[tuple[Iterator[RecordOrError], Callable[[], int]]]:
    """The records of a file and a function giving bytes read so far (for progress)."""
    read = FORMATS[layout.reader].read if layout.reader is not None else None
    if read is not None:
        yield read(path, layout.kind), lambda: 0
        return
    with open_binary(path) as (stream, position):
        yield iter_layout(stream, layout.kind), position


def detect(path: Path) -> tuple[Format, Layout]:
    """The format and layout of a file (see :func:`deploysim.ingest.detection.detect`)."""
    from deploysim.ingest.detection import detect as _detect

    return _detect(path)
