"""The simulator alone, on logged calls: the method's ablation without a candidate.

Judging replays (:func:`deploysim.realism.run_realism`) measures the simulator only where the
candidate calls a tool that no recorded answer covers, and a small candidate may call none.
Here the candidate is left out. For each prefix whose logged continuation calls a tool, the
first such call's recorded result is hidden and the replay's tool simulator answers it, once
``blind`` and once seeing the logged continuation (``sees-log``: the method's "after the
simulator saw the original trajectory"). The discriminator compares the logged continuation,
cut after that result, with the same cut carrying the simulated result; the win rate is how
often it calls the simulated one real.

A simulator that copies the logged result is indistinguishable by construction (the
discriminator is undecided): the win rate leaves those out, ``ties_as_half`` counts each as
half a win (the method's reading of indistinguishable). The simulator's examples come from
the *other* stored conversations only, so that ``blind`` never sees the hidden result.

Each simulated answer can be kept in a JSONL cache (``cache``): a long run stopped part way
resumes where it stopped, and another discriminator judges the same answers without calling
the simulator again. The cache holds the simulated texts, which copy the store's data shapes;
keep it where the store is kept.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from deploysim.models import Model, get_model
from deploysim.prefixes import LoadedPrefix, load_prefix, render_continuation
from deploysim.schema import Conversation, Message, ToolCall, canonical_hash
from deploysim.stage import Bar
from deploysim.store import Store
from deploysim.tools import ToolDatabase, ToolLayer, ToolPolicy

from .discriminators import (
    DiscriminatorName,
    Item,
    RealismSettings,
    discriminator_for,
    judge_all,
    summarize,
)

Arm = Literal["blind", "sees-log"]
ARMS: tuple[Arm, ...] = ("blind", "sees-log")


def first_call(continuation: Sequence[Message]) -> tuple[int, int] | None:
    """(index of the first tool result, index of the assistant message whose call it
    answers) in a continuation; None when it has no answered call."""
    for i, m in enumerate(continuation):
        if m.role == "tool":
            for j in range(i - 1, -1, -1):
                if any(c.id == m.tool_call_id for c in continuation[j].tool_calls):
                    return i, j
            return None
    return None


@dataclass(frozen=True, slots=True)
class SimulatedCall:
    """The simulator's answer to one logged call, in one arm."""

    key: str  # simulator, arm and the prefix's conversation and messages
    prefix_id: int
    arm: Arm
    tool: str
    content: str
    source: str  # "simulated", or "simulator_error" when no attempt fitted the format
    seconds: float


@dataclass(frozen=True, slots=True)
class _Target:
    """A prefix and its first logged call: the continuation cut after the call's result."""

    prefix: LoadedPrefix
    call: ToolCall
    logged: tuple[Message, ...]  # ends with the recorded result the simulator replaces

    @staticmethod
    def of(prefix: LoadedPrefix) -> _Target | None:
        cut = first_call(prefix.continuation)
        if cut is None:
            return None
        i, j = cut
        logged = prefix.continuation[: i + 1]
        call = next(c for c in logged[j].tool_calls if c.id == logged[i].tool_call_id)
        return _Target(prefix, call, logged)


def _key(simulator: str, arm: Arm, prefix: LoadedPrefix) -> str:
    return canonical_hash([simulator, arm, prefix.conversation_hash, len(prefix.messages)])


def _read_cache(path: Path | None) -> dict[str, SimulatedCall]:
    if path is None or not path.exists():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = SimulatedCall(**json.loads(line))
            out[row.key] = row
    return out


def _without(conversations: Sequence[Conversation], chash: str) -> ToolDatabase:
    """Recorded tool results of every conversation but one (so a hidden result is never
    among the simulator's examples)."""
    db = ToolDatabase()
    for conv in conversations:
        if conv.content_hash() != chash:
            db.add(conv)
    return db


async def _simulate_all(
    simulator: Model,
    spec: str,
    targets: Sequence[_Target],
    arms: Sequence[Arm],
    conversations: Sequence[Conversation],
    cache: Path | None,
    on_progress: Bar | None,
) -> list[SimulatedCall]:
    done = _read_cache(cache)
    out: list[SimulatedCall] = []
    total = len(targets) * len(arms)
    failed = 0
    dbs: dict[str, ToolDatabase] = {}
    try:
        for t in targets:
            prefix = t.prefix
            for arm in arms:
                key = _key(spec, arm, prefix)
                row = done.get(key)
                if row is None:
                    if prefix.conversation_hash not in dbs:
                        dbs[prefix.conversation_hash] = _without(
                            conversations, prefix.conversation_hash
                        )
                    db = dbs[prefix.conversation_hash]
                    policy = ToolPolicy(mode="replay", show_continuation=arm == "sees-log")
                    layer = ToolLayer(db, policy, simulator=simulator)
                    seen = render_continuation(prefix.continuation) if arm == "sees-log" else ""
                    t0 = time.perf_counter()
                    # The recorded answer is what is measured against: the simulator answers
                    # in its place (no recorded lookup, no injected failure, no state check).
                    history = (*prefix.messages, *t.logged[:-1])
                    res = await layer.simulate(t.call, prefix.tools or layer.offered, seen, history)
                    seconds = round(time.perf_counter() - t0, 1)
                    row = SimulatedCall(
                        key, prefix.id, arm, t.call.function, res.content, res.source, seconds
                    )
                    if cache is not None:
                        with cache.open("a", encoding="utf-8") as f:
                            f.write(json.dumps(asdict(row)) + "\n")
                out.append(row)
                failed += row.source != "simulated"
                if on_progress is not None:
                    on_progress(len(out), total, failed)
    finally:
        await simulator.aclose()
    return out


def run_simulated(
    store: Store,
    *,
    simulator: str | Model,
    arms: Sequence[Arm] = ARMS,
    settings: RealismSettings = RealismSettings(),
    discriminator: DiscriminatorName = "consistency-tools",
    judge: str | None = None,
    judge_model: Model | None = None,
    cache: Path | None = None,
    on_progress: Bar | None = None,
) -> dict[str, Any]:
    """The simulator's win rate on logged calls, per arm (see the module docstring): the
    prefixes of the settings' sample (or prefix ids; the first ``limit`` with a logged tool
    call), judged by ``discriminator``."""
    cond, args = "", []
    if settings.sample:
        cond = " WHERE sample_id = (SELECT id FROM samples WHERE name = ?)"
        args.append(settings.sample)
    rows = store.db.execute(
        f"SELECT id, conversation_hash, cut FROM prefixes{cond} ORDER BY id", args
    ).fetchall()
    # Each (conversation, cut) once, however many samples hold it.
    ids = sorted({(chash, cut): pid for pid, chash, cut in reversed(rows)}.values())
    if settings.prefixes is not None:
        keep = set(settings.prefixes)
        ids = [i for i in ids if i in keep]
    targets: list[_Target] = []
    for pid in ids:
        target = _Target.of(load_prefix(store, pid))
        if target is not None:
            targets.append(target)
            if settings.limit and len(targets) >= settings.limit:
                break
    model = get_model(simulator) if isinstance(simulator, str) else simulator
    spec = str(model.spec)
    conversations = list(store.conversations(with_tool_calls=True))
    calls = asyncio.run(
        _simulate_all(model, spec, targets, arms, conversations, cache, on_progress)
    )
    disc = discriminator_for(store, discriminator, judge, judge_model, settings)
    by_id = {t.prefix.id: t for t in targets}
    items = []
    for c in calls:
        t = by_id[c.prefix_id]
        other = (*t.logged[:-1], t.logged[-1].model_copy(update={"content": c.content}))
        first = random.Random(canonical_hash([settings.seed, c.key])).random() < 0.5
        items.append(Item(t.prefix.messages, t.logged, other, [c.tool], first))
    verdicts = asyncio.run(judge_all(disc, items, None))
    per_arm = {}
    for arm in arms:
        mine = [(c, v) for c, v in zip(calls, verdicts, strict=True) if c.arm == arm]
        result = summarize(
            [v for _, v in mine], judge=judge or discriminator, model=spec, n_replays=len(mine)
        )
        wins = result["overall"]["k"]
        undecided = result["undecided"]
        judged = result["overall"]["n"] + undecided
        # A failed simulation is an error text the discriminator may take for a real error
        # (consistency-1 took one for a real error): the rate of real answers alone, apart.
        answered = summarize(
            [v for c, v in mine if c.source == "simulated"],
            judge=judge or discriminator,
            model=spec,
            n_replays=sum(c.source == "simulated" for c, _ in mine),
        )
        result.update(
            answered_only={k: answered[k] for k in ("overall", "undecided", "per_tool")},
            ties_as_half=(wins + undecided / 2) / judged if judged else None,
            equal_to_logged=sum(
                c.content.strip() == by_id[c.prefix_id].logged[-1].text.strip() for c, _ in mine
            ),
            simulator_failures=sum(c.source != "simulated" for c, _ in mine),
            seconds_per_call=(sum(c.seconds for c, _ in mine) / len(mine)) if mine else None,
        )
        per_arm[arm] = result
    return {
        "simulator": spec,
        "discriminator": disc.identity,
        "prefixes": len(targets),
        "arms": per_arm,
        "created_at": time.time(),
    }
