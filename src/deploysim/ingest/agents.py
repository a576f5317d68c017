"""Agent trajectories: SWE-agent ``.traj``, OpenHands event histories, Harbor ATIF, ToolBench.

Each trajectory is one conversation (agent scaffolds log the exact messages of their last model
call, or events from which they can be rebuilt). Structures:

- SWE-agent (``SWE-agent/SWE-agent`` ``sweagent/types.py``: ``AgentRunResult``, ``HistoryItem``):
  ``{trajectory[], history[{role, content, message_type, agent?, thought?, action?,
  tool_calls?, tool_call_ids?, is_demo?}], info{exit_status, submission, model_stats}}``.
- OpenHands (``All-Hands-AI/OpenHands`` ``openhands/events/serialization/event.py``,
  evaluation ``output.jsonl``): ``{instance_id, instruction, history[event], metrics, error}``
  with events ``{id, source: user|agent|environment, message, action|observation, args|extras,
  content, cause, tool_call_metadata{function_name, tool_call_id, model_response,
  total_calls_in_response}}``; the UI's trajectory export is the bare event list.
- Harbor ATIF (``laude-institute/harbor`` ``harbor/models/trajectories``; formats.md §1):
  ``{schema_version, session_id, agent, steps[{step_id, source: system|user|agent, message,
  reasoning_content?, tool_calls[{tool_call_id, function_name, arguments}], observation{results[
  {source_call_id, content}]}}], final_metrics}``.
- ToolBench answers (``OpenBMB/ToolBench`` ``data_example/answer``): ``{answer_generation{
  valid_data, final_answer, function[], train_messages[[message]]}, tree, ...}``, where each
  ``train_messages`` entry is one model call's OpenAI chat messages (legacy ``function_call``).
"""

from __future__ import annotations

import json
from typing import Any

from deploysim.errors import RecordError
from deploysim.ingest.chat import merge_calls
from deploysim.ingest.common import Found, parse_tool_call, require
from deploysim.ingest.openai import parse_messages, parse_tools
from deploysim.schema import Conversation, JSONValue, Message, ReasoningPart, TextPart, ToolCall

# --- SWE-agent ------------------------------------------------------------------------------


def swe_agent(value: Any) -> list[Found]:
    """A SWE-agent run: its ``history`` as messages (demonstrations kept, marked)."""
    history = require(value, "history", list)
    if not history:
        return []
    messages: list[Message] = []
    for i, h in enumerate(history):
        where = f"history {i}"
        role = require(h, "role", str, where)
        if role not in ("system", "user", "assistant", "tool"):
            raise RecordError(f"{where} has unknown role {role!r}")
        content = h.get("content")
        if isinstance(content, list):  # [{type: text, text}] in newer versions
            content = "\n".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
        calls = tuple(
            parse_tool_call(
                str(c.get("id") or f"call_{i}_{j}"),
                (c.get("function") or {}).get("name"),
                (c.get("function") or {}).get("arguments"),
                where,
            )
            for j, c in enumerate(h.get("tool_calls") or [])
            if isinstance(c, dict)
        )
        ids = h.get("tool_call_ids") or []
        meta: dict[str, JSONValue] = {
            k: h[k] for k in ("message_type", "agent", "is_demo") if k in h
        }
        messages.append(
            Message(
                role=role,
                content=content if isinstance(content, str) else "",
                tool_calls=calls if role == "assistant" else (),
                tool_call_id=str(ids[0]) if role == "tool" and ids else None,
                metadata=meta,
            )
        )
    info = value.get("info") if isinstance(value.get("info"), dict) else {}
    meta = {"exit_status": info.get("exit_status"), "steps": len(value.get("trajectory") or [])}
    source = value.get("environment") or info.get("instance_id")
    return [Found(Conversation(messages=tuple(messages)), _str(source), meta)]


# --- OpenHands ------------------------------------------------------------------------------


def openhands(value: Any) -> list[Found]:
    """An OpenHands run (``{history, ...}``) or a bare list of its events."""
    events = value if isinstance(value, list) else require(value, "history", list)
    messages: list[Message] = []
    for i, e in enumerate(events):
        if not isinstance(e, dict):
            raise RecordError(f"event {i} must be an object")
        messages.extend(_openhands_event(e, i))
    if not messages:
        return []
    meta: dict[str, JSONValue] = {}
    source = None
    if isinstance(value, dict):
        meta = {"instance_id": value.get("instance_id"), "error": value.get("error")}
        source = value.get("instance_id")
    return [Found(Conversation(messages=tuple(_merge_parallel(messages))), _str(source), meta)]


def _openhands_event(e: dict[str, Any], i: int) -> list[Message]:
    meta = e.get("tool_call_metadata") if isinstance(e.get("tool_call_metadata"), dict) else None
    source, action, observation = e.get("source"), e.get("action"), e.get("observation")
    args: dict[str, Any] = e["args"] if isinstance(e.get("args"), dict) else {}
    if action == "system":
        return [Message(role="system", content=str(args.get("content", e.get("message", ""))))]
    if isinstance(action, str) and meta is not None:  # a tool call the model made
        thought = args.get("thought", "")
        call = parse_tool_call(
            str(meta.get("tool_call_id") or f"call_{i}"),
            meta.get("function_name"),
            _call_arguments(meta, e),
            f"event {i}",
        )
        content = thought if isinstance(thought, str) else ""
        return [Message(role="assistant", content=content, tool_calls=(call,))]
    if isinstance(observation, str) and meta is not None:
        return [
            Message(
                role="tool",
                content=str(e.get("content", "")),
                tool_call_id=str(meta.get("tool_call_id") or f"call_{e.get('cause')}"),
                function=str(meta.get("function_name")) if meta.get("function_name") else None,
            )
        ]
    if action == "message" and source in ("user", "agent"):
        text = args.get("content", e.get("message", ""))
        return [Message(role="user" if source == "user" else "assistant", content=str(text))]
    if action == "finish" and source == "agent":
        outputs = args.get("outputs")
        text = args.get("final_thought") or (
            outputs.get("content") if isinstance(outputs, dict) else ""
        )
        return [Message(role="assistant", content=str(text))] if text else []
    return []  # state changes, recalls, environment bookkeeping: not conversation turns


def _call_arguments(meta: dict[str, Any], e: dict[str, Any]) -> Any:
    """The call's logged arguments, from the model response when it is kept, else ``args``."""
    response = meta.get("model_response")
    call_id = meta.get("tool_call_id")
    if isinstance(response, dict):
        for choice in response.get("choices") or []:
            message = choice.get("message") if isinstance(choice, dict) else None
            for c in (message or {}).get("tool_calls") or []:
                if isinstance(c, dict) and c.get("id") == call_id:
                    return (c.get("function") or {}).get("arguments")
    args = e.get("args")
    return {k: v for k, v in args.items() if k != "thought"} if isinstance(args, dict) else {}


def _merge_parallel(messages: list[Message]) -> list[Message]:
    """OpenHands logs each of one response's parallel calls as its own action: rejoin them."""
    out: list[Message] = []
    for m in messages:
        prev = out[-1] if out else None
        if (
            prev is not None
            and m.role == "assistant"
            and prev.role == "assistant"
            and (m.tool_calls and prev.tool_calls and not m.text)
        ):
            out[-1] = prev.model_copy(update={"tool_calls": prev.tool_calls + m.tool_calls})
        else:
            out.append(m)
    return out


# --- Harbor ATIF ----------------------------------------------------------------------------


def atif(value: Any) -> list[Found]:
    """One ATIF trajectory; each observation result becomes a tool message."""
    steps = require(value, "steps", list)
    messages: list[Message] = []
    roles = {"system": "system", "user": "user", "agent": "assistant"}
    for i, s in enumerate(steps):
        where = f"step {i}"
        source = require(s, "source", str, where)
        if source not in roles:
            raise RecordError(f"{where} has unknown source {source!r}")
        text = s.get("message") if isinstance(s.get("message"), str) else ""
        parts: list[Any] = []
        if isinstance(s.get("reasoning_content"), str) and s["reasoning_content"]:
            parts = [ReasoningPart(reasoning=s["reasoning_content"]), TextPart(text=text)]
        calls: tuple[ToolCall, ...] = tuple(
            parse_tool_call(
                require(c, "tool_call_id", str, f"{where} tool call {j}"),
                c.get("function_name"),
                c.get("arguments"),
                f"{where} tool call {j}",
            )
            for j, c in enumerate(s.get("tool_calls") or [])
        )
        meta: dict[str, JSONValue] = {"step_id": s.get("step_id")}
        if s.get("is_copied_context"):
            meta["is_copied_context"] = True
        messages.append(
            Message(
                role=roles[source],
                content=tuple(parts) if parts else text,
                tool_calls=calls,
                model=s.get("model_name") if isinstance(s.get("model_name"), str) else None,
                metadata=meta,
            )
        )
        observation = s.get("observation")
        for r in (observation or {}).get("results") or [] if isinstance(observation, dict) else []:
            content = r.get("content") if isinstance(r, dict) else None
            messages.append(
                Message(
                    role="tool",
                    content=content if isinstance(content, str) else json.dumps(content),
                    tool_call_id=_str(r.get("source_call_id")) if isinstance(r, dict) else None,
                )
            )
    if not messages:
        return []
    meta = {"schema_version": value.get("schema_version"), "agent": value.get("agent")}
    return [Found(Conversation(messages=tuple(messages)), _str(value.get("session_id")), meta)]


# --- ToolBench ------------------------------------------------------------------------------


def toolbench(value: Any) -> list[Found]:
    """A ToolBench answer file: the longest of its model calls, with the functions offered."""
    answer = require(value, "answer_generation", dict)
    calls = require(answer, "train_messages", list, "answer_generation")
    parsed = [list(parse_messages(c)) for c in calls if isinstance(c, list) and c]
    tools = parse_tools(answer.get("function") or [])
    meta: dict[str, JSONValue] = {
        "valid_data": answer.get("valid_data"),
        "finish_type": answer.get("finish_type"),
        "win": value.get("win"),
    }
    return [
        Found(Conversation(messages=tuple(m), tools=tools), None, meta) for m in merge_calls(parsed)
    ]


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
