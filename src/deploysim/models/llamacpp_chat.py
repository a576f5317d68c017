"""The chat format of the local models: messages and tools into their chat template's input,
tool calls parsed out of the text they write.

Templates that know tools (Qwen) get them natively; for the others the tools go into the system
prompt with the Hermes-style ``<tool_call>{json}</tool_call>`` convention, which is also what
:func:`parse_tool_calls` reads back (bare JSON calls and fenced blocks too).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Sequence
from typing import Any

from deploysim.schema import JSONValue, Message, ToolCall, ToolDef, canonical_hash


def n_leading_system(messages: Sequence[Message]) -> int:
    n = 0
    while n < len(messages) and messages[n].role in ("system", "developer"):
        n += 1
    return n


_TOOL_PREAMBLE = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
)
_TOOL_HOWTO = (
    "\n</tools>\n\nFor each function call, return a json object with function name and "
    "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)


def _tool_json(tool: ToolDef) -> dict[str, JSONValue]:
    function: dict[str, JSONValue] = {"name": tool.name}
    if tool.description:
        function["description"] = tool.description
    function["parameters"] = tool.parameters or {"type": "object", "properties": {}}
    return {"type": "function", "function": function}


def _call_args(call: ToolCall) -> JSONValue:
    if call.parse_error is not None and call.raw_arguments is not None:
        return call.raw_arguments
    return call.arguments if call.arguments is not None else {}


def to_chat(
    messages: Sequence[Message], tools: Sequence[ToolDef], *, native: bool
) -> tuple[list[dict[str, Any]], list[dict[str, JSONValue]] | None]:
    """Template input: (messages, tools). ``native``: the template renders tools itself."""
    n_sys = n_leading_system(messages)
    # developer is the newer name of system; several leading ones become one system message,
    # since templates treat only the first message as the system prompt.
    system = "\n\n".join(m.text for m in messages[:n_sys])
    tool_list = [_tool_json(t) for t in tools] or None
    if tool_list and not native:
        block = _TOOL_PREAMBLE + "\n".join(json.dumps(t) for t in tool_list) + _TOOL_HOWTO
        system = f"{system}\n\n{block}" if system else block
    chat: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    chat += [_chat_message(m, native=native) for m in messages[n_sys:]]
    return chat, tool_list if native else None


def _chat_message(m: Message, *, native: bool) -> dict[str, Any]:
    if m.role == "tool":
        body = f"{m.text}\nError: {m.error}".strip() if m.error else m.text
        if native:
            return {"role": "tool", "content": body}
        return {"role": "user", "content": f"<tool_response>\n{body}\n</tool_response>"}
    if m.role == "assistant" and m.tool_calls:
        calls = [{"name": c.function, "arguments": _call_args(c)} for c in m.tool_calls]
        if native:
            return {
                "role": "assistant",
                "content": m.text,
                "tool_calls": [
                    {"id": c.id, "type": "function", "function": f}
                    for c, f in zip(m.tool_calls, calls, strict=True)
                ],
            }
        blocks = [f"<tool_call>\n{json.dumps(f)}\n</tool_call>" for f in calls]
        return {"role": "assistant", "content": "\n".join([m.text, *blocks]).strip()}
    return {"role": "system" if m.role == "developer" else m.role, "content": m.text}


# ---- output parsing --------------------------------------------------------------------------

_TOOL_CALL = re.compile(r"<tool_call>(.*?)(?:</tool_call>|\Z)", re.DOTALL)
_NAME = re.compile(r'"name"\s*:\s*"([^"]*)"')
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


def parse_tool_calls(
    text: str, tool_names: Collection[str] = ()
) -> tuple[str, tuple[ToolCall, ...]]:
    """Split model output into visible text and ``<tool_call>{json}</tool_call>`` calls.

    Qwen (Hermes) format: each block holds ``{"name": ..., "arguments": {...}}``. An unclosed
    block at the end (the answer hit max_tokens) still counts. A block that is not valid JSON
    becomes a call with ``parse_error`` set and the block in ``raw_arguments``: a malformed call
    is behaviour worth grading, not something to hide in the text.

    Small Qwen models often drop the tags and answer with the bare JSON object alone; when the
    whole answer is such an object (or a list of them, or one in a code fence) naming one of
    ``tool_names`` (the tools on offer), it is a call too.
    """
    blocks = [m.group(1).strip() for m in _TOOL_CALL.finditer(text)]
    if blocks:
        visible = _TOOL_CALL.sub("", text).strip()
    else:
        visible = text.strip()
        blocks = _bare_calls(visible, tool_names)
        if not blocks:
            return visible, ()
        visible = ""
    return visible, tuple(_tool_call(i, block) for i, block in enumerate(blocks))


def _bare_calls(text: str, tool_names: Collection[str]) -> list[str]:
    if not tool_names:
        return []
    try:
        value = json.loads(_FENCE.sub("", text))
    except ValueError:
        return []
    items = value if isinstance(value, list) else [value]
    ok = all(isinstance(v, dict) and v.get("name") in tool_names for v in items)
    return [json.dumps(v, ensure_ascii=False) for v in items] if items and ok else []


def _tool_call(i: int, block: str) -> ToolCall:
    call_id = f"call_{i}_{canonical_hash([i, block])[:12]}"
    try:
        value = json.loads(block)
        if not isinstance(value, dict) or not isinstance(value.get("name"), str):
            raise ValueError('expected {"name": ..., "arguments": ...}')
    except ValueError as e:
        name = _NAME.search(block)
        return ToolCall(
            id=call_id,
            function=name.group(1) if name else "",
            raw_arguments=block,
            parse_error=str(e),
        )
    args = value.get("arguments", value.get("parameters", {}))
    if not isinstance(args, str):
        return ToolCall(id=call_id, function=value["name"], arguments=args)
    # Some models send the arguments as a JSON string: keep it unless it is canonical.
    try:
        parsed = json.loads(args)
    except ValueError as e:
        return ToolCall(id=call_id, function=value["name"], raw_arguments=args, parse_error=str(e))
    raw = None if args == json.dumps(parsed) else args
    return ToolCall(id=call_id, function=value["name"], arguments=parsed, raw_arguments=raw)
