"""Pieces every format reader shares: the converter result type and field checks."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from deploysim.errors import RecordError
from deploysim.schema import Conversation, JSONValue, ToolCall

# Keys that identify an account or a person rather than a conversation: dropped at ingest.
ACCOUNT_KEYS = frozenset(
    {
        "user",
        "user_id",
        "userid",
        "userId",
        "account",
        "account_id",
        "accountId",
        "org_id",
        "organization_id",
        "orgId",
        "email",
        "user_email",
        "ip",
        "ip_address",
        "ip_hash",
        "device_id",
        "red_team_member_id",
        "session_user",
    }
)


@dataclass(frozen=True, slots=True)
class Found:
    """A conversation a converter found in one record, with its source id and metadata."""

    conversation: Conversation
    source_id: str | None = None
    metadata: dict[str, JSONValue] = field(default_factory=dict)


def require(obj: Any, key: str, kind: type | tuple[type, ...], where: str = "record") -> Any:
    """``obj[key]``, checked to be of ``kind``; a :class:`RecordError` naming the fix otherwise."""
    if not isinstance(obj, dict):
        raise RecordError(f"{where} must be a JSON object, got {_type_name(obj)}")
    if key not in obj:
        raise RecordError(f"{where} has no {key!r} field")
    value = obj[key]
    if not isinstance(value, kind):
        raise RecordError(
            f"{where} field {key!r} must be {_kind_name(kind)}, got {_type_name(value)}"
        )
    return value


def optional(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """``obj[key]`` when present and not null, checked to be of ``kind``; else ``None``."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, kind):
        raise RecordError(
            f"{where} field {key!r} must be {_kind_name(kind)}, got {_type_name(value)}"
        )
    return value


def clean_metadata(obj: dict[str, Any], skip: frozenset[str] = frozenset()) -> dict[str, JSONValue]:
    """A record's extra fields as metadata, without account identifiers or ``skip`` keys."""
    return {k: v for k, v in obj.items() if k not in skip and k not in ACCOUNT_KEYS}


def parse_tool_call(
    call_id: str, function: Any, arguments: Any, where: str = "tool call"
) -> ToolCall:
    """A :class:`ToolCall` from a name and arguments given as a JSON string or a JSON value.

    A string that does not parse is kept verbatim with the parse error: it is a real model
    mistake worth keeping, not a bad record.
    """
    if not isinstance(function, str) or not function:
        raise RecordError(f"{where} has no function name")
    if isinstance(arguments, str):
        try:
            parsed = json.loads(arguments)
            # The raw text is kept only when it says more than the parsed value (its exact
            # spacing or key order); our own exports write json.dumps(value), which re-reads
            # to the same call.
            raw = None if arguments == json.dumps(parsed, ensure_ascii=False) else arguments
            return ToolCall(id=call_id, function=function, arguments=parsed, raw_arguments=raw)
        except (json.JSONDecodeError, RecursionError) as e:
            return ToolCall(
                id=call_id, function=function, raw_arguments=arguments, parse_error=str(e)
            )
    return ToolCall(id=call_id, function=function, arguments=arguments)


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(_type_name(k()) if k is not type(None) else "null" for k in kinds)
