"""Walking every text field of a conversation: message texts and parts, tool calls (parsed
arguments and their raw JSON, kept byte-identical), tool results that are JSON, metadata (with
account-like keys dropped) and logged reference replies. :class:`Walker` applies one function
to each text, with a hint of the JSON key it sits under; :mod:`deploysim.privacy.deid` uses it
twice, to collect texts and to rewrite them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from deploysim.schema import (
    Conversation,
    JSONValue,
    Message,
    OtherPart,
    ReasoningPart,
    Reference,
    TextPart,
    ToolCall,
)

ACCOUNT_KEY = re.compile(  # metadata keys that name an account, a device or a contact
    r"(?:^|_)(?:user|account|acct|org|organi[sz]ation|customer|member|device|client|tenant|"
    r"session|visitor|subscriber|owner|employee)(?:_?(?:id|hash|name|email|key))?$|e_?mail|"
    r"(?:^|_)ip(?:_|$)|ip_?(?:address|hash)|user_?agent|(?:^|_)phone|^headers?$|^cookies?$|"
    r"^(?:name|username|login|author|sender|recipient)$"
)


TextFn = Callable[[str, str | None], str]
"""A text's replacement, given the text and the normalised JSON key it sits under."""


def norm_key(key: str) -> str:
    """A JSON key in lower snake case (``"User-ID"`` -> ``"user_id"``)."""
    return re.sub(r"[^a-z0-9]+", "_", key.lower()).strip("_")


def walk_json(value: JSONValue, fn: TextFn, key_fn: Callable[[str], str], hint: str | None) -> Any:
    """``value`` with ``fn`` applied to every string (hinted by its key) and ``key_fn`` to keys."""
    if isinstance(value, dict):
        return {key_fn(k): walk_json(v, fn, key_fn, norm_key(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [walk_json(v, fn, key_fn, hint) for v in value]
    if isinstance(value, str):
        return fn(value, hint)
    return value


def json_text_value(text: str) -> tuple[Any, dict[str, Any]] | None:
    """The JSON value in ``text`` and the ``json.dumps`` options that reproduce it exactly."""
    if text[:1] not in "{[":
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    for opts in (
        {},
        {"separators": (",", ":")},
        {"ensure_ascii": False},
        {"separators": (",", ":"), "ensure_ascii": False},
    ):
        if json.dumps(value, **opts) == text:
            return value, opts
    return None


@dataclass
class Walker:
    """Applies ``fn`` to every text of a conversation (``key_fn`` to JSON object keys)."""

    fn: TextFn
    key_fn: Callable[[str], str]
    drop_keys: bool = False
    dropped: int = 0
    model_answers: bool = True
    """Whether a model wrote the assistant turns (not so for :data:`PEOPLE_ANSWER` formats)."""
    model: bool = False
    """Whether the text being walked was written by the logged model (an assistant turn)."""

    def json_text(self, text: str, hint: str | None = None) -> str:
        parsed = json_text_value(text)
        if parsed is None:
            return self.fn(text, hint)
        value, opts = parsed
        return json.dumps(walk_json(value, self.fn, self.key_fn, hint), **opts)

    def metadata(self, meta: dict[str, JSONValue]) -> dict[str, JSONValue]:
        kept = {k: v for k, v in meta.items() if not ACCOUNT_KEY.search(norm_key(k))}
        self.dropped += len(meta) - len(kept)
        return dict(walk_json(kept, self.fn, self.key_fn, None))

    def call(self, call: ToolCall) -> ToolCall:
        args = walk_json(call.arguments, self.fn, self.key_fn, None)
        raw = call.raw_arguments
        if raw is not None:
            parsed = json_text_value(raw)
            if parsed is not None and parsed[0] == call.arguments:
                raw = json.dumps(args, **parsed[1])
            else:
                raw = self.fn(raw, None)
        return call.model_copy(update={"arguments": args, "raw_arguments": raw})

    def message(self, m: Message) -> Message:
        self.model = self.model_answers and m.role == "assistant"
        try:
            return self._message(m)
        finally:
            self.model = False

    def _message(self, m: Message) -> Message:
        update: dict[str, Any] = {}
        if isinstance(m.content, str):
            update["content"] = (
                self.json_text(m.content) if m.role == "tool" else self.fn(m.content, None)
            )
        else:
            update["content"] = tuple(self.part(p) for p in m.content)
        update["tool_calls"] = tuple(self.call(c) for c in m.tool_calls)
        if m.error is not None:
            update["error"] = self.fn(m.error, None)
        if m.name is not None:
            update["name"] = self.fn(m.name, "full_name" if m.role == "user" else None)
        update["metadata"] = self.metadata(m.metadata)
        return m.model_copy(update=update)

    def part(self, p: Any) -> Any:
        if isinstance(p, TextPart):
            return p.model_copy(update={"text": self.fn(p.text, None)})
        if isinstance(p, ReasoningPart):
            summary = None if p.summary is None else self.fn(p.summary, None)
            return p.model_copy(
                update={"reasoning": self.fn(p.reasoning, None), "summary": summary}
            )
        if isinstance(p, OtherPart):
            return p.model_copy(update={"data": walk_json(p.data, self.fn, self.key_fn, None)})
        return p

    def conversation(self, conv: Conversation) -> Conversation:
        messages = tuple(self.message(m) for m in conv.messages)
        refs = tuple(
            Reference(label=r.label, message=self.message(r.message)) for r in conv.references
        )
        return conv.model_copy(update={"messages": messages, "references": refs})
