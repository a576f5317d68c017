"""Grading stored replays and logged reference responses, resumably.

Each grade is keyed by (target, target id, grader hash): the same grader never grades the same
response twice, so re-running is a no-op, and a changed grader is a new hash whose grades sit
beside the old ones. Failed replays are not graded (they are counted as failures in estimates);
grades that could not be made are stored as ``ungradable`` and counted.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from deploysim.graders import GradeItem, Grader, GradeResult
from deploysim.replay import load_prefix
from deploysim.schema import Message, canonical_json
from deploysim.store import Store


@dataclass
class GradeSummary:
    """Counts of one grading run."""

    pending: int = 0
    ok: int = 0
    ungradable: int = 0
    flagged: int = 0
    by_grader: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The summary as JSON-ready data."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class Target:
    """A response to grade: a replay (by replay id) or a logged reference (by prefix id)."""

    kind: str  # "replay" | "reference"
    id: int
    prefix_id: int


def register_grader(store: Store, grader: Grader, spec: str) -> str:
    """Record a grader's definition (once per version); returns its hash."""
    store.db.execute(
        "INSERT OR IGNORE INTO graders(hash, spec, category, definition, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (grader.spec_hash, spec, grader.category, canonical_json(grader.definition()), time.time()),
    )
    return grader.spec_hash


def targets(
    store: Store,
    *,
    models: Sequence[str] = (),
    replays: bool = True,
    references: bool = True,
    sample: str | None = None,
) -> Iterator[Target]:
    """Responses to grade: ok replays (optionally of some models), then logged references."""
    where, args = "r.status = 'ok'", list[str]()
    if models:
        where += f" AND s.model IN ({','.join('?' * len(models))})"
        args.extend(models)
    if sample:
        where += " AND p.sample_id = (SELECT id FROM samples WHERE name = ?)"
        args.append(sample)
    if replays:
        rows = store.db.execute(
            "SELECT r.id, r.prefix_id FROM replays r JOIN replay_specs s ON s.hash = r.spec_hash "
            f"JOIN prefixes p ON p.id = r.prefix_id WHERE {where} ORDER BY r.id",
            args,
        ).fetchall()
        yield from (Target("replay", rid, pid) for rid, pid in rows)
    if references:
        ref_where, ref_args = "reference_index IS NOT NULL", list[str]()
        if sample:
            ref_where += " AND sample_id = (SELECT id FROM samples WHERE name = ?)"
            ref_args.append(sample)
        yield from (
            Target("reference", pid, pid)
            for (pid,) in store.db.execute(
                f"SELECT id FROM prefixes WHERE {ref_where} ORDER BY id", ref_args
            ).fetchall()
        )


def load_item(store: Store, target: Target) -> GradeItem:
    """The transcript a grader sees for a target."""
    prefix = load_prefix(store, target.prefix_id)
    if target.kind == "replay":
        (body,) = store.db.execute(
            "SELECT response FROM replays WHERE id = ?", (target.id,)
        ).fetchone()
        response = tuple(Message.model_validate(m) for m in json.loads(body))
    else:
        chash, ref = store.db.execute(
            "SELECT conversation_hash, reference_index FROM prefixes WHERE id = ?", (target.id,)
        ).fetchone()
        response = (store.conversation(chash).messages[ref],)
    return GradeItem(prefix=prefix.messages, response=response, tools=prefix.tools)


def run_grading(
    store: Store,
    graders: Sequence[tuple[str, Grader]],
    *,
    models: Sequence[str] = (),
    replays: bool = True,
    references: bool = True,
    sample: str | None = None,
    concurrency: int = 4,
    on_progress: Callable[[GradeSummary], None] | None = None,
) -> GradeSummary:
    """Grade every target not yet graded by each grader; see the module docstring."""
    return asyncio.run(
        _grade_async(
            store,
            graders,
            targets(store, models=models, replays=replays, references=references, sample=sample),
            concurrency,
            on_progress,
        )
    )


async def _grade_async(
    store: Store,
    graders: Sequence[tuple[str, Grader]],
    todo: Iterator[Target],
    concurrency: int,
    on_progress: Callable[[GradeSummary], None] | None,
) -> GradeSummary:
    summary = GradeSummary()
    start = time.perf_counter()
    hashes = [register_grader(store, g, spec) for spec, g in graders]
    done = {
        h: set(
            store.db.execute(
                "SELECT target, target_id FROM grades WHERE grader_hash = ?", (h,)
            ).fetchall()
        )
        for h in hashes
    }
    work = [
        (t, spec, g, h)
        for t in todo
        for (spec, g), h in zip(graders, hashes, strict=True)
        if (t.kind, t.id) not in done[h]
    ]
    summary.pending = len(work)
    rows: list[tuple[Any, ...]] = []
    sem = asyncio.Semaphore(concurrency)
    items: dict[tuple[str, int], GradeItem] = {}

    def flush() -> None:
        if rows:
            with store.transaction():
                store.db.executemany(GRADE_INSERT, rows)
            rows.clear()
        summary.seconds = time.perf_counter() - start
        if on_progress is not None:
            on_progress(summary)

    async def one(target: Target, spec: str, grader: Grader, h: str) -> None:
        key = (target.kind, target.id)
        if key not in items:
            items[key] = load_item(store, target)
        async with sem:
            try:
                result = await grader.grade(items[key])
            except Exception as e:  # a grader bug must not lose the other grades
                result = GradeResult.ungradable(f"internal: {type(e).__name__}: {e}")
        _count(summary, spec, result)
        rows.append(grade_row(target.kind, target.id, h, grader.category, result))
        if len(rows) >= 32:
            flush()

    try:
        # Targets in order, graders within a target: items are loaded once and then dropped.
        for i in range(0, len(work), 256):
            await asyncio.gather(*(one(*w) for w in work[i : i + 256]))
            items.clear()
    finally:
        flush()
        for _, g in graders:
            await g.aclose()
    return summary


GRADE_INSERT = (
    "INSERT OR IGNORE INTO grades(target, target_id, grader_hash, category, status, score, "
    "flagged, severity, rationale, error, attempts, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
"""Stores one grade row (:func:`grade_row`); a grade already stored is kept."""


def grade_row(
    target: str, target_id: int, grader_hash: str, category: str, result: GradeResult
) -> tuple[Any, ...]:
    """The ``grades`` row of ``result``, in :data:`GRADE_INSERT`'s column order."""
    return (
        target,
        target_id,
        grader_hash,
        category,
        result.status,
        result.score,
        None if result.flagged is None else int(result.flagged),
        result.severity,
        result.rationale,
        result.error,
        result.attempts,
        time.time(),
    )


def _count(summary: GradeSummary, spec: str, result: GradeResult) -> None:
    per = summary.by_grader.setdefault(spec, {"ok": 0, "ungradable": 0, "flagged": 0})
    if result.status == "ok":
        summary.ok += 1
        per["ok"] += 1
        if result.flagged:
            summary.flagged += 1
            per["flagged"] += 1
    else:
        summary.ungradable += 1
        per["ungradable"] += 1
