"""OpenInference spans (Arize Phoenix and the OpenInference instrumentations).

Structure from the OpenInference spec (``Arize-ai/openinference`` ``spec/semantic_conventions.md``
and ``spec/llm_spans.md``): ``openinference.span.kind = LLM`` spans carry
``llm.input_messages.{i}.message.role|content|name|tool_call_id``,
``...message.contents.{k}.message_content.type|text|image.image.url``,
``...message.tool_calls.{j}.tool_call.id|function.name|function.arguments`` and the same under
``llm.output_messages``; ``llm.tools.{i}.tool.json_schema`` holds each tool as JSON;
``llm.model_name`` the model. Phoenix's exports may nest these (``{"llm": {"input_messages":
[{"message": {...}}]}}``), which :func:`~deploysim.ingest.spans.flatten` spells out.

Spans are grouped by ``session.id``, else by trace; within a group the LLM calls are merged
into conversations as for OTel GenAI. ``user.id`` is never read.
"""

from __future__ import annotations

from typing import Any

from deploysim.errors import RecordError
from deploysim.ingest.chat import maybe_json, merge_calls, to_messages
from deploysim.ingest.common import Found
from deploysim.ingest.openai import parse_tools
from deploysim.ingest.spans import Span, flatten, group_of, indexed, lookup, span_reader
from deploysim.schema import Conversation, JSONValue, Message, ToolDef


def is_llm_span(span: Span) -> bool:
    """Whether a span is an OpenInference LLM call with messages."""
    if lookup(span.attributes, "openinference.span.kind") != "LLM":
        return False
    flat = flatten(span.attributes)
    return any(k.startswith(("llm.input_messages.", "llm.output_messages.")) for k in flat)


read_records = span_reader(is_llm_span, "session.id", "session")
"""One record per session (else trace) of a span file."""


def convert(value: Any) -> list[Found]:
    """The conversations of one group of LLM spans."""
    value = group_of(value)
    calls: list[list[Message]] = []
    tools: tuple[ToolDef, ...] = ()
    model: JSONValue = None
    for span in value.spans:
        flat = flatten(span.attributes)
        raw = [_message(m) for m in indexed(flat, "llm.input_messages")]
        raw += [_message(m) for m in indexed(flat, "llm.output_messages")]
        try:
            calls.append(to_messages(raw, f"span {span.span_id or span.name} message"))
        except RecordError as e:
            raise RecordError(e.reason) from e
        schemas = [maybe_json(t.get("tool.json_schema")) for t in indexed(flat, "llm.tools")]
        tools = parse_tools([s for s in schemas if isinstance(s, dict)]) or tools
        model = flat.get("llm.model_name") or model
    meta: dict[str, JSONValue] = {"spans": len(value.spans), "model": model}
    return [
        Found(Conversation(messages=tuple(messages), tools=tools), value.key, meta)
        for messages in merge_calls(calls)
    ]


def _message(m: dict[str, Any]) -> dict[str, Any]:
    """One ``llm.*_messages.{i}`` group as an OpenAI chat message."""
    contents = [
        {"type": "text", "text": c.get("message_content.text", "")}
        if c.get("message_content.type", "text") == "text"
        else {"type": "image_url", "image_url": {"url": c.get("message_content.image.image.url")}}
        for c in indexed(m, "message.contents")
    ]
    out: dict[str, Any] = {
        "role": m.get("message.role", "user"),
        "content": contents or m.get("message.content"),
    }
    calls = [
        {
            "id": c.get("tool_call.id") or f"call_{j}",
            "type": "function",
            "function": {
                "name": c.get("tool_call.function.name"),
                "arguments": c.get("tool_call.function.arguments", "{}"),
            },
        }
        for j, c in enumerate(indexed(m, "message.tool_calls"))
    ]
    if calls:
        out["tool_calls"] = calls
    if m.get("message.tool_call_id"):
        out["tool_call_id"] = m["message.tool_call_id"]
    if m.get("message.name"):
        out["name"] = m["message.name"]
    return out
