"""OpenTelemetry GenAI spans: a trace's chat spans assembled into conversations.

Spans are grouped by ``gen_ai.conversation.id``, else by trace id; within a group each model
call's messages (its input, then its output) are merged into conversations
(:func:`~deploysim.ingest.chat.merge_calls`). Content is read from, in order:

- the current layout (semantic-conventions ``docs/gen-ai/gen-ai-spans.md``,
  ``gen-ai-input-messages.json``): ``gen_ai.system_instructions``, ``gen_ai.input.messages``,
  ``gen_ai.output.messages`` (``{role, parts[], finish_reason}``), as span attributes or on the
  ``gen_ai.client.inference.operation.details`` event (as opentelemetry-python-contrib's
  ``opentelemetry-instrumentation-openai-v2`` and Logfire emit them);
- the older indexed layout of OpenLLMetry (traceloop ``opentelemetry-semantic-conventions-ai``):
  ``gen_ai.prompt.{i}.role|content|tool_call_id``, ``gen_ai.completion.{i}.role|content|
  finish_reason``, ``gen_ai.completion.{i}.tool_calls.{j}.id|name|arguments``, tools in
  ``llm.request.functions.{i}.name|description|parameters``;
- the deprecated ``gen_ai.content.prompt`` / ``gen_ai.content.completion`` span events, whose
  ``gen_ai.prompt`` / ``gen_ai.completion`` attributes hold OpenAI chat messages as JSON.

Tool-execution and embedding spans carry no conversation and are not kept.
"""

from __future__ import annotations

from typing import Any

from deploysim.errors import RecordError
from deploysim.ingest.chat import maybe_json, merge_calls, to_messages
from deploysim.ingest.common import Found
from deploysim.ingest.openai import parse_tools
from deploysim.ingest.spans import Span, flatten, group_of, indexed, lookup, span_reader
from deploysim.schema import Conversation, JSONValue, Message, ToolDef

DETAILS_EVENT = "gen_ai.client.inference.operation.details"
_SKIP_OPERATIONS = frozenset({"execute_tool", "embeddings", "create_agent"})
_AGENT_OPERATIONS = frozenset({"invoke_agent"})


def has_content(span: Span) -> bool:
    """Whether a span carries GenAI conversation content in any layout this reader knows."""
    if lookup(span.attributes, "gen_ai.operation.name") in _SKIP_OPERATIONS:
        return False
    a = span.attributes
    if lookup(a, "gen_ai.input.messages") is not None or lookup(a, "gen_ai.output.messages"):
        return True
    if any(k.startswith(("gen_ai.prompt.", "gen_ai.completion.")) for k in flatten(a)):
        return True
    return any(
        name in (DETAILS_EVENT, "gen_ai.content.prompt", "gen_ai.content.completion")
        for name, _ in span.events
    )


read_records = span_reader(has_content, "gen_ai.conversation.id", "conversation")
"""One record per conversation id (else trace) of a span file."""


def convert(value: Any) -> list[Found]:
    """The conversations of one group of spans."""
    value = group_of(value)
    spans = [
        s
        for s in value.spans
        if lookup(s.attributes, "gen_ai.operation.name") not in (_AGENT_OPERATIONS)
    ] or value.spans  # agent spans repeat their chat spans; used only when alone
    calls: list[list[Message]] = []
    tools: tuple[ToolDef, ...] = ()
    model: JSONValue = None
    for span in spans:
        try:
            calls.append(span_messages(span))
        except RecordError as e:
            raise RecordError(f"span {span.span_id or span.name}: {e.reason}") from e
        tools = span_tools(span) or tools
        model = lookup(span.attributes, "gen_ai.request.model") or model
    meta: dict[str, JSONValue] = {"spans": len(spans), "model": model}
    return [
        Found(Conversation(messages=tuple(messages), tools=tools), value.key, meta)
        for messages in merge_calls(calls)
    ]


def span_messages(span: Span) -> list[Message]:
    """The messages of one model call: system instructions, input, output."""
    a = span.attributes
    source: Any = a
    if lookup(a, "gen_ai.input.messages") is None and lookup(a, "gen_ai.output.messages") is None:
        for name, attrs in span.events:
            if name == DETAILS_EVENT:
                source = attrs
                break
    inp, out = lookup(source, "gen_ai.input.messages"), lookup(source, "gen_ai.output.messages")
    if inp is not None or out is not None:
        messages: list[Message] = []
        system = maybe_json(lookup(source, "gen_ai.system_instructions"))
        if system:
            parts = system if isinstance(system, list) else [{"type": "text", "content": system}]
            messages.extend(to_messages([{"role": "system", "parts": parts}]))
        messages.extend(to_messages(inp if inp is not None else [], "gen_ai.input.messages"))
        messages.extend(to_messages(out if out is not None else [], "gen_ai.output.messages"))
        return messages
    flat = flatten(a)
    if any(k.startswith(("gen_ai.prompt.", "gen_ai.completion.")) for k in flat):
        raw = [_indexed_message(m) for m in indexed(flat, "gen_ai.prompt")]
        raw += [_indexed_message(m, "assistant") for m in indexed(flat, "gen_ai.completion")]
        return to_messages(raw, "gen_ai.prompt")
    messages = []
    for name, attrs in span.events:
        if name == "gen_ai.content.prompt":
            messages.extend(to_messages(attrs.get("gen_ai.prompt", []), "gen_ai.prompt"))
        elif name == "gen_ai.content.completion":
            completion = maybe_json(attrs.get("gen_ai.completion", []))
            if isinstance(completion, dict):
                completion = [completion]
            messages.extend(to_messages(completion, "gen_ai.completion"))
    return messages


def _indexed_message(m: dict[str, Any], default_role: str = "user") -> dict[str, Any]:
    """An OpenLLMetry ``gen_ai.prompt.{i}.*`` group as an OpenAI chat message."""
    content = maybe_json(m.get("content"))
    calls = [
        {
            "id": c.get("id") or f"call_{j}",
            "type": "function",
            "function": {"name": c.get("name"), "arguments": c.get("arguments", "{}")},
        }
        for j, c in enumerate(indexed(m, "tool_calls"))
    ]
    if m.get("function_call.name"):
        calls.append(
            {
                "id": "call_0",
                "type": "function",
                "function": {
                    "name": m["function_call.name"],
                    "arguments": m.get("function_call.arguments", "{}"),
                },
            }
        )
    out: dict[str, Any] = {"role": m.get("role") or default_role, "content": content}
    if calls:
        out["tool_calls"] = calls
    if m.get("tool_call_id"):
        out["tool_call_id"] = m["tool_call_id"]
    return out


def span_tools(span: Span) -> tuple[ToolDef, ...]:
    """Tools offered to the call: ``gen_ai.tool.definitions`` or OpenLLMetry's functions."""
    defs = maybe_json(lookup(span.attributes, "gen_ai.tool.definitions"))
    if isinstance(defs, list):
        return parse_tools(defs)
    functions = indexed(flatten(span.attributes), "llm.request.functions")
    if functions:
        return parse_tools(
            [{**f, "parameters": maybe_json(f.get("parameters"))} for f in functions]
        )
    return ()
