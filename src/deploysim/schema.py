"""The conversation model: immutable values every stage of deploysim reads and writes.

A :class:`Conversation` is a tuple of :class:`Message` values plus the tool definitions offered to
the model and any alternative final assistant responses (:class:`Reference`). Where it came from
(file, format, record, pseudonymous id) is its :class:`Provenance`, kept apart from the content so
that the same conversation seen in two files, or exported and re-ingested, is stored once.

No I/O happens here. Hashes are SHA-256 over canonical JSON (sorted keys, no whitespace).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Role = Literal["system", "developer", "user", "assistant", "tool"]
JSONValue = Any  # a JSON-compatible value (dict, list, str, int, float, bool, None)


class _Value(BaseModel):
    """Base of all values: frozen, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class TextPart(_Value):
    """A span of text inside a message."""

    type: Literal["text"] = "text"
    text: str


class ReasoningPart(_Value):
    """Model reasoning, as exposed by the provider (Inspect's ``ContentReasoning``)."""

    type: Literal["reasoning"] = "reasoning"
    reasoning: str
    summary: str | None = None
    # Provider-bound: replayed only to the provider that produced it.
    signature: str | None = None
    redacted: bool = False


class ImagePart(_Value):
    """An image, by URL or data URI. Marks the conversation multimodal."""

    type: Literal["image"] = "image"
    image: str
    detail: str | None = None


class OtherPart(_Value):
    """Any content part deploysim does not model (audio, file, ...), kept verbatim."""

    type: Literal["other"] = "other"
    kind: str
    data: dict[str, JSONValue] = Field(default_factory=dict)


ContentPart = Annotated[
    TextPart | ReasoningPart | ImagePart | OtherPart, Field(discriminator="type")
]


class ToolCall(_Value):
    """A call an assistant message makes to a tool.

    ``arguments`` is the parsed JSON value. When the log held a JSON *string*, ``raw_arguments``
    keeps that string verbatim unless it is exactly ``json.dumps(arguments)``; when the string
    did not parse, ``parse_error`` says why (and ``arguments`` is ``None``).
    """

    id: str
    function: str
    arguments: JSONValue = None
    raw_arguments: str | None = None
    parse_error: str | None = None


class ToolDef(_Value):
    """A tool offered to the model: name, description and JSON-schema parameters."""

    name: str
    description: str | None = None
    parameters: dict[str, JSONValue] | None = None


class Message(_Value):
    """One message of a conversation.

    ``content`` is a plain string or a tuple of parts. Assistant messages may carry
    ``tool_calls``; tool messages carry ``tool_call_id`` (the call they answer), ``function``
    (the tool's name) and ``error`` (when the tool failed).
    """

    role: Role
    content: str | tuple[ContentPart, ...] = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    function: str | None = None
    error: str | None = None
    name: str | None = None
    id: str | None = None
    model: str | None = None
    timestamp: str | None = None
    metadata: dict[str, JSONValue] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _part_types(cls, data: Any) -> Any:
        """Content parts stored without their ``type`` (:meth:`to_json_dict` omits defaults, and
        each part's ``type`` is its default) get it back from the field that marks the kind."""
        content = data.get("content") if isinstance(data, dict) else None
        if not isinstance(content, list | tuple) or not any(
            isinstance(p, dict) and "type" not in p for p in content
        ):
            return data
        kinds = (
            ("reasoning", "reasoning"),
            ("kind", "other"),
            ("image", "image"),
            ("text", "text"),
        )
        parts = [
            {**p, "type": next((t for key, t in kinds if key in p), "text")}
            if isinstance(p, dict) and "type" not in p
            else p
            for p in content
        ]
        return {**data, "content": parts}

    @property
    def text(self) -> str:
        """The message's visible text (text parts joined; reasoning excluded)."""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(p.text for p in self.content if isinstance(p, TextPart))

    @property
    def reasoning(self) -> str | None:
        """The message's reasoning text, when it has any."""
        if isinstance(self.content, str):
            return None
        parts = [p.reasoning for p in self.content if isinstance(p, ReasoningPart)]
        return "\n".join(parts) if parts else None

    @property
    def is_multimodal(self) -> bool:
        """Whether the message has non-text, non-reasoning content."""
        return not isinstance(self.content, str) and any(
            isinstance(p, ImagePart | OtherPart) for p in self.content
        )

    def content_hash(self) -> str:
        """SHA-256 of the message's canonical JSON (defaults omitted, so new fields keep hashes)."""
        return canonical_hash(self.to_json_dict())

    def to_json_dict(self) -> dict[str, JSONValue]:
        """The message as compact JSON-compatible data (fields at their default omitted)."""
        return self.model_dump(mode="json", exclude_defaults=True)


class Reference(_Value):
    """An alternative logged final assistant response (HH-RLHF ``rejected``, OASST siblings)."""

    label: str
    message: Message


class Provenance(_Value):
    """Where a conversation was seen: not part of its content hash."""

    source_format: str
    source_file: str
    record: int
    source_id: str | None = None
    metadata: dict[str, JSONValue] = Field(default_factory=dict)


class Conversation(_Value):
    """A logged conversation: messages, offered tools, alternative final responses."""

    messages: tuple[Message, ...]
    tools: tuple[ToolDef, ...] = ()
    references: tuple[Reference, ...] = ()
    provenance: Provenance | None = None

    def content_hash(self) -> str:
        """SHA-256 over message hashes, tools and references (provenance excluded).

        Built from the message hashes so the store can compute it without re-serialising.
        """
        return conversation_hash(
            [m.content_hash() for m in self.messages], self.tools, self.references
        )

    @property
    def system_prompt(self) -> str | None:
        """The text of the leading system/developer messages, if any."""
        parts: list[str] = []
        for m in self.messages:
            if m.role not in ("system", "developer"):
                break
            parts.append(m.text)
        return "\n\n".join(parts) if parts else None

    @property
    def n_user_turns(self) -> int:
        """Number of user messages."""
        return sum(1 for m in self.messages if m.role == "user")

    @property
    def n_tool_calls(self) -> int:
        """Number of tool calls made by assistant messages."""
        return sum(len(m.tool_calls) for m in self.messages)

    @property
    def is_multimodal(self) -> bool:
        """Whether any message has non-text content (excluded from replay by default)."""
        return any(m.is_multimodal for m in self.messages)

    def tool_results(self) -> Iterator[tuple[ToolCall, Message | None]]:
        """Each tool call with the tool message that answers it (``None`` when unanswered).

        A result answers the nearest earlier unanswered call with its id: real logs (tau-bench)
        reuse call ids, so matching by id alone would pair results with the wrong calls.
        """
        calls: list[ToolCall] = []
        results: list[Message | None] = []
        for m in self.messages:
            for call in m.tool_calls:
                calls.append(call)
                results.append(None)
            if m.role == "tool":
                for i in range(len(calls) - 1, -1, -1):
                    if calls[i].id == m.tool_call_id and results[i] is None:
                        results[i] = m
                        break
        yield from zip(calls, results, strict=True)


def conversation_hash(
    message_hashes: list[str], tools: tuple[ToolDef, ...], references: tuple[Reference, ...]
) -> str:
    """The content hash of a conversation from its parts (see :meth:`Conversation.content_hash`)."""
    return canonical_hash(
        {
            "messages": message_hashes,
            "tools": [t.model_dump(mode="json", exclude_defaults=True) for t in tools],
            "references": [r.model_dump(mode="json", exclude_defaults=True) for r in references],
        }
    )


def canonical_json(value: JSONValue) -> str:
    """Canonical JSON text: sorted keys, no insignificant whitespace, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_hash(value: JSONValue) -> str:
    """SHA-256 hex digest of :func:`canonical_json`."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()
