"""The seam between a stage (replay, grading) and the executor that runs its work.

A stage says *what* to do, as four things an executor can run anywhere:

- a :class:`Query` (picklable): how much work is pending (``count``), that work cut into blocks
  of ids (``plan``, on the driver), and one block's work items (``items``: ids plus JSON, read
  from the store by whoever runs the block);
- a per-batch function (:class:`BatchFunction`): work items in, result rows out. It is built once
  per worker, in this process from the caller's objects (``local_worker``) or elsewhere from spec
  strings (``remote_worker``: a picklable factory);
- ``write`` / ``flush``: the driver stores result rows (the only writer to the store);
- ``begin``: the pending count at the start.

An :class:`Executor` says *where*: :class:`LocalExecutor` (asyncio in this process, the
default), :class:`deploysim.execute.processes.ProcessExecutor` (local processes) and
:class:`deploysim.execute.ray_executor.RayExecutor` (a Ray cluster) run the same per-batch
function over the same blocks, so the stored results do not depend on the executor. Stages
take an executor and never import :mod:`deploysim.execute`; the CLI and ``run`` choose one
(:func:`deploysim.execute.choose`).

Passes. A pass reads pending work as of its start (``before``), so a re-read block yields the
same items; after each pass the executor counts what is still missing and runs another pass for
it (:func:`passes`), so work lost anywhere is done once, not never.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from deploysim.errors import IncompleteRunError
from deploysim.store import Store

S = TypeVar("S")

Item = dict[str, Any]
"""One unit of work: ids, and what the work needs as JSON text (no store needed to run it)."""
Result = dict[str, Any]
"""One result row, keyed by the ids of its item."""

# Passes per run: the first does everything unless a worker was lost beyond what was retried.
MAX_PASSES = 3
# Blocks in flight per worker: while one block finishes its last calls, the others keep the
# worker's calls in flight (measured on Ray: 2 -> 4 took ~300 to ~500 requests/s).
BLOCKS_PER_WORKER = 4
# Work items per block, in multiples of a worker's concurrency.
BLOCK_CONCURRENCY_MULTIPLE = 4


class BatchFunction(Protocol):
    """A stage's per-batch function: built once per worker, called with blocks of work items
    (several at once on the worker's event loop; it caps its own calls in flight)."""

    async def __call__(self, items: list[Item]) -> list[Result]:
        """Run the items; one or more result rows per item."""
        ...

    async def aclose(self) -> None:
        """Release what the worker holds (clients, models)."""
        ...


WorkerFactory = Callable[[int], BatchFunction]
"""Builds a stage's per-batch function with a concurrency (picklable: it crosses processes)."""


class Query(Protocol):
    """The pending work of one pass (picklable: readers beside the driver run it)."""

    @property
    def path(self) -> str:
        """The store's file, which readers open read-only."""
        ...

    def count(self, store: Store) -> int:
        """How many work items the pass has to do."""
        ...

    def plan(self, store: Store, rows: int) -> Iterator[Any]:
        """The work cut into blocks of about ``rows`` items (picklable ids, no content)."""
        ...

    def items(self, store: Store, block: Any) -> Iterator[Item]:
        """The work items of one block."""
        ...


class Stage(Protocol):
    """A stage's work as an executor sees it (see the module docstring)."""

    name: str
    concurrency: int

    def query(self, before: float) -> Query:
        """The pending work as of ``before`` (a pass's start)."""
        ...

    def local_worker(self, concurrency: int) -> BatchFunction:
        """The per-batch function, built in this process (it may use the caller's objects)."""
        ...

    def remote_worker(self) -> WorkerFactory:
        """A picklable factory of the per-batch function, for workers in other processes; a
        :class:`~deploysim.errors.UsageError` where the stage cannot be rebuilt from specs."""
        ...

    def begin(self, pending: int) -> None:
        """The first pass starts with ``pending`` items."""
        ...

    def write(self, results: Sequence[Result]) -> None:
        """Store result rows (on the driver)."""
        ...

    def flush(self) -> None:
        """Commit what ``write`` buffered (the end of a pass: the next one counts from it)."""
        ...


class Summary(Protocol):
    """A stage's run counts; the pending count is the one every stage shares."""

    pending: int


class Progressing(Protocol):
    """A stage's summary that says how far the run is."""

    @property
    def progress(self) -> tuple[int, int, int]:
        """``(done, pending, failed)``."""
        ...


Bar = Callable[[int, int, int], None]
"""A progress display's update: ``bar(done, pending, failed)``."""


def show_on(bar: Bar) -> Callable[[Progressing], None]:
    """A stage's ``on_progress`` callback that shows the summary's progress on ``bar``."""
    return lambda summary: bar(*summary.progress)


class Writer(Protocol):
    """A stage's driver-side writer: buffers result rows, commits them on ``flush``."""

    @property
    def summary(self) -> Summary:
        """The counts of this run."""
        ...

    def flush(self) -> None:
        """Commit the buffered rows."""
        ...


def placeholders(n: int) -> str:
    """``?, ?, ...``: the SQL parameter marks of an ``IN`` list of ``n`` values (a query's)."""
    return ",".join("?" * n)


class RowWriter(Generic[S]):
    """The driver's writer of a stage (the only writer to the store): buffers result rows and
    commits them with one statement, ``sql``, in small batches (every ``batch`` rows, or when
    ``seconds`` have passed since the last commit), then reports ``summary``."""

    sql: str

    def __init__(
        self,
        store: Store,
        summary: S,
        on_progress: Callable[[S], None] | None,
        *,
        batch: int,
        seconds: float = math.inf,
    ) -> None:
        self.store = store
        self.summary = summary
        self.on_progress = on_progress
        self.batch = batch
        self.seconds = seconds
        self.rows: list[tuple[Any, ...]] = []
        self.last_flush = time.monotonic()

    def queue(self, row: tuple[Any, ...]) -> None:
        """Buffer one row; commit the buffer when it is due."""
        self.rows.append(row)
        if len(self.rows) >= self.batch or time.monotonic() - self.last_flush > self.seconds:
            self.flush()

    def flush(self) -> None:
        """Commit the buffered rows and report progress."""
        if self.rows:
            with self.store.transaction():
                self.store.db.executemany(self.sql, self.rows)
            self.rows.clear()
        self.last_flush = time.monotonic()
        self.flushed()
        if self.on_progress is not None:
            self.on_progress(self.summary)

    def flushed(self) -> None:
        """After each commit, before progress is reported (a stage may update its summary)."""


class WriterStage:
    """``begin`` and ``flush`` of a stage whose rows go through a :class:`Writer` (replay,
    grading): the pending count goes into the writer's summary, a flush commits its buffer."""

    writer: Writer

    def begin(self, pending: int) -> None:
        """Record the items pending at the start."""
        self.writer.summary.pending = pending

    def flush(self) -> None:
        """Commit the buffered results."""
        self.writer.flush()


class Executor(Protocol):
    """Runs a stage's pending work and hands every result row to ``stage.write``."""

    def run(self, store: Store, stage: Stage) -> None:
        """Run every pending item of ``stage`` (several passes if work was lost)."""
        ...


def passes(store: Store, stage: Stage, since: float) -> Iterator[tuple[Query, int]]:
    """The query of each pass of a run and its count of work, while work is missing.

    Pass 1 reads as of the run's start ``since`` (what earlier runs stored); each later pass as
    of its own start, so it finds only what earlier passes lost. The first count goes to
    ``stage.begin``. Raises :class:`IncompleteRunError` after :data:`MAX_PASSES` passes.
    """
    for n in range(MAX_PASSES + 1):
        query = stage.query(since if n == 0 else time.time())
        todo = query.count(store)
        if n == 0:
            stage.begin(todo)
        if todo == 0:
            return
        if n == MAX_PASSES:
            raise IncompleteRunError(
                f"{stage.name}: {todo} items still missing after {MAX_PASSES} passes (workers "
                "kept dying?); what was done is stored: run again to resume"
            )
        yield query, todo
        stage.flush()  # the next pass's count must see this pass's results


def block_rows(todo: int, concurrency: int, workers: int) -> int:
    """Work items per block: enough to keep a worker's calls in flight, few enough that every
    worker gets several blocks even when the work is small."""
    return max(1, min(BLOCK_CONCURRENCY_MULTIPLE * concurrency, math.ceil(todo / (4 * workers))))


class LocalExecutor:
    """The default executor: every block on one asyncio event loop in this process, with the
    stage's own objects (a model or graders the caller built), ``concurrency`` calls at once."""

    name = "local"

    def run(self, store: Store, stage: Stage) -> None:
        """Run the stage's pending work here (not from inside a running event loop)."""
        asyncio.run(self._run(store, stage))

    async def _run(self, store: Store, stage: Stage) -> None:
        worker = stage.local_worker(stage.concurrency)
        running: set[asyncio.Future[list[Result]]] = set()
        try:
            for query, todo in passes(store, stage, time.time()):
                for block in query.plan(store, block_rows(todo, stage.concurrency, 1)):
                    running.add(asyncio.ensure_future(worker(list(query.items(store, block)))))
                    if len(running) >= BLOCKS_PER_WORKER:
                        done, running = await asyncio.wait(
                            running, return_when=asyncio.FIRST_COMPLETED
                        )
                        for task in done:
                            stage.write(task.result())
                while running:
                    done, running = await asyncio.wait(running)
                    for task in done:
                        stage.write(task.result())
        finally:
            for task in running:  # an error stopped the run: no block outlives it
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            await worker.aclose()


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
