"""Replay: the candidate model writes the next assistant turn on each sampled prefix.

The candidate sees exactly the logged prefix (the system prompt kept or overridden by policy,
earlier hidden reasoning dropped unless asked for, the logged tool definitions offered). Calls
run concurrently up to a per-model limit; retryable failures (429, 5xx, timeouts, dropped
connections, malformed bodies) are retried with exponential backoff and jitter, honouring
Retry-After; what still fails is stored as a failure with its error type and counted in every
denominator. Every result is committed as it arrives and keyed by (prefix, replay spec, draw), so
re-running after a crash or ``kill -9`` continues where it stopped and never duplicates work.

Replay is a stage (:mod:`deploysim.stage`): :class:`ReplayQuery` finds the pending work,
:class:`ReplayWorker` runs a batch of it wherever the executor puts it, and the driver's
:class:`ResultWriter` stores the outcomes; the executor is the caller's choice.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from deploysim.agent import Caller, RetryPolicy, TurnOutcome, run_turn
from deploysim.errors import UsageError
from deploysim.models import GenerateConfig, Model, ModelSpec, get_model
from deploysim.prefixes import (
    LoadedPrefix,
    SampleInfo,
    create_sample,
    load_prefix,
    render_continuation,
    sample_id,
)
from deploysim.schema import (
    Message,
    ReasoningPart,
    ToolDef,
    canonical_hash,
    canonical_json,
)
from deploysim.stage import Executor, LocalExecutor, RowWriter, WriterStage, placeholders
from deploysim.store import Store
from deploysim.tools import ToolDatabase, ToolLayer, ToolPolicy

# The sample and prefix names are re-exported: replay's callers draw samples through it.
__all__ = [
    "LoadedPrefix",
    "Progress",
    "ReplayQuery",
    "ReplaySpec",
    "ReplayStage",
    "ReplaySummary",
    "ReplayWorker",
    "ResultWriter",
    "RunCounts",
    "SampleInfo",
    "create_sample",
    "decode_messages",
    "decode_outcome",
    "decode_tools",
    "encode_messages",
    "encode_outcome",
    "load_prefix",
    "prepare_messages",
    "register_spec",
    "render_continuation",
    "run_replay",
    "sample_id",
]


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


@dataclass(kw_only=True)
class RunCounts:
    """What every generation run counts the same way: its failures (after retries) by error
    kind, and its wall time. Replay and rollout summaries add their own counts."""

    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def fail(self, kind: str) -> None:
        """Count one failure of this error kind."""
        self.failed += 1
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def to_json(self) -> dict[str, Any]:
        """The summary as JSON-ready data."""
        return asdict(self)


@dataclass
class ReplaySummary(RunCounts):
    """Counts of one replay run (this invocation), plus totals for the spec."""

    spec_hash: str
    model: str
    pending: int = 0
    ok: int = 0
    retries: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def progress(self) -> tuple[int, int, int]:
        """``(done, pending, failed)``: what a progress bar shows."""
        return self.ok + self.failed, self.pending, self.failed


Progress = Callable[[ReplaySummary], None]


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
    executor: Executor | None = None,
) -> ReplaySummary:
    """Replay every pending prefix of a sample with the spec's model; see the module docstring.

    ``executor`` runs the turns (default: :class:`~deploysim.stage.LocalExecutor`, asyncio in
    this process; see :func:`deploysim.execute.choose`); every executor stores the same results.
    ``concurrency`` is the calls in flight (per worker on Ray). ``model`` replaces the model the
    spec names, in this process only: other executors build theirs from the spec.
    """
    if draws < 1 or concurrency < 1:
        raise UsageError("--samples-per-prefix and --concurrency must be at least 1")
    sid = sample_id(store, sample_name)
    register_spec(store, spec)
    summary = ReplaySummary(spec_hash=spec.hash, model=spec.model)
    writer = ResultWriter(store, spec.hash, summary, on_progress)
    stage = ReplayStage(
        store=store,
        spec=spec,
        sample_id=sid,
        draws=draws,
        concurrency=concurrency,
        retry=retry or RetryPolicy(),
        retry_failed=retry_failed,
        model=model,
        tool_db=_tool_db(store, spec.tools),
        writer=writer,
        since=time.time(),
    )
    start = time.perf_counter()
    try:
        (executor or LocalExecutor()).run(store, stage)
    finally:
        writer.flush()
        summary.seconds = time.perf_counter() - start
    return summary


@dataclass
class ReplayStage(WriterStage):
    """Replay as a stage (:class:`deploysim.stage.Stage`): pending (prefix, draw) pairs in,
    turn outcomes out, stored by the driver's :class:`ResultWriter`."""

    store: Store
    spec: ReplaySpec
    sample_id: int
    draws: int
    concurrency: int
    retry: RetryPolicy
    retry_failed: bool
    model: Model | None
    tool_db: ToolDatabase | None
    writer: ResultWriter
    since: float
    name: str = "replay"

    def query(self, before: float) -> ReplayQuery:
        """The pending pairs as of ``before``."""
        return ReplayQuery(
            str(self.store.path),
            self.sample_id,
            self.spec.hash,
            self.draws,
            self.retry_failed,
            self.since,
            before,
        )

    def local_worker(self, concurrency: int) -> ReplayWorker:
        """The worker in this process, with the caller's model if there is one."""
        model = self.model or get_model(ModelSpec.parse(self.spec.model))
        return ReplayWorker(self.spec, model, self.tool_db, self.retry, concurrency, encode=False)

    def remote_worker(self) -> Callable[[int], ReplayWorker]:
        """A picklable factory of the worker, from the spec (and the driver's tool corpus)."""
        if self.model is not None:
            raise UsageError("this executor builds the model from its spec: pass no model object")
        return functools.partial(
            ReplayWorker.build, self.spec.model_dump_json(), self.retry, self.tool_db
        )

    def write(self, results: Sequence[dict[str, Any]]) -> None:
        """Store outcomes (JSON text from other processes, objects from this one)."""
        for r in results:
            o = r["outcome"]
            self.writer.add(
                int(r["prefix_id"]), int(r["draw"]), decode_outcome(o) if isinstance(o, str) else o
            )


class ReplayWorker:
    """Replay's per-batch function: the candidate model (and tool layer) built once per worker;
    the turns of a batch run concurrently, ``concurrency`` calls at once across batches."""

    def __init__(
        self,
        spec: ReplaySpec,
        model: Model,
        tool_db: ToolDatabase | None,
        retry: RetryPolicy,
        concurrency: int,
        *,
        encode: bool = True,
    ) -> None:
        self.spec = spec
        self.model = model
        self.layer = ToolLayer(tool_db, spec.tools) if tool_db is not None else None
        self.encode = encode
        # Python >= 3.10: a semaphore binds to the loop that first waits on it (the worker's).
        self.slots = asyncio.Semaphore(concurrency)
        # Backoff jitter only: results never depend on the rng.
        self.caller = Caller(model, spec.config, retry, random.Random())

    @classmethod
    def build(
        cls, spec: str, retry: RetryPolicy, tool_db: ToolDatabase | None, concurrency: int
    ) -> ReplayWorker:
        """A worker built from the spec's JSON (in a process other than the driver)."""
        replay_spec = ReplaySpec.model_validate_json(spec)
        model = get_model(ModelSpec.parse(replay_spec.model))
        return cls(replay_spec, model, tool_db, retry, concurrency)

    async def __call__(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Replay every item; one row per item: its ids and the outcome."""
        outcomes = await asyncio.gather(*(self._one(item) for item in items))
        return [
            {"prefix_id": item["prefix_id"], "draw": item["draw"], "outcome": outcome}
            for item, outcome in zip(items, outcomes, strict=True)
        ]

    async def _one(self, item: dict[str, Any]) -> TurnOutcome | str:
        async with self.slots:
            outcome = await run_turn(
                self.caller,
                prepare_messages(decode_messages(item["messages"]), self.spec),
                decode_tools(item["tools"]),
                layer=self.layer,
                max_steps=self.spec.tools.max_steps if self.layer else 1,
                conversation=item["conversation"],
                continuation=item["continuation"],
                salt=f"{item['prefix_id']}:{item['draw']}",
            )
        return encode_outcome(outcome) if self.encode else outcome

    async def aclose(self) -> None:
        """Close the model and the tool layer."""
        await self.model.aclose()
        if self.layer is not None:
            await self.layer.aclose()


def register_spec(store: Store, spec: ReplaySpec) -> None:
    """Record a replay spec (once per hash): every executor stores results against it."""
    store.db.execute(
        "INSERT OR IGNORE INTO replay_specs(hash, model, spec, created_at) VALUES (?, ?, ?, ?)",
        (spec.hash, spec.model, canonical_json(spec.model_dump(mode="json")), time.time()),
    )


def _tool_db(store: Store, policy: ToolPolicy) -> ToolDatabase | None:
    """The recorded tool results a replay answers from: every stored conversation with tool
    calls (none when tool calls end the turn)."""
    if policy.mode == "none":
        return None
    db = ToolDatabase()
    for conv in store.conversations(with_tool_calls=True):
        db.add(conv)
    return db


class ResultWriter(RowWriter[ReplaySummary]):
    """Buffers turn outcomes and commits them in small batches (a process's only writer to the
    store: executors that run turns elsewhere send outcomes back to one of these)."""

    # A retried failure replaces the failed row; an ok row is never replaced.
    sql = (
        "INSERT INTO replays(prefix_id, spec_hash, draw, status, response, "
        "finish_reason, error_kind, error, attempts, input_tokens, output_tokens, "
        "latency_s, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(prefix_id, spec_hash, draw) DO UPDATE SET "
        "status = excluded.status, response = excluded.response, "
        "finish_reason = excluded.finish_reason, error_kind = excluded.error_kind, "
        "error = excluded.error, attempts = replays.attempts + excluded.attempts, "
        "input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens, "
        "latency_s = excluded.latency_s, created_at = excluded.created_at "
        "WHERE replays.status = 'failed'"
    )

    def __init__(
        self, store: Store, spec_hash: str, summary: ReplaySummary, on_progress: Progress | None
    ) -> None:
        super().__init__(store, summary, on_progress, batch=64, seconds=0.5)
        self.spec_hash = spec_hash

    def add(self, prefix_id: int, draw: int, outcome: TurnOutcome) -> None:
        """Count a turn's outcome and queue its row."""
        s = self.summary
        s.retries += outcome.attempts - outcome.steps
        s.input_tokens += outcome.input_tokens
        s.output_tokens += outcome.output_tokens
        if not outcome.ok:
            s.fail(outcome.error_kind or "unknown")
            response = None
        else:
            s.ok += 1
            response = json.dumps([m.to_json_dict() for m in outcome.messages], ensure_ascii=False)
        self.queue(
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


# --- work items ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReplayQuery:
    """The pending (prefix, draw) pairs of one replay pass; picklable, so readers can run it.

    A pair is done when it has a row written before the pass (``before``) that is final: an
    ``ok`` row, a ``failed`` row unless failures are retried, or any row this run wrote (from
    ``since``, the run's start: a failure is retried once per run, as the local executor does).
    """

    path: str
    sample_id: int
    spec_hash: str
    draws: int
    retry_failed: bool
    since: float
    before: float

    def _done(self, alias: str = "") -> tuple[str, list[Any]]:
        statuses = ("ok",) if self.retry_failed else ("ok", "failed")
        sql = (
            f"{alias}created_at < ? AND ({alias}status IN ({placeholders(len(statuses))}) "
            f"OR {alias}created_at >= ?)"
        )
        return sql, [self.before, *statuses, self.since]

    def count(self, store: Store) -> int:
        """How many pairs this pass has to do."""
        (total,) = store.db.execute(
            "SELECT COUNT(*) FROM prefixes WHERE sample_id = ?", (self.sample_id,)
        ).fetchone()
        done_sql, done_args = self._done("r.")
        (done,) = store.db.execute(
            "SELECT COUNT(*) FROM replays r JOIN prefixes p ON p.id = r.prefix_id "
            f"WHERE p.sample_id = ? AND r.spec_hash = ? AND r.draw < ? AND {done_sql}",
            (self.sample_id, self.spec_hash, self.draws, *done_args),
        ).fetchone()
        return int(total) * self.draws - int(done)

    def plan(self, store: Store, rows: int) -> Iterator[tuple[int, int]]:
        """Prefix-id ranges ``(lo, hi]`` holding about ``rows`` pending pairs each (a prefix's
        draws stay together): one block of work each. Streams ids only."""
        lo, hi = store.db.execute(
            "SELECT MIN(id) - 1, MAX(id) FROM prefixes WHERE sample_id = ?", (self.sample_id,)
        ).fetchone()
        if lo is None:
            return
        start, last, n = lo, lo, 0
        for pid, _ in self.pending(store, lo, hi):
            if pid != last and n >= rows:
                yield start, last
                start, n = last, 0
            last, n = pid, n + 1
        if n:
            yield start, last

    def pending(
        self, store: Store, lo: int, hi: int, *, batch: int = 500
    ) -> Iterator[tuple[int, int]]:
        """Pending pairs with ``lo < prefix id <= hi``, streamed in prefix order."""
        done_sql, done_args = self._done()
        last = lo
        while True:
            ids = [
                r[0]
                for r in store.db.execute(
                    "SELECT id FROM prefixes WHERE sample_id = ? AND id > ? AND id <= ? "
                    "ORDER BY id LIMIT ?",
                    (self.sample_id, last, hi, batch),
                )
            ]
            if not ids:
                return
            done = set(
                store.db.execute(
                    f"SELECT prefix_id, draw FROM replays WHERE spec_hash = ? AND prefix_id IN "
                    f"({placeholders(len(ids))}) AND {done_sql}",
                    (self.spec_hash, *ids, *done_args),
                ).fetchall()
            )
            for pid in ids:
                for d in range(self.draws):
                    if (pid, d) not in done:
                        yield pid, d
            last = ids[-1]

    def items(self, store: Store, block: tuple[int, int]) -> Iterator[dict[str, Any]]:
        """The work items of one block of :meth:`plan`: ids, and the prefix as JSON (see
        :func:`decode_messages`); a prefix is loaded once for all its draws."""
        cached: dict[str, Any] = {"prefix_id": None}
        for pid, draw in self.pending(store, *block):
            if cached["prefix_id"] != pid:
                prefix = load_prefix(store, pid)
                cached = {
                    "prefix_id": pid,
                    "conversation": prefix.conversation_hash,
                    "continuation": render_continuation(prefix.continuation),
                    "messages": encode_messages(prefix.messages),
                    "tools": json.dumps(
                        [t.model_dump(mode="json", exclude_defaults=True) for t in prefix.tools],
                        ensure_ascii=False,
                    ),
                }
            yield {**cached, "draw": draw}


def encode_messages(messages: Iterable[Message]) -> str:
    """Messages as JSON text, in the store's own encoding (defaults omitted)."""
    return json.dumps([m.to_json_dict() for m in messages], ensure_ascii=False)


def decode_messages(text: str) -> list[Message]:
    """The messages of :func:`encode_messages`."""
    return [Message.model_validate(m) for m in json.loads(text)]


def decode_tools(text: str) -> tuple[ToolDef, ...]:
    """The tool definitions of a replay work item."""
    return tuple(ToolDef.model_validate(t) for t in json.loads(text))


def encode_outcome(outcome: TurnOutcome) -> str:
    """A turn's outcome as JSON text, for the trip back to the driver."""
    data = {f.name: getattr(outcome, f.name) for f in fields(outcome)}
    data["messages"] = [m.to_json_dict() for m in outcome.messages]
    return json.dumps(data, ensure_ascii=False)


def decode_outcome(text: str) -> TurnOutcome:
    """The outcome of :func:`encode_outcome`."""
    data = json.loads(text)
    data["messages"] = [Message.model_validate(m) for m in data["messages"]]
    return TurnOutcome(**data)
