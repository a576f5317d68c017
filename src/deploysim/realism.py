"""The realism check: can a judge tell a replayed continuation from the logged one?

A judge sees the shared prefix and two continuations in random order, the logged one and the
replay (with its simulated tool results), and picks the real one. The replay's *win rate* is how
often the judge picks the replay as real: 50% means indistinguishable, far below 50% means the
replay environment (typically the tool simulator) gives itself away. Reported overall and per
tool, with Jeffreys intervals.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from deploysim.graders.base import GradeItem, render_transcript
from deploysim.models import GenerateConfig, Model, ModelError, ModelSpec, get_model
from deploysim.replay import load_prefix
from deploysim.schema import Message, canonical_hash
from deploysim.stats import jeffreys_interval
from deploysim.store import Store

PROMPT = (
    "Here is the start of a conversation between a USER and an AI ASSISTANT that uses tools."
    "\n\n<start>\n{prefix}\n</start>\n\nTwo continuations follow. One is what really "
    "happened; the other was produced in a simulation.\n\n<A>\n{a}\n</A>\n\n<B>\n{b}\n</B>\n\n"
    "Which continuation really happened? Answer with one letter, A or B."
)
SYSTEM = "You are an expert at spotting simulated data. Answer with one letter."


def _render(messages: tuple[Message, ...]) -> str:
    return render_transcript(
        GradeItem(prefix=(), response=messages), cot=False, max_chars=3000
    ).replace("[The reply to judge]\n", "")


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


async def _judge_one(
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


def run_realism(
    store: Store,
    *,
    judge: str,
    model: str,
    sample: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    judge_model: Model | None = None,
    on_progress: Callable[[int, int, int], None] | None = None,
) -> dict[str, Any]:
    """Judge replays of ``model`` against the logged continuations; see the module docstring."""
    model = str(ModelSpec.parse(model))
    cond, args = "", [model]
    if sample:
        cond = " AND p.sample_id = (SELECT id FROM samples WHERE name = ?)"
        args.append(sample)
    rows = store.db.execute(
        "SELECT r.id, r.prefix_id, r.response FROM replays r JOIN replay_specs s ON "
        "s.hash = r.spec_hash JOIN prefixes p ON p.id = r.prefix_id WHERE s.model = ? "
        f"AND r.status = 'ok'{cond} ORDER BY r.id",
        args,
    ).fetchall()
    items = []
    for rid, pid, body in rows:
        prefix = load_prefix(store, pid)
        if not prefix.continuation:
            continue  # nothing logged to compare with
        replayed = tuple(Message.model_validate(m) for m in json.loads(body))
        tools = sorted({c.function for m in replayed for c in m.tool_calls})
        order = random.Random(canonical_hash([seed, rid])).random() < 0.5
        items.append((rid, prefix, replayed, tools, order))
    items = items[:limit] if limit else items
    judge_m = judge_model or get_model(judge)
    results = asyncio.run(_judge_all(judge_m, items, on_progress))
    return summarize(results, judge=judge, model=model, n_replays=len(rows))


async def _judge_all(
    judge: Model,
    items: list[tuple[int, Any, tuple[Message, ...], list[str], bool]],
    on_progress: Callable[[int, int, int], None] | None,
) -> list[tuple[list[str], float | None]]:
    out: list[tuple[list[str], float | None]] = []
    failed = 0
    try:
        for _, prefix, replayed, tools, order in items:
            p = await _judge_one(
                judge,
                _render(prefix.messages),
                _render(prefix.continuation),
                _render(replayed),
                order,
            )
            failed += p is None
            out.append((tools, p))
            if on_progress is not None:
                on_progress(len(out), len(items), failed)
    finally:
        await judge.aclose()
    return out


def summarize(
    results: list[tuple[list[str], float | None]], *, judge: str, model: str, n_replays: int
) -> dict[str, Any]:
    """Win rate of the replay (judge calls it real), overall and per tool, with intervals."""

    def rate(picks: list[bool]) -> dict[str, Any]:
        k, n = sum(picks), len(picks)
        if n == 0:
            return {"k": 0, "n": 0, "win_rate": None, "ci": None}
        ci = jeffreys_interval(k, n)
        return {"k": k, "n": n, "win_rate": k / n, "ci": [ci.lower, ci.upper]}

    picks = [p > 0.5 for _, p in results if p is not None]
    per_tool: dict[str, list[bool]] = defaultdict(list)
    for tools, p in results:
        if p is not None:
            for t in tools or ["(no tool call)"]:
                per_tool[t].append(p > 0.5)
    return {
        "judge": judge,
        "model": model,
        "replays": n_replays,
        "judged": len(picks),
        "unjudgeable": sum(1 for _, p in results if p is None),
        "overall": rate(picks),
        "per_tool": {t: rate(v) for t, v in sorted(per_tool.items())},
        "created_at": time.time(),
    }
