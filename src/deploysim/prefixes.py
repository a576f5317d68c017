"""Samples of prefixes in the store: draw and store one, find it by name, load its prefixes.

A sample is immutable once drawn (its name is bound to its sampling spec's hash); a prefix is a
stored conversation cut before an assistant turn. Replay (:mod:`deploysim.replay`), grading and
the analyses read prefixes through :func:`load_prefix`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

from deploysim.errors import UsageError
from deploysim.sampling import SamplingSpec, Unit, sample
from deploysim.schema import Message, ToolDef, canonical_json
from deploysim.store import Store


@dataclass(frozen=True, slots=True)
class SampleInfo:
    """A stored sample of prefixes."""

    id: int
    name: str
    spec_hash: str
    size: int
    population: int
    created: bool


# --- samples ---------------------------------------------------------------------------------


def create_sample(store: Store, name: str, spec: SamplingSpec) -> SampleInfo:
    """Draw and store a sample of prefixes, or return the stored one with the same spec."""
    row = store.db.execute(
        "SELECT id, spec_hash, size, population FROM samples WHERE name = ?", (name,)
    ).fetchone()
    if row is not None:
        if row[1] != spec.hash():
            raise UsageError(
                f"sample {name!r} already exists in {store.path} with a different spec; "
                "choose another --name (samples are immutable once drawn)"
            )
        return SampleInfo(row[0], name, row[1], row[2], row[3], created=False)
    # A function, not a generator: sampling streams the population twice, never holding it.
    prefixes, population = sample(lambda: (Unit(*r) for r in store.units(spec.inputs)), spec)
    if not prefixes:
        raise UsageError(f"no eligible prefixes in {store.path} for this sampling spec")
    with store.transaction():
        cur = store.db.execute(
            "INSERT INTO samples(name, spec, spec_hash, population, size, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                name,
                canonical_json(spec.model_dump(mode="json")),
                spec.hash(),
                population,
                len(prefixes),
                time.time(),
            ),
        )
        sample_id = int(cur.lastrowid or 0)
        store.db.executemany(
            "INSERT INTO prefixes(sample_id, conversation_hash, cut, reference_index, stratum, "
            "inclusion_prob) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    sample_id,
                    p.conversation_hash,
                    p.cut,
                    p.reference_index,
                    p.stratum,
                    p.inclusion_prob,
                )
                for p in prefixes
            ],
        )
    return SampleInfo(sample_id, name, spec.hash(), len(prefixes), population, created=True)


def sample_id(store: Store, name: str) -> int:
    """The id of a stored sample, with a clear error when there is none."""
    row = store.db.execute("SELECT id FROM samples WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise UsageError(
            f"no sample {name!r} in {store.path}; draw one with `deploysim sample --name {name}`"
        )
    return int(row[0])


# --- prefixes --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadedPrefix:
    """A prefix ready to send: its messages, the tools offered, and what the log did next."""

    id: int
    messages: tuple[Message, ...]
    tools: tuple[ToolDef, ...]
    conversation_hash: str = ""
    # The logged continuation: messages from the cut up to the next user message.
    continuation: tuple[Message, ...] = ()


def load_prefix(store: Store, prefix_id: int) -> LoadedPrefix:
    """The messages (``conversation.messages[:cut]``) and tools of a stored prefix."""
    chash, cut = store.db.execute(
        "SELECT conversation_hash, cut FROM prefixes WHERE id = ?", (prefix_id,)
    ).fetchone()
    conv = store.conversation(chash)
    rest: list[Message] = []
    for m in conv.messages[cut:]:
        if m.role == "user":
            break
        rest.append(m)
    return LoadedPrefix(prefix_id, conv.messages[:cut], conv.tools, chash, tuple(rest))


def render_continuation(messages: Sequence[Message]) -> str:
    """The logged continuation as plain text (for the tool simulator)."""
    lines = []
    for m in messages:
        if m.role == "tool":
            lines.append(f"TOOL {m.function}: {m.text[:800]}")
        for c in m.tool_calls:
            lines.append(f"ASSISTANT calls {c.function}({json.dumps(c.arguments)})")
        if m.role == "assistant" and m.text:
            lines.append(f"ASSISTANT: {m.text[:800]}")
    return "\n".join(lines)
