"""Langfuse and LangSmith exports: their model calls assembled into conversations.

- Langfuse (API reference ``/api/public/traces`` and ``/api/public/observations``; the
  ``langfuse-python`` ``api/resources/commons/types``): traces ``{id, sessionId, userId, input,
  output, observations?[]}`` and observations ``{id, traceId, parentObservationId, type:
  SPAN|GENERATION|EVENT, startTime, model, input, output}``, as JSONL, JSON arrays or API pages
  ``{data: [...], meta}``. A ``GENERATION``'s ``input`` holds the chat messages it was sent and
  its ``output`` the reply.
- LangSmith (``langsmith-sdk`` ``schemas.py`` ``Run``; ``client.list_runs`` exports): runs
  ``{id, trace_id, run_type: llm|chain|tool|..., inputs, outputs, start_time, parent_run_id,
  dotted_order, extra{metadata}}``. An ``llm`` run's ``inputs.messages`` holds LangChain
  messages (serialised ``lc`` objects, ``{type, content}`` dicts or OpenAI dicts) and its
  ``outputs.generations[0][0].message`` (or ``choices[0].message``) the reply.

Calls are grouped by session (Langfuse ``sessionId`` of their trace; LangSmith ``thread_id``,
``session_id`` or ``conversation_id`` metadata), else by trace, and merged into conversations
(:func:`~deploysim.ingest.chat.merge_calls`). User ids are never read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from deploysim.errors import RecordError
from deploysim.ingest.chat import merge_calls, to_messages
from deploysim.ingest.common import Found
from deploysim.ingest.sources import RecordOrError
from deploysim.ingest.spans import Group, group_of, read_grouped
from deploysim.schema import Conversation, JSONValue, Message

LANGFUSE_TYPES = frozenset({"GENERATION", "SPAN", "EVENT", "AGENT", "TOOL", "CHAIN"})


def is_langfuse(value: Any) -> bool:
    """Whether a value is a Langfuse observation, a trace with observations, or a page of them."""
    if isinstance(value, dict) and isinstance(value.get("data"), list) and value["data"]:
        return is_langfuse(value["data"][0])
    return isinstance(value, dict) and (
        ("traceId" in value and value.get("type") in LANGFUSE_TYPES)
        or (isinstance(value.get("observations"), list) and "id" in value)
    )


def is_langsmith(value: Any) -> bool:
    """Whether a value is a LangSmith run (or a page of runs)."""
    if isinstance(value, dict) and isinstance(value.get("runs"), list) and value["runs"]:
        return is_langsmith(value["runs"][0])
    return isinstance(value, dict) and "run_type" in value and "inputs" in value


def _items(value: Any, keys: tuple[str, ...]) -> Iterator[Any]:
    """The objects of one exported value: itself, a list's items, or a page's ``keys`` list."""
    if isinstance(value, list):
        for v in value:
            yield from _items(v, keys)
        return
    for key in keys:
        if isinstance(value, dict) and isinstance(value.get(key), list) and "id" not in value:
            yield from _items(value[key], keys)
            return
    yield value


def read_langfuse(path: Path, kind: str) -> Iterator[RecordOrError]:
    """One record per session (or trace) of a Langfuse export."""
    sessions: dict[str, str] = {}
    generations: list[dict[str, Any]] = []

    def take(value: Any) -> Iterator[RecordError]:
        for obj in _items(value, ("data",)):
            if not isinstance(obj, dict):
                continue
            nested = obj.get("observations")
            if isinstance(nested, list):  # a trace, maybe with its observations
                if obj.get("sessionId"):
                    sessions[str(obj["id"])] = str(obj["sessionId"])
                generations.extend(
                    {**o, "traceId": o.get("traceId", obj["id"])}
                    for o in nested
                    if isinstance(o, dict) and o.get("type") == "GENERATION"
                )
            elif obj.get("type") == "GENERATION":
                generations.append(obj)
        return iter(())

    def key(g: dict[str, Any]) -> str:
        trace = str(g.get("traceId"))
        return f"session:{sessions[trace]}" if trace in sessions else f"trace:{trace}"

    return read_grouped(
        path, kind, take, lambda: _group(generations, lambda g: str(g.get("startTime", "")), key)
    )


def read_langsmith(path: Path, kind: str) -> Iterator[RecordOrError]:
    """One record per thread (or trace) of a LangSmith runs export."""
    runs: list[dict[str, Any]] = []

    def take(value: Any) -> Iterator[RecordError]:
        runs.extend(
            run
            for run in _items(value, ("runs",))
            if isinstance(run, dict) and run.get("run_type") == "llm"
        )
        return iter(())

    def key(run: dict[str, Any]) -> str:
        metadata = (run.get("extra") or {}).get("metadata") or {}
        thread = next(
            (metadata[k] for k in ("thread_id", "session_id", "conversation_id") if k in metadata),
            None,
        )
        return f"thread:{thread}" if thread else f"trace:{run.get('trace_id') or run.get('id')}"

    def order(run: dict[str, Any]) -> str:
        return str(run.get("dotted_order") or run.get("start_time", ""))

    return read_grouped(path, kind, take, lambda: _group(runs, order, key))


def _group(
    calls: list[dict[str, Any]],
    order: Callable[[dict[str, Any]], str],
    key: Callable[[dict[str, Any]], str],
) -> list[Group]:
    """Calls in ``order``, grouped by ``key`` (groups in first-seen order)."""
    groups: dict[str, Group] = {}
    for call in sorted(calls, key=order):
        groups.setdefault(key(call), Group(key(call))).spans.append(call)
    return list(groups.values())


def convert_langfuse(value: Any) -> list[Found]:
    """The conversations of one Langfuse session or trace."""
    return _convert(value, _langfuse_call, "model")


def convert_langsmith(value: Any) -> list[Found]:
    """The conversations of one LangSmith thread or trace."""
    return _convert(value, _langsmith_call, "name")


def _convert(value: Any, call: Any, model_key: str) -> list[Found]:
    value = group_of(value)
    calls: list[list[Message]] = []
    for i, obj in enumerate(value.spans):
        try:
            calls.append(call(obj))
        except RecordError as e:
            raise RecordError(f"call {i} ({obj.get('id')}): {e.reason}") from e
    models = sorted({str(o.get(model_key)) for o in value.spans if o.get(model_key)})
    meta: dict[str, JSONValue] = {"calls": len(value.spans), "models": list(models)}
    return [Found(Conversation(messages=tuple(m)), value.key, meta) for m in merge_calls(calls)]


def _output_messages(output: Any, where: str) -> list[Message]:
    if output is None:
        return []
    if isinstance(output, str):
        return to_messages([{"role": "assistant", "content": output}], where)
    if isinstance(output, list):
        return to_messages(output, where)
    if isinstance(output, dict):
        if isinstance(output.get("choices"), list) and output["choices"]:
            return to_messages([output["choices"][0].get("message")], where)
        if isinstance(output.get("generations"), list) and output["generations"]:
            first = output["generations"][0]
            gen = first[0] if isinstance(first, list) and first else first
            if isinstance(gen, dict) and isinstance(gen.get("message"), dict):
                return to_messages([gen["message"]], where)
            if isinstance(gen, dict) and isinstance(gen.get("text"), str):
                return _output_messages(gen["text"], where)
        if "role" in output or "lc" in output or "type" in output:
            return to_messages([output], where)
        if "content" in output:
            return to_messages([{"role": "assistant", **output}], where)
        if "output" in output:
            return _output_messages(output["output"], where)
    raise RecordError(f"{where}: cannot read the reply")


def _input_messages(raw: Any, where: str) -> list[Message]:
    if isinstance(raw, str):
        return to_messages([{"role": "user", "content": raw}], where)
    if isinstance(raw, dict) and isinstance(raw.get("prompts"), list) and raw["prompts"]:
        return _input_messages(raw["prompts"][0], where)
    return to_messages(raw, where)


def _langfuse_call(obs: dict[str, Any]) -> list[Message]:
    return _input_messages(obs.get("input"), "input") + _output_messages(
        obs.get("output"), "output"
    )


def _langsmith_call(run: dict[str, Any]) -> list[Message]:
    return _input_messages(run.get("inputs"), "inputs") + _output_messages(
        run.get("outputs"), "outputs"
    )
