"""Message content: the one reader of content parts that every format's converter uses.

Formats agree on the frame (content is a string, a list of typed parts or null; each part an
object with a ``type``) and differ in the part types they name. A converter passes a table of
:data:`PartReader` by type; a type it does not name is kept as an :class:`OtherPart` with its
fields, never dropped, so nothing a log held is lost at ingest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from deploysim.errors import RecordError
from deploysim.ingest.common import require
from deploysim.schema import ContentPart, ImagePart, OtherPart, ReasoningPart, TextPart

PartReader = Callable[[dict[str, Any], str], ContentPart | None]
"""Reads one part (``where`` names it in errors); ``None`` keeps it as an :class:`OtherPart`."""


def read_content(
    raw: Any, where: str, readers: Mapping[str, PartReader], *, merge: bool = False
) -> str | tuple[ContentPart, ...]:
    """A message's content: a string as it is, null as ``""``, a list part by part.

    ``merge``: one text part becomes a plain string (:func:`simplify`), for formats whose logs
    store the same message either way.
    """
    if raw is None:
        return ""
    if isinstance(raw, str):
        return raw
    if not isinstance(raw, list):
        raise RecordError(f"{where} 'content' must be a string, a list of parts or null")
    parts: list[ContentPart] = []
    for k, p in enumerate(raw):
        at = f"{where} content part {k}"
        kind = require(p, "type", str, at)
        reader = readers.get(kind)
        part = reader(p, at) if reader is not None else None
        parts.append(other_part(kind, p) if part is None else part)
    return simplify(parts) if merge else tuple(parts)


def text_part(p: dict[str, Any], where: str) -> TextPart:
    """A part whose text is its required ``text`` field."""
    return TextPart(text=require(p, "text", str, where))


def reasoning_part(p: dict[str, Any], where: str, key: str = "reasoning") -> ReasoningPart:
    """A reasoning part: required text under ``key``; summary, signature, redacted if present."""
    return ReasoningPart(
        reasoning=require(p, key, str, where),
        summary=str_field(p, "summary"),
        signature=str_field(p, "signature"),
        redacted=bool(p.get("redacted", False)),
    )


def image_url(p: dict[str, Any]) -> str | None:
    """The URL of an OpenAI ``image_url`` part (a string, or ``{url, detail}``)."""
    url = p.get("image_url")
    url = url.get("url") if isinstance(url, dict) else url
    return url if isinstance(url, str) else None


def image_part(p: dict[str, Any], key: str) -> ImagePart | None:
    """An image part from the URL (or data URL) under ``key``, with its ``detail``; ``None``
    when there is no such string."""
    image = str_field(p, key)
    return None if image is None else ImagePart(image=image, detail=str_field(p, "detail"))


def other_part(kind: str, p: dict[str, Any]) -> OtherPart:
    """A part of a type deploysim does not model, kept with all its fields."""
    return OtherPart(kind=kind, data={key: v for key, v in p.items() if key != "type"})


def str_field(obj: dict[str, Any], key: str) -> str | None:
    """``obj[key]`` when it is a string; else ``None`` (optional fields logs fill loosely)."""
    value = obj.get(key)
    return value if isinstance(value, str) else None


def simplify(parts: list[ContentPart]) -> str | tuple[ContentPart, ...]:
    """Content parts as a plain string when they are one text part (how chat logs store it), so
    that the same message read from two shapes is the same value."""
    if len(parts) == 1 and isinstance(parts[0], TextPart):
        return parts[0].text
    if not parts:
        return ""
    return tuple(parts)
