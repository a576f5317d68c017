"""The realism check: can a judge tell a replayed continuation from the logged one?

A judge sees the shared prefix and two continuations in random order, the logged one and the
replay (with its simulated tool results), and picks the real one. The replay's *win rate* is how
often the judge picks the replay as real: 50% means indistinguishable, far below 50% means the
replay environment (typically the tool simulator) gives itself away. Reported overall and per
tool, with Jeffreys intervals.

A judge that cannot tell anything apart also reports about 50%, so the judge is validated with
**positive controls** (:func:`run_controls`): the logged continuation against a deliberately
broken copy of itself (words shuffled, tool results in no format, an assistant in a shouting
style). The catch rate is how often it picks the logged one; a judge that catches under 90% of
them says little about a replay's win rate.

Small judges prefer a position; ``both_orders`` asks each question in both orders and averages
the two answers (twice the calls), so a position preference cancels.

The judge is one of the ``discriminator`` choices: ``judge`` (a model, above), ``consistency``
and ``consistency-tools`` (:mod:`deploysim.realism.consistency`: no model; each continuation
checked against the store's tool records and the prefix). Results carry the discriminator's
identity (name, version, hash). Controls add ``other_world`` (tool results of another
conversation) and, given a writer model, ``other_model`` (assistant texts it writes).

The simulator alone, on logged calls and without a candidate (the method's ablation: blind or
seeing the logged trajectory), is :mod:`deploysim.realism.simulated`.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from deploysim.errors import UsageError
from deploysim.models import GenerateConfig, Model, ModelError, ModelSpec, get_model
from deploysim.prefixes import load_prefix
from deploysim.schema import Message, canonical_hash
from deploysim.stage import Bar
from deploysim.store import Store

from . import consistency
from .discriminators import (
    DISCRIMINATORS,
    PROMPT,
    SYSTEM,
    DiscriminatorName,
    Item,
    RealismSettings,
    discriminator_for,
    judge_all,
    rate_of,
    summarize,
)

__all__ = [
    "CATCH_TARGET",
    "CONTROL_KINDS",
    "DISCRIMINATORS",
    "NO_FORMAT",
    "PROMPT",
    "SYSTEM",
    "ControlKind",
    "DiscriminatorName",
    "RealismSettings",
    "StoredReplay",
    "broken",
    "run_controls",
    "run_realism",
    "stored_replays",
    "summarize",
]


@dataclass(frozen=True, slots=True)
class StoredReplay:
    """One stored replay that completed: its ids, conversation and new messages."""

    id: int
    prefix_id: int
    conversation: str
    messages: tuple[Message, ...]


def stored_replays(
    store: Store, model: str, sample: str | None = None, spec: str | None = None
) -> list[StoredReplay]:
    """The completed replays of ``model`` (canonical spec), of one sample and one replay spec
    (hash or its prefix) when given, in replay order."""
    cond, args = "", [model]
    if sample:
        cond += " AND p.sample_id = (SELECT id FROM samples WHERE name = ?)"
        args.append(sample)
    if spec:
        cond += " AND r.spec_hash LIKE ?"
        args.append(spec + "%")
    rows = store.db.execute(
        "SELECT r.id, r.prefix_id, p.conversation_hash, r.response FROM replays r "
        "JOIN replay_specs s ON s.hash = r.spec_hash JOIN prefixes p ON p.id = r.prefix_id "
        f"WHERE s.model = ? AND r.status = 'ok'{cond} ORDER BY r.id",
        args,
    ).fetchall()
    return [
        StoredReplay(rid, pid, chash, tuple(Message.model_validate(m) for m in json.loads(body)))
        for rid, pid, chash, body in rows
    ]


def run_realism(
    store: Store,
    *,
    judge: str | None = None,
    model: str,
    spec: str | None = None,
    settings: RealismSettings = RealismSettings(),
    judge_model: Model | None = None,
    on_progress: Bar | None = None,
    discriminator: DiscriminatorName = "judge",
) -> dict[str, Any]:
    """Judge replays of ``model`` (of replay spec ``spec`` when given: a hash or its prefix)
    against the logged continuations with ``discriminator`` (``judge``: the model ``judge``);
    see the module docstring."""
    model = str(ModelSpec.parse(model))
    rows = stored_replays(store, model, settings.sample, spec)
    if settings.prefixes is not None:
        keep = set(settings.prefixes)
        rows = [r for r in rows if r.prefix_id in keep]
    items = []
    for r in rows:
        prefix = load_prefix(store, r.prefix_id)
        if not prefix.continuation:
            continue  # nothing logged to compare with
        tools = sorted({c.function for m in r.messages for c in m.tool_calls})
        order = random.Random(canonical_hash([settings.seed, r.id])).random() < 0.5
        items.append(Item(prefix.messages, prefix.continuation, r.messages, tools, order))
    items = items[: settings.limit] if settings.limit else items
    disc = discriminator_for(store, discriminator, judge, judge_model, settings)
    results = asyncio.run(judge_all(disc, items, on_progress))
    out = summarize(results, judge=judge or discriminator, model=model, n_replays=len(rows))
    out.update(spec=spec, both_orders=settings.both_orders, discriminator=disc.identity)
    return out


ControlKind = Literal["shuffled", "no_format", "shouting", "other_world", "other_model"]
CONTROL_KINDS: tuple[ControlKind, ...] = ("shuffled", "no_format", "shouting", "other_world")
NO_FORMAT = "@@ 0 ~~ null ;; ## ??"  # a tool result in no format any tool uses
CATCH_TARGET = 0.9
WRITER_TURNS = 6  # the writer of ``other_model`` controls sees this many last messages


def broken(
    messages: Sequence[Message], kind: ControlKind, rng: random.Random
) -> tuple[Message, ...] | None:
    """A deliberately broken copy of a logged continuation (None when ``kind`` changes
    nothing in it): ``shuffled`` shuffles the words of every assistant text and tool result,
    ``no_format`` replaces tool results with text in no format, ``shouting`` rewrites the
    assistant's texts in capitals with exclamations (a different model's style). The kinds
    that need the store or a model are built by :func:`run_controls`."""
    out: list[Message] = []
    changed = False
    for m in messages:
        text = m.text
        new = text
        if kind == "shuffled" and text and m.role in ("assistant", "tool"):
            words = text.split()
            rng.shuffle(words)
            new = " ".join(words)
        elif kind == "no_format" and m.role == "tool":
            new = NO_FORMAT
        elif kind == "shouting" and text and m.role == "assistant":
            new = f"OMG!!! {text.upper()} LOL!!!"
        changed |= new != text
        out.append(m if new == text else m.model_copy(update={"content": new}))
    return tuple(out) if changed else None


async def _rewritten(
    writer: Model, prefix: Sequence[Message], messages: Sequence[Message]
) -> tuple[Message, ...] | None:
    """``messages`` with each assistant text written anew by ``writer`` (another real model)
    from the conversation's last turns; None when it has no text or the writer fails."""
    out: list[Message] = []
    changed = False
    for m in messages:
        if m.role == "assistant" and m.text.strip():
            seen = [x for x in (*prefix, *out) if x.role in ("user", "assistant")]
            context = [x.model_copy(update={"tool_calls": ()}) for x in seen[-WRITER_TURNS:]]
            config = GenerateConfig(temperature=0.0, max_tokens=200, seed=0)
            try:
                gen = await writer.generate(context, (), config)
            except ModelError:
                return None
            if gen.text.strip() and gen.text.strip() != m.text.strip():
                out.append(m.model_copy(update={"content": gen.text.strip()}))
                changed = True
                continue
        out.append(m)
    return tuple(out) if changed else None


async def _control_items(
    store: Store,
    pids: Sequence[int],
    kinds: Sequence[ControlKind],
    settings: RealismSettings,
    profiles: consistency.Profiles,
    writer: Model | None,
) -> tuple[list[Item], int]:
    items: list[Item] = []
    used = 0
    try:
        for pid in pids:
            if settings.limit and used >= settings.limit:
                break
            prefix = load_prefix(store, pid)
            if not prefix.continuation:
                continue
            used += 1
            for kind in kinds:
                rng = random.Random(canonical_hash([settings.seed, pid, kind]))
                copy: tuple[Message, ...] | None
                if kind == "other_world":
                    seed = rng.randrange(2**31)
                    copy = consistency.other_world(
                        prefix.continuation, prefix.conversation_hash, profiles, seed
                    )
                elif kind == "other_model":
                    if writer is None:
                        raise UsageError("the other_model control needs a writer model")
                    copy = await _rewritten(writer, prefix.messages, prefix.continuation)
                else:
                    copy = broken(prefix.continuation, kind, rng)
                if copy is not None:
                    first = rng.random() < 0.5
                    items.append(Item(prefix.messages, prefix.continuation, copy, [kind], first))
    finally:
        if writer is not None:
            await writer.aclose()
    return items, used


def run_controls(
    store: Store,
    *,
    judge: str | None = None,
    kinds: Sequence[ControlKind] = CONTROL_KINDS,
    settings: RealismSettings = RealismSettings(),
    judge_model: Model | None = None,
    on_progress: Bar | None = None,
    discriminator: DiscriminatorName = "judge",
    writer: str | Model | None = None,
) -> dict[str, Any]:
    """The discriminator's catch rate on positive controls: for each stored prefix (of the
    settings' sample or prefix ids; the first ``limit``) with a logged continuation, that
    continuation against each ``kinds`` broken copy, judged like a replay. Caught: the
    discriminator calls the logged one real. ``other_world`` takes the tool results of other
    stored conversations; ``other_model`` (only with a ``writer`` model spec) has the writer
    write the assistant texts. ``validated`` counts undecided answers as misses."""
    cond, args = "", []
    if settings.sample:
        cond = " WHERE sample_id = (SELECT id FROM samples WHERE name = ?)"
        args.append(settings.sample)
    ids = [row[0] for row in store.db.execute(f"SELECT id FROM prefixes{cond} ORDER BY id", args)]
    if settings.prefixes is not None:
        keep = set(settings.prefixes)
        ids = [i for i in ids if i in keep]
    kinds = [*kinds, "other_model"] if writer is not None and "other_model" not in kinds else kinds
    # Tool profiles read every stored conversation with tool calls: only when needed.
    need = discriminator != "judge" or "other_world" in kinds
    profiles = consistency.store_profiles(store) if need else consistency.Profiles()
    writer_m = get_model(writer) if isinstance(writer, str) else writer
    items, used = asyncio.run(_control_items(store, ids, kinds, settings, profiles, writer_m))
    disc = discriminator_for(store, discriminator, judge, judge_model, settings, profiles)
    results = asyncio.run(judge_all(disc, items, on_progress))
    per_kind: dict[str, list[bool]] = defaultdict(list)
    strict: dict[str, list[bool]] = defaultdict(list)
    for labels, p in results:
        if p is not None:
            strict[labels[0]].append(p < 0.5)
            if p != 0.5:
                per_kind[labels[0]].append(p < 0.5)
    caught = [c for v in per_kind.values() for c in v]
    overall = rate_of(caught, "catch_rate")
    # An undecided answer is a control the discriminator did not catch.
    strict_all = rate_of([c for v in strict.values() for c in v], "catch_rate")
    return {
        "judge": judge or discriminator,
        "discriminator": disc.identity,
        "writer": None if writer_m is None else str(writer_m.spec),
        "prefixes": used,
        "judged": len(caught),
        "unjudgeable": sum(1 for _, p in results if p is None),
        "undecided": sum(1 for _, p in results if p == 0.5),
        "overall": overall,
        "overall_strict": strict_all,
        "per_kind": {k: rate_of(v, "catch_rate") for k, v in sorted(per_kind.items())},
        "per_kind_strict": {k: rate_of(v, "catch_rate") for k, v in sorted(strict.items())},
        "target": CATCH_TARGET,
        "validated": bool(caught) and strict_all["catch_rate"] >= CATCH_TARGET,
        "both_orders": settings.both_orders,
        "created_at": time.time(),
    }
