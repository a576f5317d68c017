"""Trace spans from OpenTelemetry exports, normalised, and grouped into conversations.

Accepted layouts, one span or export per JSONL line, a JSON array, or JSON documents:

- OTLP JSON (the collector's file exporter, ``otlp-json``): ``{"resourceSpans": [{"resource",
  "scopeSpans": [{"scope", "spans": [{traceId, spanId, parentSpanId, name, startTimeUnixNano,
  attributes: [{key, value: AnyValue}], events: [{name, timeUnixNano, attributes}]}]}]}]}``
  (opentelemetry-proto ``trace/v1/trace.proto``, JSON mapping);
- the SDK's ``span.to_json()`` (``ConsoleSpanExporter``, possibly several pretty-printed documents
  one after another): ``{name, context: {trace_id, span_id}, parent_id, start_time,
  attributes: {...}, events: [{name, timestamp, attributes}]}``;
- Arize Phoenix span exports, whose attributes may be nested
  (``{"llm": {"input_messages": [...]}}``) rather than dotted
  (``llm.input_messages.0.message.role``): :func:`lookup` and :func:`flatten` read both.

A conversation's turns are spread over spans (one model call each), so a file's spans are held
until its end and grouped by a key (conversation id, session id or trace id). Only spans a
reader keeps are held, and only their attributes and events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploysim.errors import RecordError
from deploysim.ingest.sources import Record, RecordOrError, iter_values


@dataclass(frozen=True, slots=True)
class Span:
    """One span: ids, start time (sortable), attributes (as exported) and events."""

    trace_id: str
    span_id: str
    name: str
    start: str
    attributes: dict[str, Any]
    events: tuple[tuple[str, dict[str, Any]], ...] = ()
    parent_id: str | None = None


@dataclass(frozen=True, slots=True)
class Group:
    """The calls of one conversation key, in start order: one record of a grouping format
    (spans, or a tracing tool's exported objects)."""

    key: str
    spans: list[Any] = field(default_factory=list)


def raw_spans(value: Any) -> Iterator[Any]:
    """The raw spans inside one exported value (an OTLP export, a list, a page, or a span)."""
    if isinstance(value, list):
        for v in value:
            yield from raw_spans(v)
    elif isinstance(value, dict) and isinstance(value.get("resourceSpans"), list):
        for rs in value["resourceSpans"]:
            scopes = (
                (rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or [])
                if (isinstance(rs, dict))
                else []
            )
            for scope in scopes:
                yield from (scope.get("spans") or []) if isinstance(scope, dict) else []
    elif isinstance(value, dict) and isinstance(value.get("data") or value.get("spans"), list):
        yield from raw_spans(value.get("data") or value.get("spans"))
    else:
        yield value


def any_value(v: Any) -> Any:
    """An OTLP ``AnyValue`` (``{"stringValue": ...}`` and so on) as a plain value."""
    if not isinstance(v, dict) or len(v) != 1:
        return v
    ((kind, inner),) = v.items()
    if kind == "intValue":
        return int(inner)
    if kind == "arrayValue":
        return [any_value(x) for x in (inner or {}).get("values", [])]
    if kind == "kvlistValue":
        return {kv["key"]: any_value(kv.get("value")) for kv in (inner or {}).get("values", [])}
    if kind in ("stringValue", "boolValue", "doubleValue", "bytesValue"):
        return inner
    return v


def _attributes(raw: Any) -> dict[str, Any]:
    if isinstance(raw, list):  # OTLP: [{key, value: AnyValue}]
        return {a["key"]: any_value(a.get("value")) for a in raw if isinstance(a, dict)}
    return dict(raw) if isinstance(raw, dict) else {}


def to_span(raw: Any) -> Span:
    """A raw span in any accepted layout as a :class:`Span`."""
    if not isinstance(raw, dict):
        raise RecordError("a span must be a JSON object")
    context: dict[str, Any] = raw["context"] if isinstance(raw.get("context"), dict) else {}
    trace_id = raw.get("traceId") or context.get("trace_id") or raw.get("trace_id")
    span_id = raw.get("spanId") or context.get("span_id") or raw.get("span_id")
    if not isinstance(trace_id, str) or "attributes" not in raw:
        raise RecordError("not a span (no trace id or no attributes)")
    events = tuple(
        (str(e.get("name", "")), _attributes(e.get("attributes")))
        for e in raw.get("events") or []
        if isinstance(e, dict)
    )
    start = raw.get("startTimeUnixNano") or raw.get("start_time") or ""
    return Span(
        trace_id=trace_id,
        span_id=str(span_id or ""),
        name=str(raw.get("name", "")),
        # Nanosecond counts compare as numbers, ISO times as text: pad counts to one width.
        start=str(start).rjust(24, "0") if str(start).isdigit() else str(start),
        attributes=_attributes(raw.get("attributes")),
        events=events,
        parent_id=raw.get("parentSpanId") or raw.get("parent_id"),
    )


def lookup(attrs: Any, key: str) -> Any:
    """An attribute by its dotted name, whether stored dotted, nested, or partly both."""
    if not isinstance(attrs, dict):
        return None
    if key in attrs:
        return attrs[key]
    for k, v in attrs.items():
        if key.startswith(k + "."):
            rest = key[len(k) + 1 :]
            if isinstance(v, dict):
                found = lookup(v, rest)
            elif isinstance(v, list):
                head, _, tail = rest.partition(".")
                found = (
                    (lookup(v[int(head)], tail) if tail else v[int(head)])
                    if head.isdigit() and int(head) < len(v)
                    else None
                )
            else:
                found = None
            if found is not None:
                return found
    return None


def flatten(attrs: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Attributes with nested objects and lists spelled out as dotted keys (``a.0.b``)."""
    out: dict[str, Any] = {}
    for k, v in attrs.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, name + "."))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            out.update(flatten({str(i): x for i, x in enumerate(v)}, name + "."))
        else:
            out[name] = v
    return out


def indexed(flat: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """``prefix.{i}.rest`` keys as a list (by ``i``) of ``{rest: value}``."""
    by_index: dict[int, dict[str, Any]] = {}
    start = prefix + "."
    for k, v in flat.items():
        if not k.startswith(start):
            continue
        head, _, rest = k[len(start) :].partition(".")
        if head.isdigit() and rest:
            by_index.setdefault(int(head), {})[rest] = v
    return [by_index[i] for i in sorted(by_index)]


def read_grouped(
    path: Path,
    kind: str,
    take: Callable[[Any], Iterator[RecordError]],
    groups: Callable[[], Iterable[Group]],
) -> Iterator[RecordOrError]:
    """The records of a grouping format: ``take`` holds what it keeps of each top-level value
    (and names what it cannot read); once the file is read, ``groups`` makes one record each.

    Records are numbered as met, the value's errors first, so that an error names its place.
    """
    number = 0
    for item in iter_values(path, kind):
        errors = [item] if isinstance(item, RecordError) else take(item.value)
        for e in errors:
            number += 1
            yield RecordError(e.reason, record=number, line=item.line)
    for group in groups():
        number += 1
        yield Record(number, None, group)


def read_groups(
    path: Path, kind: str, keep: Callable[[Span], bool], key: Callable[[Span], str]
) -> Iterator[RecordOrError]:
    """A span file's kept spans grouped by ``key``: one :class:`Record` per group (first-seen
    order, spans by start time), after one error per value that holds no readable span."""
    groups: dict[str, Group] = {}

    def take(value: Any) -> Iterator[RecordError]:
        for raw in raw_spans(value):
            try:
                span = to_span(raw)
            except RecordError as e:
                yield e
                continue
            if keep(span):
                groups.setdefault(key(span), Group(key(span))).spans.append(span)

    def ordered() -> Iterator[Group]:
        for group in groups.values():
            group.spans.sort(key=lambda s: s.start)
            yield group

    return read_grouped(path, kind, take, ordered)


def span_reader(
    keep: Callable[[Span], bool], attribute: str, label: str
) -> Callable[[Path, str], Iterator[RecordOrError]]:
    """A span format's record reader: the spans it ``keep``s, grouped by the span attribute
    that names their conversation (key ``label:value``), else by their trace."""

    def key(span: Span) -> str:
        value = lookup(span.attributes, attribute)
        return f"{label}:{value}" if value else f"trace:{span.trace_id}"

    return lambda path, kind: read_groups(path, kind, keep, key)


def group_of(value: Any) -> Group:
    """A grouping format's record, checked to be the :class:`Group` its reader made."""
    if not isinstance(value, Group):
        raise RecordError("not a group of calls")
    return value
