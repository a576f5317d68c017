"""Discriminators of the realism check: what tells a logged continuation from another one.

``judge`` asks a model which of two continuations really happened (first-token
log-probabilities, optionally both orders); ``consistency`` and ``consistency-tools`` check each
continuation against the store's tool records and the prefix (:mod:`.consistency`). Shared by
the replay check and its controls (:mod:`deploysim.realism`) and by the simulator's ablation on
logged calls (:mod:`.simulated`).
"""

from __future__ import annotations

import math
import re
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from deploysim.errors import UsageError
from deploysim.graders.base import GradeItem, render_transcript
from deploysim.models import GenerateConfig, Model, ModelError, get_model
from deploysim.schema import Message, canonical_hash
from deploysim.stage import Bar
from deploysim.stats import jeffreys_interval
from deploysim.store import Store

from . import consistency

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
class RealismSettings:
    """How the realism check and its controls pick and show what the judge compares."""

    sample: str | None = None  # prefixes of this sample only
    limit: int | None = None  # the first N items; None or 0: all
    seed: int = 0  # of the A/B order (and of the controls' broken copies)
    both_orders: bool = False  # ask each question in both orders, average (2x calls)
    max_chars: int = 1500  # the prefix's tail and each continuation shown
    prefixes: tuple[int, ...] | None = None  # only these prefix ids (a dev or test part)


DiscriminatorName = Literal["judge", "consistency", "consistency-tools"]
DISCRIMINATORS: tuple[DiscriminatorName, ...] = ("judge", "consistency", "consistency-tools")


class Discriminator(Protocol):
    """What tells two continuations apart: a judge model or a consistency check."""

    @property
    def identity(self) -> dict[str, Any]:
        """Name, version and hash: recorded with every result."""

    async def p_other_real(self, item: Item) -> float | None:
        """P(the discriminator calls ``item.other`` real); None when it cannot tell."""

    async def aclose(self) -> None:
        """Release what it holds."""


@dataclass(frozen=True, slots=True)
class _Judge:
    """A model asked which of two rendered continuations really happened."""

    model: Model
    settings: RealismSettings
    identity: dict[str, Any]

    async def p_other_real(self, item: Item) -> float | None:
        chars = self.settings.max_chars
        return await _judge_one(
            self.model,
            _render(item.prefix, chars, tail=True),
            _render(item.logged, chars),
            _render(item.other, chars),
            item.other_first,
            self.settings.both_orders,
        )

    async def aclose(self) -> None:
        await self.model.aclose()


@dataclass(frozen=True, slots=True)
class _Consistency:
    """:mod:`deploysim.realism.consistency`: no model, the order shown does not matter."""

    profiles: consistency.Profiles
    parts: consistency.Parts
    identity: dict[str, Any]

    async def p_other_real(self, item: Item) -> float | None:
        return consistency.compare(item.prefix, item.logged, item.other, self.profiles, self.parts)

    async def aclose(self) -> None:
        return None


def discriminator_for(
    store: Store,
    name: DiscriminatorName,
    judge: str | None,
    judge_model: Model | None,
    settings: RealismSettings,
    profiles: consistency.Profiles | None = None,
) -> Discriminator:
    """The discriminator called ``name`` (``judge``: the model ``judge`` or ``judge_model``);
    ``profiles`` are read from the store when not given."""
    if name == "judge":
        if judge is None and judge_model is None:
            raise UsageError("the judge discriminator needs a judge model spec (--judge)")
        m = judge_model or get_model(str(judge))
        shown = [SYSTEM, PROMPT, settings.max_chars, settings.both_orders]
        judged = {
            "name": "judge",
            "judge": judge or str(m.spec),
            "hash": canonical_hash(shown)[:16],
        }
        return _Judge(m, settings, judged)
    parts: consistency.Parts = "all" if name == "consistency" else "tools"
    profiles = profiles or consistency.store_profiles(store)
    ident = {**consistency.identity(parts), "profiles": consistency.to_json(profiles)}
    return _Consistency(profiles, parts, ident)


@dataclass(frozen=True, slots=True)
class Item:
    """One comparison: the logged continuation and another one after the same prefix."""

    prefix: tuple[Message, ...]
    logged: tuple[Message, ...]
    other: tuple[Message, ...]  # the replay, or a broken copy of the logged continuation
    labels: list[str]  # tools the replay used; the control's kind
    other_first: bool


async def judge_all(
    disc: Discriminator, items: Sequence[Item], on_progress: Bar | None
) -> list[tuple[list[str], float | None]]:
    out: list[tuple[list[str], float | None]] = []
    failed = 0
    try:
        for item in items:
            p = await disc.p_other_real(item)
            failed += p is None
            out.append((item.labels, p))
            if on_progress is not None:
                on_progress(len(out), len(items), failed)
    finally:
        await disc.aclose()
    return out


def rate_of(picks: list[bool], name: str) -> dict[str, Any]:
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
        return rate_of(picks, "win_rate")

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
