"""Work items for executors that run turns away from the store, and the queries that find them.

Only the driver writes to the store. Readers open it read-only (:class:`ReadOnlyStore`) and
stream *pending* work: (prefix, draw) pairs without a result (:class:`ReplayQuery`), or
(target, grader) pairs without a grade (:class:`GradeQuery`). A work item is self-contained JSON
(the prefix's messages and tools, or the transcript a grader sees), so whatever runs it needs no
store and can run on any machine; its result comes back to the driver keyed by the same ids.

Plans. The driver cuts the pending work into blocks of ids (``plan``: prefix-id ranges, or
chunks of grading targets) and readers turn one block of ids into work items (``items``); the
plan, a few integers per block, is all of a run the driver holds.

Snapshots. A *pass* reads pending work as of its start time ``before``: rows the driver writes
during the pass do not change what the pass's readers yield. That makes a read repeatable, which
Ray relies on when it re-executes a read task that died. A run ends each pass by counting what
is still missing (``count`` with a new ``before``) and runs another pass for it, so work lost
anywhere is done once, not never.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from deploysim.agent import TurnOutcome
from deploysim.graders import GradeItem, GradeResult
from deploysim.grading import (
    GRADE_INSERT,
    GradeSummary,
    Target,
    _count,
    grade_row,
    load_item,
    targets,
)
from deploysim.replay import load_prefix, render_continuation
from deploysim.schema import Message, ToolDef
from deploysim.store import Store


class ReadOnlyStore(Store):
    """A store opened read-only: for readers beside the driver, which is the only writer.

    It skips :class:`Store`'s set-up (WAL switch, migrations), which writes: the driver has
    already opened (and migrated) the file. SQLite's WAL lets it read while the driver writes.
    """

    def __init__(self, path: str | Path) -> None:  # no super().__init__: it would write
        self.path = Path(path)
        uri = f"{self.path.resolve().as_uri()}?mode=ro"
        self.db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA query_only=ON")


def _marks(n: int) -> str:
    return ",".join("?" * n)


# --- replay ----------------------------------------------------------------------------------


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
            f"{alias}created_at < ? AND ({alias}status IN ({_marks(len(statuses))}) "
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
                    f"({_marks(len(ids))}) AND {done_sql}",
                    (self.spec_hash, *ids, *done_args),
                ).fetchall()
            )
            for pid in ids:
                for d in range(self.draws):
                    if (pid, d) not in done:
                        yield pid, d
            last = ids[-1]

    def items(self, store: Store, lo: int, hi: int) -> Iterator[dict[str, Any]]:
        """The work items of :meth:`pending`: ids, and the prefix as JSON (see
        :func:`decode_messages`); a prefix is loaded once for all its draws."""
        cached: dict[str, Any] = {"prefix_id": None}
        for pid, draw in self.pending(store, lo, hi):
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


# --- grading ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GradeQuery:
    """The pending (target, grader) pairs of one grading pass; picklable, so readers can run
    it. Targets are those of :func:`deploysim.grading.targets`; graders are given by hash, and
    a pair is done when it has a grade written before the pass (grades are never replaced)."""

    path: str
    hashes: tuple[str, ...]
    models: tuple[str, ...]
    replays: bool
    references: bool
    sample: str | None
    before: float

    def pending(self, store: Store, *, chunk: int = 500) -> Iterator[tuple[Target, list[int]]]:
        """Targets with at least one grader to go, and those graders (indexes into
        ``hashes``): targets in order, as the local executor takes them."""
        todo = targets(
            store,
            models=self.models,
            replays=self.replays,
            references=self.references,
            sample=self.sample,
        )
        buffer: list[Target] = []
        for target in todo:
            buffer.append(target)
            if len(buffer) >= chunk:
                yield from self._undone(store, buffer)
                buffer = []
        yield from self._undone(store, buffer)

    def _undone(self, store: Store, chunk: Sequence[Target]) -> Iterator[tuple[Target, list[int]]]:
        done: set[tuple[str, int, str]] = set()
        for kind in ("replay", "reference"):
            ids = [t.id for t in chunk if t.kind == kind]
            if ids:
                done.update(
                    store.db.execute(
                        "SELECT target, target_id, grader_hash FROM grades WHERE target = ? "
                        f"AND target_id IN ({_marks(len(ids))}) "
                        f"AND grader_hash IN ({_marks(len(self.hashes))}) AND created_at < ?",
                        (kind, *ids, *self.hashes, self.before),
                    ).fetchall()
                )
        for t in chunk:
            graders = [i for i, h in enumerate(self.hashes) if (t.kind, t.id, h) not in done]
            if graders:
                yield t, graders

    def count(self, store: Store) -> int:
        """How many (target, grader) pairs this pass has to do."""
        return sum(len(graders) for _, graders in self.pending(store))

    def plan(self, store: Store, rows: int) -> Iterator[list[tuple[Target, list[int]]]]:
        """:meth:`pending` in chunks of about ``rows`` (target, grader) pairs: one block of
        work each. A chunk names its targets (ids), since targets are no id range."""
        chunk: list[tuple[Target, list[int]]] = []
        n = 0
        for target, graders in self.pending(store):
            if n >= rows:
                yield chunk
                chunk, n = [], 0
            chunk.append((target, graders))
            n += len(graders)
        if chunk:
            yield chunk

    @staticmethod
    def items(store: Store, chunk: Sequence[tuple[Target, list[int]]]) -> Iterator[dict[str, Any]]:
        """The work items of a chunk: ids, the graders to run (comma-separated indexes) and
        the transcript a grader sees as JSON (a ``GradeItem``)."""
        for target, graders in chunk:
            yield {
                "target": target.kind,
                "target_id": target.id,
                "graders": ",".join(map(str, graders)),
                "item": load_item(store, target).model_dump_json(),
            }


def decode_item(text: str) -> GradeItem:
    """The transcript of a grading work item."""
    return GradeItem.model_validate_json(text)


class GradeWriter:
    """Buffers grades and commits them in small batches, as the local executor does (the same
    ``INSERT OR IGNORE``: a grade already stored is kept)."""

    def __init__(
        self,
        store: Store,
        summary: GradeSummary,
        on_progress: Callable[[GradeSummary], None] | None,
        *,
        start: float,
    ) -> None:
        self.store = store
        self.summary = summary
        self.on_progress = on_progress
        self.start = start
        self.rows: list[tuple[Any, ...]] = []

    def add(
        self, target: str, target_id: int, spec: str, h: str, category: str, result: GradeResult
    ) -> None:
        """Count a grade and queue its row."""
        _count(self.summary, spec, result)
        self.rows.append(grade_row(target, target_id, h, category, result))
        if len(self.rows) >= 32:
            self.flush()

    def flush(self) -> None:
        """Commit the queued rows and report progress."""
        if self.rows:
            with self.store.transaction():
                self.store.db.executemany(GRADE_INSERT, self.rows)
            self.rows.clear()
        self.summary.seconds = time.perf_counter() - self.start
        if self.on_progress is not None:
            self.on_progress(self.summary)
