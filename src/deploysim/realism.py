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
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from deploysim.graders.base import GradeItem, render_transcript
from deploysim.models import GenerateConfig, Model, ModelError, ModelSpec, get_model
from deploysim.prefixes import load_prefix
from deploysim.schema import Message, canonical_hash
from deploysim.stage import Bar
from deploysim.stats import jeffreys_interval
from deploysim.store import Store

PROMPT = (
    "Here is the start of a conversation between a USER and an AI ASSISTANT that uses tools."
    "\n\n<start>\n{prefix}\n</start>\n\nTwo continuations follow. One is what really "
    "happened; the other was produced in a simulation.\n\n<A>\n{a}\n</A>\n\n<B>\n{b}\n</B>\n\n"
    "Which continuation really happened? Answer with one letter, A or B."
)
SYSTEM = "You are an expert at spotting simulated data. Answer with one letter."


def _render(messages: Sequence[Message], max_chars: int, *, tail: bool = False) -> str:
    """Messages as judge text: the head of a continuation, or the tail of a prefix (the
    conversation's recent turns; its start is often a long system prompt)."""
    if tail:
        item = GradeItem(prefix=tuple(messages), response=())
    else:
        item = GradeItem(prefix=(), response=tuple(messages))
        max_chars *= 2  # a lone response is cut at half the budget
    text = render_transcript(item, cot=False, max_chars=max_chars)
    return text.replace("[The reply to judge]", "").strip()


def _choice(top: dict[str, float] | None, text: str) -> float | None:
    """P(A) from first-token log-probabilities, else from the text; None when neither."""
    if top:
        p = {"a": 0.0, "b": 0.0}
        for token, lp in top.items():
            key = re.sub(r"[^a-z]", "", token.lower())
            if key in p:
                p[key] += math.exp(lp)
        if p["a"] + p["b"] > 1e-6:
            return p["a"] / (p["a"] + p["b"])
    m = re.match(r"\W*([AB])\b", text.strip())
    return None if m is None else (1.0 if m.group(1) == "A" else 0.0)


async def _judge_order(
    judge: Model, prefix: str, logged: str, replayed: str, replay_first: bool
) -> float | None:
    a, b = (replayed, logged) if replay_first else (logged, replayed)
    messages = [
        Message(role="system", content=SYSTEM),
        Message(role="user", content=PROMPT.format(prefix=prefix, a=a, b=b)),
    ]
    config = GenerateConfig(temperature=0.0, max_tokens=1, logprobs=True, top_logprobs=20, seed=0)
    try:
        gen = await judge.generate(messages, (), config)
    except ModelError:
        return None
    p_a = _choice(gen.top_logprobs, gen.text)
    if p_a is None:
        return None
    # Probability that the judge calls the replay real.
    return p_a if replay_first else 1.0 - p_a


async def _judge_one(
    judge: Model, prefix: str, logged: str, replayed: str, replay_first: bool, both: bool
) -> float | None:
    """P(the judge calls the replay real): one order, or the mean of both orders."""
    first = await _judge_order(judge, prefix, logged, replayed, replay_first)
    if not both:
        return first
    second = await _judge_order(judge, prefix, logged, replayed, not replay_first)
    if first is None or second is None:
        return first if second is None else second
    return (first + second) / 2


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


@dataclass(frozen=True, slots=True)
class RealismSettings:
    """How the realism check and its controls pick and show what the judge compares."""

    sample: str | None = None  # prefixes of this sample only
    limit: int | None = None  # the first N items; None or 0: all
    seed: int = 0  # of the A/B order (and of the controls' broken copies)
    both_orders: bool = False  # ask each question in both orders, average (2x calls)
    max_chars: int = 1500  # the prefix's tail and each continuation shown


def run_realism(
    store: Store,
    *,
    judge: str,
    model: str,
    spec: str | None = None,
    settings: RealismSettings = RealismSettings(),
    judge_model: Model | None = None,
    on_progress: Bar | None = None,
) -> dict[str, Any]:
    """Judge replays of ``model`` (of replay spec ``spec`` when given: a hash or its prefix)
    against the logged continuations; see the module docstring."""
    model = str(ModelSpec.parse(model))
    rows = stored_replays(store, model, settings.sample, spec)
    items = []
    for r in rows:
        prefix = load_prefix(store, r.prefix_id)
        if not prefix.continuation:
            continue  # nothing logged to compare with
        tools = sorted({c.function for m in r.messages for c in m.tool_calls})
        order = random.Random(canonical_hash([settings.seed, r.id])).random() < 0.5
        items.append(_Item(prefix.messages, prefix.continuation, r.messages, tools, order))
    items = items[: settings.limit] if settings.limit else items
    judge_m = judge_model or get_model(judge)
    results = asyncio.run(_judge_all(judge_m, items, on_progress, settings))
    out = summarize(results, judge=judge, model=model, n_replays=len(rows))
    out.update(spec=spec, both_orders=settings.both_orders)
    return out


@dataclass(frozen=True, slots=True)
class _Item:
    prefix: tuple[Message, ...]
    logged: tuple[Message, ...]
    other: tuple[Message, ...]  # the replay, or a broken copy of the logged continuation
    labels: list[str]  # tools the replay used; the control's kind
    other_first: bool


async def _judge_all(
    judge: Model,
    items: Sequence[_Item],
    on_progress: Bar | None,
    settings: RealismSettings,
) -> list[tuple[list[str], float | None]]:
    out: list[tuple[list[str], float | None]] = []
    failed = 0
    try:
        for item in items:
            tools = item.labels
            chars = settings.max_chars
            p = await _judge_one(
                judge,
                _render(item.prefix, chars, tail=True),
                _render(item.logged, chars),
                _render(item.other, chars),
                item.other_first,
                settings.both_orders,
            )
            failed += p is None
            out.append((tools, p))
            if on_progress is not None:
                on_progress(len(out), len(items), failed)
    finally:
        await judge.aclose()
    return out


def _rate(picks: list[bool], name: str) -> dict[str, Any]:
    """k of n with the share (under ``name``) and its Jeffreys interval."""
    k, n = sum(picks), len(picks)
    if n == 0:
        return {"k": 0, "n": 0, name: None, "ci": None}
    ci = jeffreys_interval(k, n)
    return {"k": k, "n": n, name: k / n, "ci": [ci.lower, ci.upper]}


def summarize(
    results: list[tuple[list[str], float | None]], *, judge: str, model: str, n_replays: int
) -> dict[str, Any]:
    """Win rate of the replay (judge calls it real), overall and per tool, with intervals."""

    def rate(picks: list[bool]) -> dict[str, Any]:
        return _rate(picks, "win_rate")

    # An even answer (a judge that picks by position, asked both orders) decides nothing.
    decided = [(tools, p) for tools, p in results if p is not None and p != 0.5]
    picks = [p > 0.5 for _, p in decided]
    per_tool: dict[str, list[bool]] = defaultdict(list)
    for tools, p in decided:
        for t in tools or ["(no tool call)"]:
            per_tool[t].append(p > 0.5)
    return {
        "judge": judge,
        "model": model,
        "replays": n_replays,
        "judged": len(picks),
        "unjudgeable": sum(1 for _, p in results if p is None),
        "undecided": sum(1 for _, p in results if p == 0.5),
        "overall": rate(picks),
        "per_tool": {t: rate(v) for t, v in sorted(per_tool.items())},
        "created_at": time.time(),
    }


# --- positive controls: broken continuations the judge must catch ---------------------------

ControlKind = Literal["shuffled", "no_format", "shouting"]
CONTROL_KINDS: tuple[ControlKind, ...] = ("shuffled", "no_format", "shouting")
NO_FORMAT = "@@ 0 ~~ null ;; ## ??"  # a tool result in no format any tool uses
CATCH_TARGET = 0.9


def broken(
    messages: Sequence[Message], kind: ControlKind, rng: random.Random
) -> tuple[Message, ...] | None:
    """A deliberately broken copy of a logged continuation (None when ``kind`` changes
    nothing in it): ``shuffled`` shuffles the words of every assistant text and tool result,
    ``no_format`` replaces tool results with text in no format, ``shouting`` rewrites the
    assistant's texts in capitals with exclamations (a different model's style)."""
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


def run_controls(
    store: Store,
    *,
    judge: str,
    kinds: Sequence[ControlKind] = CONTROL_KINDS,
    settings: RealismSettings = RealismSettings(),
    judge_model: Model | None = None,
    on_progress: Bar | None = None,
) -> dict[str, Any]:
    """The judge's catch rate on positive controls: for each stored prefix (of the settings'
    sample; the first ``limit``) with a logged continuation, that continuation against each
    ``kinds`` broken copy, judged like a replay. Caught: the judge calls the logged one real."""
    cond, args = "", []
    if settings.sample:
        cond = " WHERE sample_id = (SELECT id FROM samples WHERE name = ?)"
        args.append(settings.sample)
    ids = [row[0] for row in store.db.execute(f"SELECT id FROM prefixes{cond} ORDER BY id", args)]
    items: list[_Item] = []
    used = 0
    for pid in ids:
        if settings.limit and used >= settings.limit:
            break
        prefix = load_prefix(store, pid)
        if not prefix.continuation:
            continue
        used += 1
        for kind in kinds:
            rng = random.Random(canonical_hash([settings.seed, pid, kind]))
            copy = broken(prefix.continuation, kind, rng)
            if copy is not None:
                first = rng.random() < 0.5
                items.append(_Item(prefix.messages, prefix.continuation, copy, [kind], first))
    judge_m = judge_model or get_model(judge)
    results = asyncio.run(_judge_all(judge_m, items, on_progress, settings))
    per_kind: dict[str, list[bool]] = defaultdict(list)
    for labels, p in results:
        if p is not None and p != 0.5:
            per_kind[labels[0]].append(p < 0.5)
    caught = [c for v in per_kind.values() for c in v]
    overall = _rate(caught, "catch_rate")
    return {
        "judge": judge,
        "prefixes": used,
        "judged": len(caught),
        "unjudgeable": sum(1 for _, p in results if p is None),
        "undecided": sum(1 for _, p in results if p == 0.5),
        "overall": overall,
        "per_kind": {k: _rate(v, "catch_rate") for k, v in sorted(per_kind.items())},
        "target": CATCH_TARGET,
        "validated": bool(caught) and overall["catch_rate"] >= CATCH_TARGET,
        "both_orders": settings.both_orders,
        "created_at": time.time(),
    }
