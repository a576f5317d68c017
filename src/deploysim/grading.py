"""Grading stored replays and logged reference responses, resumably.

Each grade is keyed by (target, target id, grader hash): the same grader never grades the same
response twice, so re-running is a no-op, and a changed grader is a new hash whose grades sit
beside the old ones. Failed replays are not graded (they are counted as failures in estimates);
grades that could not be made are stored as ``ungradable`` and counted.

Grading is a stage (:mod:`deploysim.stage`): :class:`GradeQuery` finds the pending (target,
grader) pairs, :class:`GradeWorker` grades a batch wherever the executor puts it, and the
driver's :class:`GradeWriter` stores the grades; the executor is the caller's choice.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from deploysim.errors import UsageError
from deploysim.graders import GradeItem, Grader, GradeResult, get_grader
from deploysim.prefixes import load_prefix
from deploysim.schema import Message, canonical_json
from deploysim.stage import Executor, LocalExecutor, RowWriter, WriterStage, placeholders
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

    @property
    def progress(self) -> tuple[int, int, int]:
        """``(done, pending, failed)``: what a progress bar shows (ungradable counts as failed)."""
        return self.ok + self.ungradable, self.pending, self.ungradable

    def to_json(self) -> dict[str, Any]:
        """The summary as JSON-ready data."""
        return asdict(self)


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
    """Responses to grade: ok replays (optionally of some models) and logged references,
    grouped by prefix (its replays, then its logged reply).

    The grouping is for speed: a judge's prompt holds the prefix before the reply, so the
    responses to one prefix graded one after another share most of their prompt, and a local
    judge evaluates it once (llama.cpp keeps the longest common token prefix).
    """
    parts, args = list[str](), list[str]()
    in_sample = " AND p.sample_id = (SELECT id FROM samples WHERE name = ?)" if sample else ""
    if replays:
        where = "r.status = 'ok'" + in_sample
        args.extend([sample] if sample else [])
        if models:
            where += f" AND s.model IN ({','.join('?' * len(models))})"
            args.extend(models)
        parts.append(
            "SELECT 'replay' AS kind, r.id AS id, r.prefix_id AS pid FROM replays r "
            "JOIN replay_specs s ON s.hash = r.spec_hash "
            f"JOIN prefixes p ON p.id = r.prefix_id WHERE {where}"
        )
    if references:
        parts.append(
            "SELECT 'reference' AS kind, p.id AS id, p.id AS pid FROM prefixes p "
            f"WHERE p.reference_index IS NOT NULL{in_sample}"
        )
        args.extend([sample] if sample else [])
    if not parts:
        return
    # 'replay' sorts after 'reference': descending puts a prefix's replays first.
    query = " UNION ALL ".join(parts) + " ORDER BY pid, kind DESC, id"
    for kind, tid, pid in store.db.execute(query, args).fetchall():
        yield Target(kind, tid, pid)


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
    executor: Executor | None = None,
    default_judge: str | None = None,
    taxonomy_file: Path | None = None,
) -> GradeSummary:
    """Grade every target not yet graded by each grader; see the module docstring.

    ``executor`` runs the grading (default: :class:`~deploysim.stage.LocalExecutor`, asyncio in
    this process, with the graders given). Other executors rebuild each grader from its spec with
    ``get_grader(spec, default_judge=..., taxonomy_file=...)`` and refuse one that builds
    differently (another hash) from the grader given here.
    """
    if concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    summary = GradeSummary()
    start = time.perf_counter()
    hashes = tuple(register_grader(store, g, spec) for spec, g in graders)
    stage = GradeStage(
        store=store,
        graders=tuple(graders),
        hashes=hashes,
        targets=GradeTargets(tuple(models), replays, references, sample),
        concurrency=concurrency,
        default_judge=default_judge,
        taxonomy_file=str(taxonomy_file) if taxonomy_file else None,
        writer=GradeWriter(store, summary, on_progress, start=start),
    )
    try:
        (executor or LocalExecutor()).run(store, stage)
    finally:
        stage.writer.flush()
    return summary


@dataclass(frozen=True, slots=True)
class GradeTargets:
    """Which responses to grade (see :func:`targets`)."""

    models: tuple[str, ...]
    replays: bool
    references: bool
    sample: str | None


@dataclass
class GradeStage(WriterStage):
    """Grading as a stage (:class:`deploysim.stage.Stage`): pending (target, grader) pairs in,
    grades out, stored by the driver's :class:`GradeWriter`."""

    store: Store
    graders: tuple[tuple[str, Grader], ...]
    hashes: tuple[str, ...]
    targets: GradeTargets
    concurrency: int
    default_judge: str | None
    taxonomy_file: str | None
    writer: GradeWriter
    name: str = "grading"

    def query(self, before: float) -> GradeQuery:
        """The pending pairs as of ``before``."""
        t = self.targets
        return GradeQuery(
            str(self.store.path), self.hashes, t.models, t.replays, t.references, t.sample, before
        )

    def local_worker(self, concurrency: int) -> GradeWorker:
        """The worker in this process, with the graders given."""
        return GradeWorker([g for _, g in self.graders], concurrency, encode=False)

    def remote_worker(self) -> Callable[[int], GradeWorker]:
        """A picklable factory of the worker: each grader rebuilt from its spec."""
        specs = [s for s, _ in self.graders]
        return functools.partial(
            GradeWorker.build, specs, list(self.hashes), self.default_judge, self.taxonomy_file
        )

    def write(self, results: Sequence[dict[str, Any]]) -> None:
        """Store grades (JSON text from other processes, objects from this one)."""
        for r in results:
            i, result = int(r["grader"]), r["result"]
            if isinstance(result, str):
                result = GradeResult.model_validate_json(result)
            spec, grader = self.graders[i]
            self.writer.add(
                str(r["target"]), int(r["target_id"]), spec, self.hashes[i], grader.category, result
            )


class GradeWorker:
    """Grading's per-batch function: the graders built once per worker; the grades of a batch
    run concurrently, ``concurrency`` at once across batches."""

    def __init__(self, graders: Sequence[Grader], concurrency: int, *, encode: bool = True) -> None:
        self.graders = list(graders)
        self.encode = encode
        self.slots = asyncio.Semaphore(concurrency)

    @classmethod
    def build(
        cls,
        specs: list[str],
        hashes: list[str],
        default_judge: str | None,
        taxonomy_file: str | None,
        concurrency: int,
    ) -> GradeWorker:
        """Graders built from their specs (in a process other than the driver), each checked
        against the hash the driver registered: a grader that builds differently there (e.g.
        from another taxonomy file) would store grades under the wrong version."""
        taxonomy = Path(taxonomy_file) if taxonomy_file else None
        graders = [
            get_grader(s, default_judge=default_judge, taxonomy_file=taxonomy) for s in specs
        ]
        for spec, grader, h in zip(specs, graders, hashes, strict=True):
            if grader.spec_hash != h:
                raise UsageError(
                    f"grader {spec!r} builds differently on this worker (hash "
                    f"{grader.spec_hash[:12]}, driver {h[:12]}): pass the default judge and "
                    "taxonomy file it was built with, and install the same deploysim everywhere"
                )
        return cls(graders, concurrency)

    async def __call__(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Grade every item with its pending graders; one row per grade."""
        jobs = [
            (item, int(g), decode_item(item["item"]))
            for item in items
            for g in str(item["graders"]).split(",")
        ]
        results = await asyncio.gather(*(self._one(g, it) for _, g, it in jobs))
        return [
            {"target": item["target"], "target_id": item["target_id"], "grader": g, "result": r}
            for (item, g, _), r in zip(jobs, results, strict=True)
        ]

    async def _one(self, grader: int, item: GradeItem) -> GradeResult | str:
        async with self.slots:
            try:
                result = await self.graders[grader].grade(item)
            except Exception as e:  # a grader bug must not lose the other grades
                result = GradeResult.ungradable(f"internal: {type(e).__name__}: {e}")
        return result.model_dump_json() if self.encode else result

    async def aclose(self) -> None:
        """Close the graders (and their judges)."""
        for g in self.graders:
            await g.aclose()


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


# --- work items ------------------------------------------------------------------------------


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
                        f"AND target_id IN ({placeholders(len(ids))}) "
                        f"AND grader_hash IN ({placeholders(len(self.hashes))}) AND created_at < ?",
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


class GradeWriter(RowWriter[GradeSummary]):
    """Buffers grades and commits them in small batches, as the local executor does (the same
    ``INSERT OR IGNORE``: a grade already stored is kept)."""

    sql = GRADE_INSERT

    def __init__(
        self,
        store: Store,
        summary: GradeSummary,
        on_progress: Callable[[GradeSummary], None] | None,
        *,
        start: float,
    ) -> None:
        super().__init__(store, summary, on_progress, batch=32)
        self.start = start

    def add(
        self, target: str, target_id: int, spec: str, h: str, category: str, result: GradeResult
    ) -> None:
        """Count a grade and queue its row."""
        _count(self.summary, spec, result)
        self.queue(grade_row(target, target_id, h, category, result))

    def flushed(self) -> None:
        """Keep the run's time current for the progress report."""
        self.summary.seconds = time.perf_counter() - self.start
