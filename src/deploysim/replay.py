"""Replay: the candidate model writes the next assistant turn on each sampled prefix.

The candidate sees exactly the logged prefix (the system prompt kept or overridden by policy,
earlier hidden reasoning dropped unless asked for, the logged tool definitions offered). Calls
run concurrently up to a per-model limit; retryable failures (429, 5xx, timeouts, dropped
connections, malformed bodies) are retried with exponential backoff and jitter, honouring
Retry-After; what still fails is stored as a failure with its error type and counted in every
denominator. Every result is committed as it arrives and keyed by (prefix, replay spec, draw), so
re-running after a crash or ``kill -9`` continues where it stopped and never duplicates work.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from deploysim.agent import RetryPolicy, TurnOutcome, run_turn
from deploysim.errors import UsageError
from deploysim.models import GenerateConfig, Model, ModelSpec, get_model
from deploysim.sampling import SamplingSpec, Unit, sample
from deploysim.schema import (
    Message,
    ReasoningPart,
    ToolDef,
    canonical_hash,
    canonical_json,
)
from deploysim.store import Store
from deploysim.tools import ToolDatabase, ToolLayer, ToolPolicy


class ReplaySpec(BaseModel):
    """Everything that determines a replay besides the prefix: stored with every result."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    config: GenerateConfig = GenerateConfig()
    system_prompt: str | None = None  # None: keep the logged system prompt
    include_reasoning: bool = False
    tools: ToolPolicy = ToolPolicy()

    @field_validator("model")
    @classmethod
    def _canonical_model(cls, value: str) -> str:
        # One spelling per model (options sorted), so results group and resume by spec.
        return str(ModelSpec.parse(value))

    @property
    def hash(self) -> str:
        """SHA-256 of the canonical spec (defaults omitted: new options keep old hashes)."""
        return canonical_hash(self.model_dump(mode="json", exclude_defaults=True))


@dataclass(frozen=True, slots=True)
class SampleInfo:
    """A stored sample of prefixes."""

    id: int
    name: str
    spec_hash: str
    size: int
    population: int
    created: bool


@dataclass
class ReplaySummary:
    """Counts of one replay run (this invocation), plus totals for the spec."""

    spec_hash: str
    model: str
    pending: int = 0
    ok: int = 0
    failed: int = 0
    retries: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The summary as JSON-ready data."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


Progress = Callable[[ReplaySummary], None]


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
    units = (Unit(*row) for row in store.units(spec.inputs))
    prefixes, population = sample(units, spec)
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


def prepare_messages(messages: Sequence[Message], spec: ReplaySpec) -> list[Message]:
    """Apply the spec's policies to a prefix: system prompt override, hidden reasoning."""
    out = list(messages)
    if spec.system_prompt is not None:
        while out and out[0].role in ("system", "developer"):
            out.pop(0)
        out.insert(0, Message(role="system", content=spec.system_prompt))
    if not spec.include_reasoning:
        out = [_without_reasoning(m) for m in out]
    return out


def _without_reasoning(m: Message) -> Message:
    if isinstance(m.content, str) or not any(isinstance(p, ReasoningPart) for p in m.content):
        return m
    kept = tuple(p for p in m.content if not isinstance(p, ReasoningPart))
    return m.model_copy(update={"content": kept})


# --- the run ---------------------------------------------------------------------------------


Shard = tuple[int, int]
"""(index, count): the prefixes whose id % count == index (one process's share of a run)."""


def pending(
    store: Store,
    sid: int,
    spec_hash: str,
    draws: int,
    *,
    retry_failed: bool,
    batch: int = 1000,
    shard: Shard = (0, 1),
) -> Iterator[tuple[int, int]]:
    """(prefix id, draw) pairs with no stored result yet, streamed in prefix order."""
    done_status = ("ok",) if retry_failed else ("ok", "failed")
    last = 0
    while True:
        ids = [
            r[0]
            for r in store.db.execute(
                "SELECT id FROM prefixes WHERE sample_id = ? AND id > ? AND id % ? = ? "
                "ORDER BY id LIMIT ?",
                (sid, last, shard[1], shard[0], batch),
            )
        ]
        if not ids:
            return
        marks = ",".join("?" * len(ids))
        done = set(
            store.db.execute(
                f"SELECT prefix_id, draw FROM replays WHERE spec_hash = ? AND prefix_id IN "
                f"({marks}) AND status IN ({','.join('?' * len(done_status))})",
                (spec_hash, *ids, *done_status),
            ).fetchall()
        )
        for pid in ids:
            for d in range(draws):
                if (pid, d) not in done:
                    yield pid, d
        last = ids[-1]


def count_pending(
    store: Store, sid: int, spec_hash: str, draws: int, *, retry_failed: bool, shard: Shard = (0, 1)
) -> int:
    """How many (prefix, draw) pairs still need a result."""
    total = store.db.execute(
        "SELECT COUNT(*) FROM prefixes WHERE sample_id = ? AND id % ? = ?",
        (sid, shard[1], shard[0]),
    ).fetchone()
    statuses = ("ok",) if retry_failed else ("ok", "failed")
    done = store.db.execute(
        "SELECT COUNT(*) FROM replays r JOIN prefixes p ON p.id = r.prefix_id "
        f"WHERE p.sample_id = ? AND r.spec_hash = ? AND r.draw < ? AND p.id % ? = ? "
        f"AND r.status IN ({','.join('?' * len(statuses))})",
        (sid, spec_hash, draws, shard[1], shard[0], *statuses),
    ).fetchone()
    return int(total[0]) * draws - int(done[0])


def run_replay(
    store: Store,
    spec: ReplaySpec,
    *,
    sample_name: str = "default",
    draws: int = 1,
    concurrency: int = 8,
    retry: RetryPolicy | None = None,
    retry_failed: bool = False,
    on_progress: Progress | None = None,
    model: Model | None = None,
    workers: int = 1,
    shard: Shard = (0, 1),
) -> ReplaySummary:
    """Replay every pending prefix of a sample with the spec's model; see the module docstring.

    ``workers`` > 1 runs the replay in that many processes, ``concurrency`` split between them
    (:mod:`deploysim.execute.processes`): one Python process tops out near 1,000 requests/s
    against a fast endpoint. ``shard`` restricts this process to its share of the prefixes.
    """
    if workers > 1:
        if model is not None:
            raise UsageError("workers > 1 needs the model as a spec, not a model object")
        from deploysim.execute.processes import run_replay_processes

        return run_replay_processes(
            store,
            spec,
            sample_name=sample_name,
            draws=draws,
            concurrency=concurrency,
            retry=retry or RetryPolicy(),
            retry_failed=retry_failed,
            on_progress=on_progress,
            workers=workers,
        )
    return asyncio.run(
        replay_async(
            store,
            spec,
            sample_name=sample_name,
            draws=draws,
            concurrency=concurrency,
            retry=retry or RetryPolicy(),
            retry_failed=retry_failed,
            on_progress=on_progress,
            model=model,
            shard=shard,
        )
    )


async def replay_async(
    store: Store,
    spec: ReplaySpec,
    *,
    sample_name: str,
    draws: int,
    concurrency: int,
    retry: RetryPolicy,
    retry_failed: bool,
    on_progress: Progress | None,
    model: Model | None,
    shard: Shard = (0, 1),
) -> ReplaySummary:
    """The async body of :func:`run_replay` (usable from a running event loop)."""
    if draws < 1 or concurrency < 1:
        raise UsageError("--samples-per-prefix and --concurrency must be at least 1")
    sid = sample_id(store, sample_name)
    model = model or get_model(ModelSpec.parse(spec.model))
    register_spec(store, spec)
    layer = _tool_layer(store, spec.tools)
    summary = ReplaySummary(spec_hash=spec.hash, model=spec.model)
    summary.pending = count_pending(
        store, sid, spec.hash, draws, retry_failed=retry_failed, shard=shard
    )
    writer = ResultWriter(store, spec.hash, summary, on_progress)
    queue: asyncio.Queue[tuple[LoadedPrefix, int] | None] = asyncio.Queue(maxsize=concurrency * 2)
    rng = random.Random()
    start = time.perf_counter()

    async def produce() -> None:
        cached: LoadedPrefix | None = None
        for pid, draw in pending(
            store, sid, spec.hash, draws, retry_failed=retry_failed, shard=shard
        ):
            if cached is None or cached.id != pid:
                cached = load_prefix(store, pid)
            await queue.put((cached, draw))
        for _ in range(concurrency):
            await queue.put(None)

    async def work() -> None:
        while (item := await queue.get()) is not None:
            prefix, draw = item
            outcome = await run_turn(
                model,
                prepare_messages(prefix.messages, spec),
                prefix.tools,
                spec.config,
                retry,
                rng,
                layer=layer,
                max_steps=spec.tools.max_steps if layer else 1,
                conversation=prefix.conversation_hash,
                continuation=render_continuation(prefix.continuation),
                salt=f"{prefix.id}:{draw}",
            )
            writer.add(prefix.id, draw, outcome)

    try:
        await asyncio.gather(produce(), *(work() for _ in range(concurrency)))
    finally:
        writer.flush()
        summary.seconds = time.perf_counter() - start
        await model.aclose()
        if layer is not None:
            await layer.aclose()
    return summary


def register_spec(store: Store, spec: ReplaySpec) -> None:
    """Record a replay spec (once per hash): every executor stores results against it."""
    store.db.execute(
        "INSERT OR IGNORE INTO replay_specs(hash, model, spec, created_at) VALUES (?, ?, ?, ?)",
        (spec.hash, spec.model, canonical_json(spec.model_dump(mode="json")), time.time()),
    )


def _tool_layer(store: Store, policy: ToolPolicy) -> ToolLayer | None:
    """The tool layer for a replay, built from every stored conversation with tool calls."""
    if policy.mode == "none":
        return None
    db = ToolDatabase()
    for conv in store.conversations(with_tool_calls=True):
        db.add(conv)
    return ToolLayer(db, policy)


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


class ResultWriter:
    """Buffers turn outcomes and commits them in small batches (a process's only writer to the
    store: executors that run turns elsewhere send outcomes back to one of these)."""

    def __init__(
        self, store: Store, spec_hash: str, summary: ReplaySummary, on_progress: Progress | None
    ) -> None:
        self.store = store
        self.spec_hash = spec_hash
        self.summary = summary
        self.on_progress = on_progress
        self.rows: list[tuple[Any, ...]] = []
        self.last_flush = time.monotonic()

    def add(self, prefix_id: int, draw: int, outcome: TurnOutcome) -> None:
        s = self.summary
        s.retries += outcome.attempts - outcome.steps
        s.input_tokens += outcome.input_tokens
        s.output_tokens += outcome.output_tokens
        if not outcome.ok:
            s.failed += 1
            kind = outcome.error_kind or "unknown"
            s.errors[kind] = s.errors.get(kind, 0) + 1
            response = None
        else:
            s.ok += 1
            response = json.dumps([m.to_json_dict() for m in outcome.messages], ensure_ascii=False)
        self.rows.append(
            (
                prefix_id,
                self.spec_hash,
                draw,
                "ok" if outcome.ok else "failed",
                response,
                outcome.finish_reason,
                outcome.error_kind,
                outcome.error,
                outcome.attempts,
                outcome.input_tokens,
                outcome.output_tokens,
                outcome.latency_s,
                time.time(),
            )
        )
        if len(self.rows) >= 64 or time.monotonic() - self.last_flush > 0.5:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            with self.store.transaction():
                # A retried failure replaces the failed row; an ok row is never replaced.
                self.store.db.executemany(
                    "INSERT INTO replays(prefix_id, spec_hash, draw, status, response, "
                    "finish_reason, error_kind, error, attempts, input_tokens, output_tokens, "
                    "latency_s, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT(prefix_id, spec_hash, draw) DO UPDATE SET "
                    "status = excluded.status, response = excluded.response, "
                    "finish_reason = excluded.finish_reason, error_kind = excluded.error_kind, "
                    "error = excluded.error, attempts = replays.attempts + excluded.attempts, "
                    "input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens, "
                    "latency_s = excluded.latency_s, created_at = excluded.created_at "
                    "WHERE replays.status = 'failed'",
                    self.rows,
                )
            self.rows.clear()
        self.last_flush = time.monotonic()
        if self.on_progress is not None:
            self.on_progress(self.summary)
