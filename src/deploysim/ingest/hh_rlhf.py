"""Anthropic HH-RLHF transcripts: ``{"chosen": "\\n\\nHuman: ...\\n\\nAssistant: ...", ...}``.

``chosen`` is the conversation; ``rejected``'s final assistant turn is kept as a reference when it
shares ``chosen``'s prefix. The red-team file's ``transcript`` uses the same layout.
"""

from __future__ import annotations

import re
from typing import Any

from deploysim.errors import RecordError
from deploysim.ingest.common import Found, clean_metadata
from deploysim.schema import Conversation, Message, Reference

_TURN = re.compile(r"\n\n(Human|Assistant):")
_ROLE = {"Human": "user", "Assistant": "assistant"}


def split_transcript(text: str, where: str) -> tuple[Message, ...]:
    """Split an HH transcript into user/assistant messages, as logged: a few real transcripts
    have two turns of one speaker in a row, and they are kept so (not rejected)."""
    pieces = _TURN.split(text)
    if pieces[0].strip():
        raise RecordError(f"{where} has text before the first '\\n\\nHuman:'")
    messages = [
        Message(role=_ROLE[speaker], content=body.strip())
        for speaker, body in zip(pieces[1::2], pieces[2::2], strict=True)
    ]
    if messages and messages[0].role != "user":
        raise RecordError(f"{where} starts with an Assistant turn; a transcript opens with Human")
    if not messages:
        raise RecordError(f"{where} has no '\\n\\nHuman:' turns")
    return tuple(messages)


def convert(value: Any) -> list[Found]:
    """One HH-RLHF (or red-team ``transcript``) record."""
    if not isinstance(value, dict):
        raise RecordError("record must be a JSON object with 'chosen' (or 'transcript')")
    key = "chosen" if "chosen" in value else "transcript"
    text = value.get(key)
    if not isinstance(text, str):
        raise RecordError("record has no 'chosen' (or 'transcript') string")
    messages = split_transcript(text, key)
    meta = clean_metadata(value, skip=frozenset({"chosen", "rejected", "transcript"}))
    references: tuple[Reference, ...] = ()
    rejected = value.get("rejected")
    if isinstance(rejected, str) and messages[-1].role == "assistant":
        try:
            alt = split_transcript(rejected, "rejected")
        except RecordError as e:
            # The chosen conversation is good: keep it, note why there is no reference.
            meta["rejected_unparsable"] = e.reason
            alt = ()
        if not alt:
            pass
        elif alt[:-1] == messages[:-1] and alt[-1].role == "assistant":
            references = (Reference(label="rejected", message=alt[-1]),)
        else:
            # Keep the conversation; the rejected text answers a different prefix.
            meta["rejected_prefix_differs"] = True
    return [Found(Conversation(messages=messages, references=references), None, meta)]
