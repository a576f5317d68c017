"""OpenAI Responses API logs: ``input`` items (and the ``output`` items that answered them).

A record is a request (``{instructions, input, tools}``) with its response's ``output`` items
beside it, or ``{"request": {...}, "response": {...}}``. Structure follows the Responses API
reference (platform.openai.com "Responses"; ``openai-python`` ``types/responses/
response_input_item_param.py``): items ``message{role, content[input_text|output_text|refusal]}``
(or the short ``{role, content}``), ``function_call{call_id, name, arguments}``,
``function_call_output{call_id, output}``, ``reasoning{summary[summary_text], content?,
encrypted_content?}``, ``custom_tool_call{call_id, name, input}`` and its output.

Consecutive model-side items (reasoning, assistant message, calls) form one assistant message.
Calls and outputs pair by ``call_id``; an output whose call is not in the log, or a call left
unanswered before the conversation goes on, rejects the record (formats.md: no invented
placeholders).
"""

from __future__ import annotations

from typing import Any

from deploysim.errors import RecordError
from deploysim.ingest.common import Found, clean_metadata, optional, parse_tool_call, require
from deploysim.ingest.openai import parse_tools
from deploysim.ingest.parts import PartReader, image_part, read_content, simplify, text_part
from deploysim.schema import (
    ContentPart,
    Conversation,
    JSONValue,
    Message,
    ReasoningPart,
    TextPart,
    ToolCall,
)

ITEM_TYPES = frozenset(
    {
        "message",
        "function_call",
        "function_call_output",
        "reasoning",
        "custom_tool_call",
        "custom_tool_call_output",
    }
)
_CALLS = ("function_call", "custom_tool_call")
_OUTPUTS = ("function_call_output", "custom_tool_call_output")


def looks_like(value: Any) -> bool:
    """Whether a record holds Responses items (``input``/``output`` lists of typed items)."""
    if not isinstance(value, dict):
        return False
    if isinstance(value.get("request"), dict):
        return looks_like(value["request"]) or looks_like(value.get("response"))
    if value.get("object") == "response":
        return True
    for key in ("input", "output"):
        items = value.get(key)
        if isinstance(items, list) and any(
            isinstance(i, dict) and i.get("type") in ITEM_TYPES for i in items
        ):
            return True
    return isinstance(value.get("input"), str) and "messages" not in value


def convert(value: Any) -> list[Found]:
    """One logged request with its output items."""
    if not isinstance(value, dict):
        raise RecordError("record must be a JSON object")
    request: dict[str, Any] = value["request"] if isinstance(value.get("request"), dict) else value
    response: dict[str, Any] = (
        value["response"] if isinstance(value.get("response"), dict) else value
    )
    raw_input = request.get("input")
    items: list[Any] = (
        [{"role": "user", "content": raw_input}]
        if isinstance(raw_input, str)
        else list(require(request, "input", list, "request"))
    )
    output = response.get("output")
    if isinstance(output, list):
        items.extend(output)
    messages: list[Message] = []
    instructions = optional(request, "instructions", str, "request")
    if instructions:
        messages.append(Message(role="system", content=instructions))
    messages.extend(parse_items(items))
    if not any(m.role != "system" for m in messages):
        raise RecordError("no input or output items")
    tools = parse_tools(
        [t for t in optional(request, "tools", list, "request") or [] if _is_function_tool(t)]
    )
    meta = clean_metadata(
        request, skip=frozenset({"input", "output", "instructions", "tools", "metadata"})
    )
    if response is not request:
        meta.update({k: response[k] for k in ("id", "model", "status", "usage") if k in response})
    source_id = response.get("id") or value.get("id")
    conv = Conversation(messages=tuple(messages), tools=tools)
    return [Found(conv, str(source_id) if source_id is not None else None, meta)]


def _is_function_tool(t: Any) -> bool:
    return isinstance(t, dict) and t.get("type", "function") in ("function", "custom")


def parse_items(items: list[Any]) -> list[Message]:
    """Responses items as messages (see the module docstring for the grouping and pairing)."""
    out: list[Message] = []
    turn = _Turn()
    calls: dict[str, str] = {}  # call_id -> tool name
    unanswered: dict[str, int] = {}  # call_id -> item index
    for i, item in enumerate(items):
        where = f"item {i}"
        if not isinstance(item, dict):
            raise RecordError(f"{where} must be an object")
        kind = item.get("type", "message")
        role = item.get("role")
        if kind in _CALLS or kind == "reasoning" or (kind == "message" and role == "assistant"):
            turn.add(item, kind, where)
            if kind in _CALLS:
                call_id = require(item, "call_id", str, where)
                calls[call_id] = str(item.get("name"))
                unanswered[call_id] = i
            continue
        out.extend(turn.flush())
        if kind in _OUTPUTS:
            call_id = require(item, "call_id", str, where)
            if call_id not in calls:
                raise RecordError(f"{where} answers call_id {call_id!r}, which no call made")
            unanswered.pop(call_id, None)
            raw = item.get("output")
            content = raw if isinstance(raw, str) else _content(raw or [], where)
            out.append(
                Message(role="tool", content=content, tool_call_id=call_id, function=calls[call_id])
            )
        elif kind == "message":
            if unanswered:
                first = min(unanswered.values())
                raise RecordError(f"item {first}: a call with no output before the next message")
            if role not in ("system", "developer", "user"):
                raise RecordError(f"{where} has unknown role {role!r}")
            out.append(Message(role=role, content=_content(item.get("content"), where)))
        else:
            raise RecordError(f"{where} has unsupported item type {kind!r}")
    out.extend(turn.flush())
    return out


class _Turn:
    """Model-side items gathered into one assistant message."""

    def __init__(self) -> None:
        self.parts: list[ContentPart] = []
        self.calls: list[ToolCall] = []
        self.meta: dict[str, JSONValue] = {}

    def add(self, item: dict[str, Any], kind: str, where: str) -> None:
        if kind == "reasoning":
            summary = "\n".join(
                s["text"] for s in item.get("summary") or [] if isinstance(s, dict) and "text" in s
            )
            text = "\n".join(
                c["text"] for c in item.get("content") or [] if isinstance(c, dict) and "text" in c
            )
            encrypted = item.get("encrypted_content")
            self.parts.append(
                ReasoningPart(
                    reasoning=text or summary,
                    summary=summary or None,
                    signature=encrypted if isinstance(encrypted, str) else None,
                    redacted=not (text or summary) and isinstance(encrypted, str),
                )
            )
        elif kind == "function_call":
            call_id = require(item, "call_id", str, where)
            self.calls.append(parse_tool_call(call_id, item.get("name"), item.get("arguments")))
        elif kind == "custom_tool_call":
            call_id = require(item, "call_id", str, where)
            name = item.get("name")
            if not isinstance(name, str):
                raise RecordError(f"{where} has no tool name")
            raw = item.get("input")
            self.calls.append(
                ToolCall(id=call_id, function=name, arguments=raw, raw_arguments=None)
            )
        else:
            content = _content(item.get("content"), where)
            self.parts.extend([TextPart(text=content)] if isinstance(content, str) else content)
            if isinstance(item.get("phase"), str):
                self.meta["phase"] = item["phase"]

    def flush(self) -> list[Message]:
        if not self.parts and not self.calls:
            return []
        message = Message(
            role="assistant",
            content=simplify(self.parts),
            tool_calls=tuple(self.calls),
            metadata=self.meta,
        )
        self.parts, self.calls, self.meta = [], [], {}
        return [message]


# Responses API input/output part types.
_READERS: dict[str, PartReader] = {
    "input_text": text_part,
    "output_text": text_part,
    "text": text_part,
    "refusal": lambda p, where: TextPart(text=str(p.get("refusal", ""))),
    "input_image": lambda p, where: image_part(p, "image_url"),
}


def _content(raw: Any, where: str) -> str | tuple[ContentPart, ...]:
    return read_content(raw, where, _READERS, merge=True)
