"""State consistency for answered tool calls: the ids a call names must exist in the state.

A replayed agent can call a tool with an id it made up (a reservation the user never had). A
simulator model, asked for that tool's output, invents a plausible success; the real system
answers with an error. This module keeps the simulated world consistent with the trajectory:

- **Which arguments are ids.** Recognised by name (``user_id``, ``orderId``, ``flight_number``,
  ``payment_ids``, ... at any depth of the arguments) or by value (one token mixing letters and
  digits, such as ``ab_12`` or ``XK42Q``; dates and e-mail addresses are not ids).
- **What the state is.** Every token of the system prompt, the user's messages and the
  successful tool results seen so far, the logged prefix's and this replay's own. The
  assistant's words and calls are not evidence (it is the party that might invent ids), nor
  are failed results (which name the id they refused).
- **The answer to an unknown id** is an error in the shape the logged tools use for "not found":
  learned from logged errors (this trajectory's first, then the whole corpus), e.g. a text such
  as ``Failure: order ab_12 not found`` or a JSON object with such a message; a generic
  ``Error: <thing> <id> not found`` when the logs hold none.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from deploysim.schema import Message

# snake_case names after camelCase is split; the last word says what the argument is.
_ID_NAME = re.compile(r"(?:^|_)(?:id|ids|uuid|number|numbers|no|code|key|ref|reference|sku)$")
_ID_VALUE = re.compile(r"^(?=[^\s]*\d)(?=[^\s]*[A-Za-z])[A-Za-z0-9][A-Za-z0-9_.:#/-]{2,79}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:#/-]*")
_NOT_FOUND = re.compile(r"^(?P<lead>[^:]{0,20}:\s*)?(?P<body>.*?)\s*not found(?P<tail>\W*)$", re.I)
GENERIC_LEAD = "Error: "


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def is_id_name(name: str) -> bool:
    """Whether an argument's name says it holds an identifier."""
    return bool(_ID_NAME.search(_snake(name)))


def is_id_value(value: str) -> bool:
    """Whether a string looks like an identifier by itself: one token of letters and digits."""
    return bool(_ID_VALUE.match(value)) and not _DATE.match(value)


@dataclass(frozen=True, slots=True)
class IdArgument:
    """One identifier a call names: the argument's name (innermost key) and its value."""

    name: str
    value: str


def id_arguments(arguments: Any, name: str = "") -> Iterator[IdArgument]:
    """Every id-like leaf of a call's arguments, in order (lists inherit their key's name)."""
    if isinstance(arguments, dict):
        for key, value in arguments.items():
            yield from id_arguments(value, str(key))
    elif isinstance(arguments, list):
        for value in arguments:
            yield from id_arguments(value, name)
    elif isinstance(arguments, str):
        value = arguments.strip()
        spaced = any(c.isspace() for c in value)
        if value and not spaced and ((name and is_id_name(name)) or is_id_value(value)):
            yield IdArgument(name, value)
    elif isinstance(arguments, int) and not isinstance(arguments, bool) and is_id_name(name):
        yield IdArgument(name, str(arguments))


def _tokens(text: str) -> Iterator[str]:
    for token in _TOKEN.findall(text):
        yield token.rstrip(".:#/-").lower()


def is_failure(message: Message) -> bool:
    """Whether a tool result is a failure (an error field, or a text starting with "Error")."""
    return bool(message.error) or message.text.lstrip().lower().startswith("error")


@dataclass(frozen=True, slots=True)
class State:
    """The identifiers a trajectory has shown so far (lower-cased tokens)."""

    tokens: frozenset[str]

    @classmethod
    def of(cls, messages: Iterable[Message]) -> State:
        """The state visible in ``messages``: system and user texts, successful tool results."""
        tokens: set[str] = set()
        for m in messages:
            if m.role in ("system", "developer", "user") or (
                m.role == "tool" and not is_failure(m)
            ):
                tokens.update(_tokens(m.text))
        return cls(frozenset(tokens))

    def unknown(self, arguments: Any) -> IdArgument | None:
        """The first id the arguments name that the state has never shown, or None."""
        for arg in id_arguments(arguments):
            if arg.value.lower().rstrip(".:#/-") not in self.tokens:
                return arg
        return None


def _entity(name: str) -> str:
    """The thing an id argument names, from its name: ``reservation_id`` -> ``reservation``."""
    words = _snake(name).split("_")
    while len(words) > 1 and _ID_NAME.search(words[-1]):
        words.pop()
    return " ".join(words) if words and words != [""] else "item"


@dataclass(frozen=True, slots=True)
class _Parsed:
    lead: str
    entity: str
    with_id: bool
    tail: str
    json_key: str | None
    json_object: tuple[tuple[str, Any], ...]


@dataclass(frozen=True, slots=True)
class NotFoundShape:
    """A logged "not found" error: its lead (``Error: ``), the thing's name, whether it names
    the id, its tail, and (for JSON errors) the object and key holding the message."""

    lead: str
    with_id: bool
    tail: str = ""
    json_key: str | None = None
    json_object: tuple[tuple[str, Any], ...] = ()
    entities: tuple[str, ...] = ()  # the things the logged errors named, most common first

    def render(self, arg: IdArgument) -> str:
        """The error for an unknown ``arg``, in this shape."""
        entity = _entity(arg.name)
        # A logged name that extends the argument's ("payment" -> "payment method") is the
        # tool's own wording.
        entity = next((e for e in self.entities if e.lower().startswith(entity.lower())), entity)
        body = f"{entity} {arg.value}" if self.with_id else entity
        text = f"{self.lead}{body} not found{self.tail}"
        if self.json_key is None:
            return text
        obj = dict(self.json_object)
        obj[self.json_key] = text
        return json.dumps(obj)


def _parse_not_found(text: str) -> _Parsed | None:
    message, key, obj = text.strip(), None, {}
    if message.startswith("{"):
        try:
            value = json.loads(message)
        except json.JSONDecodeError:
            return None
        if not isinstance(value, dict):
            return None
        found = [k for k, v in value.items() if isinstance(v, str) and "not found" in v.lower()]
        if not found:
            return None
        key, obj, message = found[0], value, value[found[0]]
    m = _NOT_FOUND.match(message)
    if m is None or "\n" in message:
        return None
    words = m.group("body").split()
    with_id = bool(words) and (is_id_value(words[-1]) or (len(words) > 1 and "_" in words[-1]))
    entity = " ".join(words[:-1] if with_id else words)
    return _Parsed(
        lead=m.group("lead") or "",
        entity=entity,
        with_id=with_id,
        tail=m.group("tail"),
        json_key=key,
        json_object=tuple(sorted((k, v) for k, v in obj.items() if k != key)),
    )


GENERIC = NotFoundShape(lead=GENERIC_LEAD, with_id=True)


def not_found_shape(*failures: Sequence[str]) -> NotFoundShape:
    """The most common "not found" shape among logged failure texts, the first group that has
    one winning (this trajectory's errors, then the corpus's); the generic shape otherwise.
    Shapes that name the id win ties (the more informative error)."""
    for group in failures:
        parsed = [p for p in map(_parse_not_found, group) if p is not None]
        if not parsed:
            continue
        shapes = Counter((p.lead, p.with_id, p.tail, p.json_key, p.json_object) for p in parsed)
        (lead, with_id, tail, key, obj), _ = max(shapes.items(), key=lambda kv: (kv[1], kv[0][1]))
        entities = Counter(p.entity for p in parsed if p.entity)
        return NotFoundShape(
            lead, with_id, tail, key, obj, tuple(e for e, _ in entities.most_common())
        )
    return GENERIC


def logged_failures(messages: Iterable[Message]) -> list[str]:
    """The failure texts among the tool results of ``messages``."""
    return [m.text or m.error or "" for m in messages if m.role == "tool" and is_failure(m)]
