"""What runs on the Ray cluster: the work readers (a datasource) and the actor that runs a stage's
per-batch function.

The driver plans the pending work as blocks of ids (a stage's :class:`~deploysim.stage.Query`);
each block is one read task here, which opens the store read-only and turns the ids into work
items, one block of them. Read tasks run on the driver's node only (the store is a local SQLite
file there). Actors (``map_batches`` with an actor pool) build the stage's per-batch function
once, from the stage's picklable factory (spec strings), and run every item of a block
concurrently on the actor's event loop; what they send back is JSON keyed by ids."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
from ray.data.block import Block, BlockAccessor, BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from deploysim.stage import Query, ReadOnlyStore, WorkerFactory

Batch = dict[str, np.ndarray[Any, Any]]


def _block(rows: Iterable[dict[str, Any]]) -> Iterator[Block]:
    """Rows as one block (columns of Python values); no block for no rows."""
    listed = list(rows)
    if listed:
        yield BlockAccessor.batch_to_block(columns(listed))


def columns(rows: list[dict[str, Any]]) -> Batch:
    """Rows (dicts with the same keys) as columns of Python objects."""
    return {k: np.array([r[k] for r in rows], dtype=object) for k in rows[0]} if rows else {}


def rows(batch: Batch) -> list[dict[str, Any]]:
    """The rows of :func:`columns`."""
    keys = list(batch)
    values = [batch[k].tolist() for k in keys]
    return [dict(zip(keys, row, strict=True)) for row in zip(*values, strict=True)]


class _StoreSource(Datasource):
    """A datasource of work blocks read from the store on the driver's node, one read task
    (and one block, and one actor task) per block of work the driver planned."""

    def __init__(self, reads: list[Callable[[], Iterator[Block]]]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.reads = reads

    @property
    def supports_distributed_reads(self) -> bool:
        """Read tasks run on the driver's node: the store is a file there."""
        return False

    def estimate_inmemory_data_size(self) -> int | None:
        """Unknown until read."""
        return None

    def get_read_tasks(
        self, parallelism: int, per_task_row_limit: int | None = None, data_context: Any = None
    ) -> list[ReadTask]:
        """One read task per planned block, whatever the parallelism asked for."""
        meta = BlockMetadata(num_rows=None, size_bytes=None, exec_stats=None)
        return [ReadTask(read, meta) for read in self.reads]


def store_source(query: Query, blocks: Iterable[Any]) -> Datasource:
    """Pending work, one Ray block per block of ``query.plan``."""
    return _StoreSource([functools.partial(_read, query, b) for b in blocks])


def _read(query: Query, block: Any) -> Iterator[Block]:
    with ReadOnlyStore(query.path) as store:
        yield from _block(query.items(store, block))


class StageActor:
    """Runs a stage's per-batch function, built once per actor.

    ``__call__`` is a coroutine, so Ray Data runs several blocks at once on the actor's event
    loop; the function's own semaphore caps the calls in flight at ``concurrency``.
    """

    def __init__(self, *, factory: WorkerFactory, concurrency: int) -> None:
        self.worker = factory(concurrency)

    async def __call__(self, batch: Batch) -> Batch:
        """Run every item of a batch; the result rows as columns."""
        return columns(await self.worker(rows(batch)))
