"""ShareGPT dumps: ``{id?, conversations: [{from, value}], system?, tools?}``.

``from`` maps human/user -> user, gpt/assistant (and other assistant names) -> assistant,
system -> system; tool turns ``function_call``/``function-call`` become assistant tool calls and
``observation``/``function-response``/``tool`` become tool results. Missing call ids become
``call_<turn index>`` (formats.md). Files that use ``role``/``content`` inside ``conversations``
(or ``messages``) are read too.
"""

from __future__ import annotations

import json
from typing import Any

from deploysim.errors import RecordError
from deploysim.ingest.common import Found, clean_metadata, optional, parse_tool_call, require
from deploysim.ingest.openai import parse_tools
from deploysim.schema import Conversation, Message

_USER = frozenset({"human", "user", "prompter"})
_ASSISTANT = frozenset({"gpt", "assistant", "chatgpt", "bing", "bard", "model", "bot"})
_CALL = frozenset({"function_call", "function-call", "tool_call"})
_RESULT = frozenset({"observation", "function-response", "function_response", "tool"})


def convert(value: Any) -> list[Found]:
    """One ShareGPT record."""
    turns = value.get("conversations") if isinstance(value, dict) else None
    if turns is None and isinstance(value, dict):
        turns = value.get("messages")
    if not isinstance(turns, list):
        raise RecordError("record has no 'conversations' list")
    messages: list[Message] = []
    system = optional(value, "system", str, "record")
    if system:
        messages.append(Message(role="system", content=system))
    last_call: str | None = None
    for i, turn in enumerate(turns):
        where = f"turn {i}"
        speaker = turn.get("from", turn.get("role")) if isinstance(turn, dict) else None
        if not isinstance(speaker, str):
            raise RecordError(f"{where} has no 'from' (or 'role') string")
        text = turn.get("value", turn.get("content"))
        if not isinstance(text, str):
            raise RecordError(f"{where} has no 'value' (or 'content') string")
        who = speaker.lower()
        if who in _USER:
            messages.append(Message(role="user", content=text))
        elif who in _ASSISTANT:
            messages.append(Message(role="assistant", content=text))
        elif who == "system":
            messages.append(Message(role="system", content=text))
        elif who in _CALL:
            last_call = f"call_{i}"
            messages.append(Message(role="assistant", tool_calls=(_call(text, last_call, where),)))
        elif who in _RESULT:
            messages.append(
                Message(role="tool", content=text, tool_call_id=last_call or f"call_{i}")
            )
        else:
            raise RecordError(f"{where} has unknown speaker {speaker!r}")
    if not any(m.role != "system" for m in messages):
        return []  # a well-formed record with no turns: counted as empty, not as bad
    tools_raw = value.get("tools")
    if isinstance(tools_raw, str):  # some ShareGPT tool sets store the tool list as JSON text
        try:
            tools_raw = json.loads(tools_raw)
        except json.JSONDecodeError as e:
            raise RecordError(f"'tools' is a string but not JSON ({e.msg})") from e
    tools = parse_tools(tools_raw) if isinstance(tools_raw, list) else ()
    meta = clean_metadata(value, skip=frozenset({"conversations", "messages", "system", "tools"}))
    raw_id = require(value, "id", str) if "id" in value else None
    return [Found(Conversation(messages=tuple(messages), tools=tools), raw_id, meta)]


def _call(text: str, call_id: str, where: str) -> Any:
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as e:
        raise RecordError(f"{where} function call is not JSON ({e.msg})") from e
    if not isinstance(payload, dict):
        raise RecordError(f"{where} function call must be a JSON object with 'name'")
    return parse_tool_call(call_id, payload.get("name"), payload.get("arguments", {}), where)
