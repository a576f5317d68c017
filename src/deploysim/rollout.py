"""Rollout: a release writes every assistant turn of real logged conversations.

Where two releases' production logs do not exist (a backtest on public data), they are made:
the real user turns of logged conversations are kept, and the release writes each assistant turn
in order, seeing its own earlier answers (so a multi-turn conversation carries the release's
influence forward, as production does). The user turns do not react to the new answers: that is
the synthetic production's main departure from real traffic.

The output is an OpenAI-format JSONL file, one conversation per line, with the source
conversation's hash as the record ``id``; it is read back by ``deploysim ingest`` like any log.
A line is written only when its whole conversation is done, so an interrupted rollout resumes by
running again (conversations already in the file are skipped). A conversation whose generation
fails after retries is not written; it is counted, with the error, in the summary.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from deploysim.agent import Caller, RetryPolicy, run_turn
from deploysim.errors import UsageError
from deploysim.ingest.openai import to_openai_record
from deploysim.models import Model, ModelSpec, get_model
from deploysim.replay import ReplaySpec, RunCounts, prepare_messages
from deploysim.schema import Conversation, Message, canonical_hash


@dataclass
class RolloutSummary(RunCounts):
    """What one rollout invocation did."""

    release: str
    path: str
    written: int = 0
    already: int = 0
    assistant_turns: int = 0


def is_chat(conv: Conversation) -> bool:
    """Whether a conversation is plain chat (no tools offered, called or answered)."""
    return not conv.tools and not any(m.role == "tool" or m.tool_calls for m in conv.messages)


def user_script(conv: Conversation, max_user_turns: int | None = None) -> list[Message]:
    """The parts of a conversation a rollout keeps: leading system messages and user turns
    (at most ``max_user_turns``); assistant and tool messages are what the release rewrites."""
    if not is_chat(conv):
        raise UsageError("a rollout needs chat conversations without tool calls")
    kept: list[Message] = []
    users = 0
    for m in conv.messages:
        if m.role in ("system", "developer") and users == 0:
            kept.append(m)
        elif m.role == "user":
            if max_user_turns is not None and users >= max_user_turns:
                break
            kept.append(m)
            users += 1
    return kept


def done_ids(path: Path) -> set[str]:
    """Source conversation hashes already written to a rollout file."""
    if not path.exists():
        return set()
    out: set[str] = set()
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.endswith("\n"):  # a torn last line (killed mid-write) is redone
                out.add(json.loads(line)["id"])
    return out


def rollout(
    conversations: Sequence[Conversation],
    spec: ReplaySpec,
    path: Path,
    *,
    release: str = "",
    max_user_turns: int | None = None,
    concurrency: int = 1,
    retry: RetryPolicy | None = None,
    model: Model | None = None,
    on_progress: Callable[[RolloutSummary], None] | None = None,
) -> RolloutSummary:
    """Write ``spec``'s rollout of ``conversations`` to ``path`` (resumable; see the module)."""
    return asyncio.run(
        _rollout(
            conversations,
            spec,
            path,
            release=release or spec.model,
            max_user_turns=max_user_turns,
            concurrency=concurrency,
            retry=retry or RetryPolicy(),
            model=model,
            on_progress=on_progress,
        )
    )


async def _rollout(
    conversations: Sequence[Conversation],
    spec: ReplaySpec,
    path: Path,
    *,
    release: str,
    max_user_turns: int | None,
    concurrency: int,
    retry: RetryPolicy,
    model: Model | None,
    on_progress: Callable[[RolloutSummary], None] | None,
) -> RolloutSummary:
    summary = RolloutSummary(release=release, path=str(path))
    start = time.perf_counter()
    done = done_ids(path)
    todo = [c for c in conversations if c.content_hash() not in done]
    summary.already = len(conversations) - len(todo)
    if not todo:
        return summary
    _drop_torn_line(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model or get_model(ModelSpec.parse(spec.model))
    gate = asyncio.Semaphore(concurrency)
    rng = random.Random()
    try:
        with path.open("a", encoding="utf-8") as f:

            async def one(conv: Conversation) -> None:
                async with gate:
                    chash = conv.content_hash()
                    messages, error = await _write_turns(
                        model, spec, chash, user_script(conv, max_user_turns), retry, rng
                    )
                if error is not None:
                    summary.fail(error)
                else:
                    record = to_openai_record(Conversation(messages=tuple(messages)))
                    record = {"id": chash, **record, "metadata": {"release": release}}
                    f.write(json.dumps(record, ensure_ascii=False) + "\n")
                    f.flush()
                    summary.written += 1
                    summary.assistant_turns += sum(1 for m in messages if m.role == "assistant")
                if on_progress is not None:
                    on_progress(summary)

            await asyncio.gather(*(one(c) for c in todo))
    finally:
        summary.seconds = time.perf_counter() - start
        await model.aclose()
    return summary


async def _write_turns(
    model: Model,
    spec: ReplaySpec,
    chash: str,
    script: list[Message],
    retry: RetryPolicy,
    rng: random.Random,
) -> tuple[list[Message], str | None]:
    """The conversation with an answer by the release after every user turn, or the error."""
    out: list[Message] = []
    for i, m in enumerate(script):
        out.append(m)
        if m.role != "user":
            continue
        # A seed per (conversation, turn), unlike any a replay uses: production and the
        # replays of the same prefix must be independent draws, not the same one twice.
        seed = int(canonical_hash(["rollout", spec.config.seed, chash, i])[:8], 16) % 2**31
        config = spec.config.model_copy(update={"seed": seed})
        caller = Caller(model, config, retry, rng)
        outcome = await run_turn(caller, prepare_messages(out, spec), (), salt=f"{chash}:{i}")
        if not outcome.ok:
            return out, f"{outcome.error_kind}: {outcome.error}"
        out.extend(outcome.messages)
    return out, None


def _drop_torn_line(path: Path) -> None:
    """Cut an unterminated last line (a write killed midway) so appends start clean."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])
