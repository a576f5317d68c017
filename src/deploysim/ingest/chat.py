"""Chat messages in the shapes tracing tools store them, and the merging of a trace's calls.

Tracing exports (OTel GenAI, Langfuse, LangSmith, OpenInference) hold the messages each model
call was sent, in whatever shape the instrumented SDK used: OpenAI chat dicts, Anthropic content
blocks, LangChain messages (plain or ``lc`` serialised) or GenAI semconv ``parts`` messages.
:func:`to_messages` reads them all. A trace holds one call per turn, each call's input repeating
the turns before it: :func:`merge_calls` keeps the longest call of each conversation.
"""

from __future__ import annotations

import json
from typing import Any

from deploysim.errors import RecordError
from deploysim.ingest.common import parse_tool_call
from deploysim.ingest.openai import parse_message
from deploysim.ingest.parts import image_url, other_part, simplify, str_field
from deploysim.schema import (
    ContentPart,
    ImagePart,
    JSONValue,
    Message,
    OtherPart,
    ReasoningPart,
    TextPart,
    ToolCall,
)

# LangChain message types (``type`` of a plain dict, class name of an ``lc`` one) -> role.
_LANGCHAIN_ROLES = {
    "human": "user",
    "ai": "assistant",
    "system": "system",
    "tool": "tool",
    "function": "tool",
    "developer": "developer",
    "HumanMessage": "user",
    "AIMessage": "assistant",
    "SystemMessage": "system",
    "ToolMessage": "tool",
    "FunctionMessage": "tool",
    "HumanMessageChunk": "user",
    "AIMessageChunk": "assistant",
    "SystemMessageChunk": "system",
    "ToolMessageChunk": "tool",
}
_ROLE_ALIASES = {"human": "user", "ai": "assistant", "model": "assistant", "function": "tool"}


def maybe_json(value: Any) -> Any:
    """A JSON value stored as a string (span attributes often are), parsed; else as it is."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def to_messages(raw: Any, where: str = "messages") -> list[Message]:
    """A list of chat messages in any shape :mod:`chat` knows (see the module docstring)."""
    raw = maybe_json(raw)
    if isinstance(raw, dict) and isinstance(raw.get("messages"), list):
        raw = raw["messages"]
    if not isinstance(raw, list):
        raise RecordError(f"{where} must be a list of messages, got {type(raw).__name__}")
    # LangChain's batched inputs are a list of message lists: one conversation per call.
    if raw and all(isinstance(m, list) for m in raw):
        raw = raw[0]
    out: list[Message] = []
    for i, m in enumerate(raw):
        out.extend(to_message(m, f"{where} {i}"))
    return out


def to_message(m: Any, where: str) -> list[Message]:
    """One message as one or more :class:`Message` values (Anthropic tool results split off)."""
    if not isinstance(m, dict):
        raise RecordError(f"{where} must be an object")
    if "lc" in m and isinstance(m.get("kwargs"), dict):
        ids = m.get("id")
        kind = ids[-1] if isinstance(ids, list) and ids else m["kwargs"].get("type")
        return [_langchain(m["kwargs"], str(kind), where)]
    if isinstance(m.get("parts"), list):
        return [_semconv(m, where)]
    if "role" not in m and m.get("type") in _LANGCHAIN_ROLES:
        return [_langchain(m, str(m["type"]), where)]
    content = m.get("content")
    if isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") in _ANTHROPIC_BLOCKS for b in content
    ):
        from deploysim.ingest.anthropic import parse_message as anthropic_message

        return anthropic_message(m, where)
    role = m.get("role")
    if isinstance(role, str) and role in _ROLE_ALIASES:
        m = {**m, "role": _ROLE_ALIASES[role]}
    return [parse_message(m, where, legacy_call_id=f"call_{where.replace(' ', '_')}")]


_ANTHROPIC_BLOCKS = frozenset(
    {"tool_use", "tool_result", "thinking", "redacted_thinking", "server_tool_use"}
)


def _langchain(kw: dict[str, Any], kind: str, where: str) -> Message:
    role = _LANGCHAIN_ROLES.get(kind)
    if role is None:
        raise RecordError(f"{where} has unknown LangChain message type {kind!r}")
    content = kw.get("content")
    text_or_parts: str | tuple[ContentPart, ...]
    if isinstance(content, list):
        text_or_parts = tuple(_generic_part(p) for p in content)
    else:
        text_or_parts = "" if content is None else str(content)
    calls: list[ToolCall] = []
    for j, c in enumerate(kw.get("tool_calls") or []):
        if isinstance(c, dict) and "function" not in c:
            calls.append(
                parse_tool_call(str(c.get("id") or f"call_{j}"), c.get("name"), c.get("args"))
            )
    extra = kw.get("additional_kwargs")
    if not calls and isinstance(extra, dict):  # older LangChain: OpenAI calls kept raw here
        for j, c in enumerate(extra.get("tool_calls") or []):
            fn = c.get("function") if isinstance(c, dict) else None
            if isinstance(fn, dict):
                call_id = str(c.get("id") or f"call_{j}")
                calls.append(parse_tool_call(call_id, fn.get("name"), fn.get("arguments")))
    is_tool = role == "tool"
    name = kw.get("name") if isinstance(kw.get("name"), str) else None
    status = kw.get("status")
    return Message(
        role=role,
        content=text_or_parts,
        tool_calls=tuple(calls),
        tool_call_id=str(kw["tool_call_id"]) if is_tool and kw.get("tool_call_id") else None,
        function=name if is_tool else None,
        name=None if is_tool else name,
        error="error" if is_tool and status == "error" else None,
        id=str(kw["id"]) if kw.get("id") is not None else None,
    )


def _semconv(m: dict[str, Any], where: str) -> Message:
    """A GenAI semconv message: ``{role, parts[], name?, finish_reason?}``."""
    role = m.get("role")
    role = _ROLE_ALIASES.get(role, role) if isinstance(role, str) else role
    if role not in ("system", "developer", "user", "assistant", "tool"):
        raise RecordError(f"{where} has unknown role {role!r}")
    parts: list[ContentPart] = []
    calls: list[ToolCall] = []
    tool_call_id: str | None = None
    for k, p in enumerate(m["parts"]):
        if not isinstance(p, dict):
            raise RecordError(f"{where} part {k} must be an object")
        kind = p.get("type")
        if kind == "text":
            parts.append(TextPart(text=str(p.get("content", ""))))
        elif kind == "reasoning":
            parts.append(ReasoningPart(reasoning=str(p.get("content", ""))))
        elif kind == "tool_call":
            call_id = str(p.get("id") or f"call_{len(calls)}")
            calls.append(parse_tool_call(call_id, p.get("name"), p.get("arguments"), where))
        elif kind == "tool_call_response":
            tool_call_id = str(p["id"]) if p.get("id") is not None else None
            response = p.get("response")
            text = response if isinstance(response, str) else json.dumps(response)
            parts.append(TextPart(text=text))
        else:
            parts.append(_generic_part(p))
    if role == "tool" or (tool_call_id is not None and not calls):
        role = "tool"
    meta: dict[str, JSONValue] = {}
    if m.get("finish_reason") is not None:
        meta["finish_reason"] = m["finish_reason"]
    return Message(
        role=role,
        content=simplify(parts),
        tool_calls=tuple(calls),
        tool_call_id=tool_call_id if role == "tool" else None,
        name=m.get("name") if isinstance(m.get("name"), str) and role != "tool" else None,
        metadata=meta,
    )


def _generic_part(p: Any) -> ContentPart:
    if isinstance(p, str):
        return TextPart(text=p)
    if not isinstance(p, dict):
        return OtherPart(kind="unknown", data={"value": p})
    kind = str(p.get("type", "unknown"))
    text = str_field(p, "text")
    if kind in ("text", "input_text", "output_text") and text is not None:
        return TextPart(text=text)
    url = image_url(p) if kind == "image_url" else None
    return other_part(kind, p) if url is None else ImagePart(image=url)


def _key(m: Message) -> tuple[Any, ...]:
    """What makes two logged messages the same turn, whichever call logged them: role, text and
    tool calls (not ids, timestamps or finish reasons, which only one of the calls records)."""
    calls = tuple((c.function, json.dumps(c.arguments, sort_keys=True)) for c in m.tool_calls)
    return (m.role, m.text, calls, m.tool_call_id)


def merge_calls(calls: list[list[Message]]) -> list[list[Message]]:
    """The conversations behind a trace's model calls (in call order).

    A call whose messages extend an earlier conversation replaces it; a call that repeats the
    start of one adds nothing; any other call starts a conversation of its own (a sub-agent,
    or an unrelated request in the same trace).
    """
    convs: list[tuple[list[tuple[Any, ...]], list[Message]]] = []
    for messages in calls:
        if not messages:
            continue
        keys = [_key(m) for m in messages]
        for i, (seen, _) in enumerate(convs):
            if keys[: len(seen)] == seen:
                convs[i] = (keys, messages)
                break
            if seen[: len(keys)] == keys:
                break
        else:
            convs.append((keys, messages))
    return [messages for _, messages in convs]
