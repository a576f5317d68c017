"""Anthropic Messages API logs: request bodies, optionally with the response that answered them.

A record is a request (``{model, system, messages, tools}``), a request with its response
(``{"request": {...}, "response": {...}}``, or the response under ``"response"`` beside the request
fields), as gateways and proxies log them. Structure follows the Messages API reference
(docs.anthropic.com, "Messages"; ``anthropic-sdk-python`` ``types/message_param.py``): content
blocks ``text``, ``image``, ``tool_use{id, name, input}``, ``tool_result{tool_use_id, content,
is_error}``, ``thinking{thinking, signature}``, ``redacted_thinking{data}``.

Mapping (formats.md §1): each ``tool_result`` becomes a tool message placed before the rest of its
user message; ``thinking`` becomes a reasoning part (its signature kept, provider-bound);
``redacted_thinking`` a redacted reasoning part holding its opaque data as the signature.
"""

from __future__ import annotations

from typing import Any

from deploysim.errors import RecordError
from deploysim.ingest.common import Found, clean_metadata, optional, parse_tool_call, require
from deploysim.ingest.openai import parse_tools
from deploysim.ingest.parts import PartReader, read_content, str_field, text_part
from deploysim.schema import (
    ContentPart,
    Conversation,
    ImagePart,
    JSONValue,
    Message,
    OtherPart,
    ReasoningPart,
    ToolCall,
)

_ANTHROPIC_ONLY = frozenset({"tool_use", "tool_result", "thinking", "redacted_thinking"})


def looks_like(value: Any) -> bool:
    """Whether a record is an Anthropic Messages log rather than an OpenAI chat one.

    Text-only Anthropic requests read the same either way; these are the marks that differ.
    """
    if not isinstance(value, dict):
        return False
    if isinstance(value.get("request"), dict):
        return looks_like(value["request"]) or _is_response(value.get("response"))
    if "anthropic_version" in value or _is_response(value.get("response")):
        return True
    if "system" in value and isinstance(value.get("messages"), list):
        return True
    tools = value.get("tools")
    if isinstance(tools, list) and any(isinstance(t, dict) and "input_schema" in t for t in tools):
        return True
    messages = value.get("messages")
    return isinstance(messages, list) and any(
        isinstance(m, dict)
        and isinstance(m.get("content"), list)
        and any(isinstance(b, dict) and b.get("type") in _ANTHROPIC_ONLY for b in m["content"])
        for m in messages
    )


def _is_response(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "message"


def convert(value: Any) -> list[Found]:
    """One logged request (and its response, when logged with it)."""
    if not isinstance(value, dict):
        raise RecordError("record must be a JSON object")
    request: dict[str, Any] = value["request"] if isinstance(value.get("request"), dict) else value
    response = value.get("response")
    raw_messages = require(request, "messages", list, "request")
    messages: list[Message] = []
    system = request.get("system")
    if isinstance(system, str) and system:
        messages.append(Message(role="system", content=system))
    elif isinstance(system, list) and system:
        messages.append(Message(role="system", content=_content(system, "system")))
    for i, m in enumerate(raw_messages):
        messages.extend(parse_message(m, f"message {i}"))
    if isinstance(response, dict) and isinstance(response.get("content"), list):
        messages.extend(parse_message({**response, "role": "assistant"}, "response"))
    if not messages:
        raise RecordError("'messages' is empty")
    tools = parse_tools(optional(request, "tools", list, "request") or [])
    meta = clean_metadata(
        request, skip=frozenset({"messages", "system", "tools", "metadata", "request"})
    )
    if isinstance(response, dict):
        meta.update(
            {k: response[k] for k in ("id", "model", "stop_reason", "usage") if k in response}
        )
    source_id = response.get("id") if isinstance(response, dict) else value.get("id")
    conv = Conversation(messages=tuple(messages), tools=tools)
    return [Found(conv, str(source_id) if source_id is not None else None, meta)]


def parse_message(m: Any, where: str) -> list[Message]:
    """One Anthropic message; a user message's tool results come first, as tool messages."""
    role = require(m, "role", str, where)
    if role not in ("user", "assistant"):
        raise RecordError(f"{where} has unknown role {role!r}; expected user or assistant")
    raw = m.get("content")
    if isinstance(raw, str):
        return [Message(role=role, content=raw)]
    if not isinstance(raw, list):
        raise RecordError(f"{where} 'content' must be a string or a list of blocks")
    out: list[Message] = []
    rest: list[Any] = []
    calls: list[ToolCall] = []
    for k, block in enumerate(raw):
        kind = require(block, "type", str, f"{where} block {k}")
        if kind == "tool_result":
            out.append(_tool_result(block, f"{where} block {k}"))
        elif kind == "tool_use":
            call_id = require(block, "id", str, f"{where} block {k}")
            calls.append(
                parse_tool_call(call_id, block.get("name"), block.get("input"), f"{where} block")
            )
        else:
            rest.append(block)
    if rest or calls or not out:
        content = _content(rest, where)
        meta: dict[str, JSONValue] = {}
        if role == "assistant" and isinstance(m.get("stop_reason"), str):
            meta["stop_reason"] = m["stop_reason"]
        out.append(
            Message(
                role=role,
                content=content,
                tool_calls=tuple(calls),
                id=m.get("id") if isinstance(m.get("id"), str) else None,
                model=m.get("model") if isinstance(m.get("model"), str) else None,
                metadata=meta,
            )
        )
    return out


def _tool_result(block: dict[str, Any], where: str) -> Message:
    call_id = require(block, "tool_use_id", str, where)
    raw = block.get("content")
    content: str | tuple[ContentPart, ...] = (
        raw if isinstance(raw, str) else _content(raw or [], where)
    )
    return Message(
        role="tool",
        content=content,
        tool_call_id=call_id,
        error="tool error" if block.get("is_error") else None,
    )


def _redacted(b: dict[str, Any], where: str) -> ReasoningPart:
    # The opaque data is all a redacted block holds; it goes back to the provider as is.
    return ReasoningPart(reasoning="", redacted=True, signature=str_field(b, "data"))


def _image(b: dict[str, Any], where: str) -> ContentPart | None:
    source = b.get("source")
    if not isinstance(source, dict):
        return None
    image = source.get("url") or (
        f"data:{source.get('media_type')};base64,{source.get('data')}"
        if source.get("type") == "base64"
        else None
    )
    return (
        ImagePart(image=image) if isinstance(image, str) else OtherPart(kind="image", data=dict(b))
    )


# Messages API content blocks (tool_use and tool_result are taken out before, by parse_message).
_READERS: dict[str, PartReader] = {
    "text": text_part,
    "thinking": lambda b, where: ReasoningPart(
        reasoning=require(b, "thinking", str, where), signature=str_field(b, "signature")
    ),
    "redacted_thinking": _redacted,
    "image": _image,
}


def _content(blocks: Any, where: str) -> str | tuple[ContentPart, ...]:
    return read_content(blocks, where, _READERS, merge=True)
