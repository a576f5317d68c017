"""OpenAI Chat Completions logs: ``{"messages": [...], "tools": [...]}`` or bare message lists.

Also the writer side (:func:`to_openai_record`), used by ``deploysim export --format openai``, so
that export -> ingest gives the same conversations back. Fields the Chat Completions format has
no place for (reasoning parts with signatures, message ids and metadata, alternative references)
are written as extra keys that this reader understands and other readers ignore.
"""

from __future__ import annotations

import json
from typing import Any

from deploysim.errors import RecordError
from deploysim.ingest.common import (
    Found,
    clean_metadata,
    optional,
    parse_tool_call,
    require,
)
from deploysim.ingest.parts import PartReader, image_url, read_content, text_part
from deploysim.schema import (
    ContentPart,
    Conversation,
    ImagePart,
    JSONValue,
    Message,
    ReasoningPart,
    Reference,
    TextPart,
    ToolCall,
    ToolDef,
)

ROLES = ("system", "developer", "user", "assistant", "tool")
_MESSAGE_KEYS = frozenset(
    {
        "role",
        "content",
        "tool_calls",
        "tool_call_id",
        "name",
        "function_call",
        "reasoning_content",
        "refusal",
        "id",
        "model",
        "timestamp",
        "error",
        "metadata",
    }
)


def convert(value: Any) -> list[Found]:
    """One JSONL record: an object with ``messages`` (and ``tools``), or a bare message list."""
    if isinstance(value, list):
        return [Found(Conversation(messages=parse_messages(value)))]
    messages = require(value, "messages", list)
    tools = parse_tools(optional(value, "tools", list, "record") or [])
    references = tuple(
        _parse_reference(r, i)
        for i, r in enumerate(optional(value, "references", list, "record") or [])
    )
    conv = Conversation(messages=parse_messages(messages), tools=tools, references=references)
    meta = clean_metadata(value, skip=frozenset({"messages", "tools", "references"}))
    exported = meta.get("metadata")
    source_id = meta.get("id") or (
        exported.get("source_id") if isinstance(exported, dict) else None
    )
    return [Found(conv, str(source_id) if source_id is not None else None, meta)]


def parse_messages(raw: list[Any]) -> tuple[Message, ...]:
    """OpenAI chat messages as :class:`Message` values (legacy ``function_call`` included)."""
    if not raw:
        raise RecordError("'messages' is empty")
    messages: list[Message] = []
    last_function_call: str | None = None
    for i, m in enumerate(raw):
        where = f"message {i}"
        msg = parse_message(m, where, legacy_call_id=f"call_{i}")
        if msg.role == "assistant" and msg.tool_calls and isinstance(m.get("function_call"), dict):
            last_function_call = msg.tool_calls[0].id
        if m.get("role") == "function":
            # Legacy function result: answers the preceding function_call.
            msg = msg.model_copy(update={"tool_call_id": last_function_call or f"call_{i}"})
        messages.append(msg)
    return tuple(messages)


def parse_message(m: Any, where: str, *, legacy_call_id: str) -> Message:
    """One OpenAI chat message."""
    role = require(m, "role", str, where)
    if role == "function":
        role = "tool"
    if role not in ROLES:
        raise RecordError(f"{where} has unknown role {role!r}; expected one of {', '.join(ROLES)}")
    content = _parse_content(m.get("content"), where)
    reasoning = optional(m, "reasoning_content", str, where)
    if reasoning:
        parts = (TextPart(text=content),) if isinstance(content, str) and content else ()
        content = (
            ReasoningPart(reasoning=reasoning),
            *(parts if isinstance(content, str) else content),
        )
    calls = tuple(
        _parse_call(c, f"{where} tool call {j}")
        for j, c in enumerate(optional(m, "tool_calls", list, where) or [])
    )
    legacy = optional(m, "function_call", dict, where)
    if legacy is not None:
        calls += (
            parse_tool_call(legacy_call_id, legacy.get("name"), legacy.get("arguments"), where),
        )
    meta: dict[str, JSONValue] = dict(optional(m, "metadata", dict, where) or {})
    refusal = optional(m, "refusal", str, where)
    if refusal:
        meta["refusal"] = refusal
    extra = {k: v for k, v in m.items() if k not in _MESSAGE_KEYS}
    if extra:
        meta.update(clean_metadata(extra))
    name = optional(m, "name", str, where)
    is_tool = role == "tool"
    error = m.get("error")
    return Message(
        role=role,
        content=content,
        tool_calls=calls,
        tool_call_id=optional(m, "tool_call_id", str, where) if is_tool else None,
        function=name if is_tool else None,
        name=None if is_tool else name,
        error=error if isinstance(error, str) else (None if error is None else str(error)),
        id=_str_or_none(m.get("id")),
        model=optional(m, "model", str, where),
        timestamp=_str_or_none(m.get("timestamp")),
        metadata=meta,
    )


def _image(p: dict[str, Any], where: str) -> ImagePart:
    url = image_url(p)
    if url is None:
        raise RecordError(f"{where} has no image_url.url")
    return ImagePart(image=url)


# Chat Completions part types; Responses' text types are accepted too (proxies mix them).
_READERS: dict[str, PartReader] = {
    "text": text_part,
    "input_text": text_part,
    "output_text": text_part,
    "image_url": _image,
    "reasoning": lambda p, where: ReasoningPart.model_validate(p),
}


def _parse_content(raw: Any, where: str) -> str | tuple[ContentPart, ...]:
    return read_content(raw, where, _READERS)


def _parse_call(c: Any, where: str) -> ToolCall:
    fn = require(c, "function", dict, where)
    call_id = c.get("id")
    if not isinstance(call_id, str):
        raise RecordError(f"{where} has no string 'id'")
    return parse_tool_call(call_id, fn.get("name"), fn.get("arguments"), where)


def parse_tools(raw: list[Any]) -> tuple[ToolDef, ...]:
    """Tool definitions, Chat Completions (``{type, function: {...}}``) or flat (Responses)."""
    tools: list[ToolDef] = []
    for i, t in enumerate(raw):
        if not isinstance(t, dict):
            raise RecordError(f"tool {i} must be an object")
        fn: dict[str, Any] = t["function"] if isinstance(t.get("function"), dict) else t
        name = fn.get("name")
        if not isinstance(name, str):
            raise RecordError(f"tool {i} has no name")
        params = fn.get("parameters", fn.get("input_schema"))
        tools.append(
            ToolDef(
                name=name,
                description=fn.get("description")
                if isinstance(fn.get("description"), str)
                else None,
                parameters=params if isinstance(params, dict) else None,
            )
        )
    return tuple(tools)


def _parse_reference(r: Any, i: int) -> Reference:
    label = require(r, "label", str, f"reference {i}")
    message = parse_message(
        require(r, "message", dict, f"reference {i}"), f"reference {i}", legacy_call_id=f"ref_{i}"
    )
    return Reference(label=label, message=message)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


# --- writing ---------------------------------------------------------------------------------


def to_openai_message(m: Message) -> dict[str, JSONValue]:
    """A :class:`Message` as an OpenAI chat message (plus deploysim's extra keys when needed)."""
    out: dict[str, JSONValue] = {"role": m.role}
    if isinstance(m.content, str):
        out["content"] = m.content if (m.content or not m.tool_calls) else None
    else:
        out["content"] = [_part_to_openai(p) for p in m.content]
    if m.tool_calls:
        out["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {
                    "name": c.function,
                    "arguments": c.raw_arguments
                    if c.raw_arguments is not None
                    else _json_text(c.arguments),
                },
            }
            for c in m.tool_calls
        ]
    if m.role == "tool":
        if m.tool_call_id is not None:
            out["tool_call_id"] = m.tool_call_id
        if m.function is not None:
            out["name"] = m.function
    elif m.name is not None:
        out["name"] = m.name
    for key in ("error", "id", "model", "timestamp"):
        value = getattr(m, key)
        if value is not None:
            out[key] = value
    if m.metadata:
        out["metadata"] = m.metadata
    return out


def to_openai_record(conv: Conversation) -> dict[str, JSONValue]:
    """A :class:`Conversation` as one OpenAI chat JSONL record."""
    out: dict[str, JSONValue] = {"messages": [to_openai_message(m) for m in conv.messages]}
    if conv.tools:
        out["tools"] = [
            {
                "type": "function",
                "function": t.model_dump(mode="json", exclude_none=True),
            }
            for t in conv.tools
        ]
    if conv.references:
        out["references"] = [
            {"label": r.label, "message": to_openai_message(r.message)} for r in conv.references
        ]
    if conv.provenance is not None:
        p = conv.provenance
        out["metadata"] = {
            "source_format": p.source_format,
            "source_id": p.source_id,
            **p.metadata,
        }
    return out


def _part_to_openai(p: ContentPart) -> dict[str, JSONValue]:
    if isinstance(p, TextPart):
        return {"type": "text", "text": p.text}
    if isinstance(p, ImagePart):
        url: dict[str, JSONValue] = {"url": p.image}
        if p.detail is not None:
            url["detail"] = p.detail
        return {"type": "image_url", "image_url": url}
    if isinstance(p, ReasoningPart):
        return p.model_dump(mode="json", exclude_defaults=True) | {"type": "reasoning"}
    return {"type": p.kind, **p.data}


def _json_text(value: JSONValue) -> str:
    return json.dumps(value, ensure_ascii=False)
