"""What runs on the Ray cluster: the work readers (a datasource) and the actors that run turns.

The driver plans the pending work as blocks of ids (:mod:`deploysim.execute.work`); each block is
one read task here, which opens the store read-only and turns the ids into work items, one block
of them. Read tasks run on the driver's node only (the store is a local SQLite file there).
Actors (``map_batches`` with an actor pool) build their model, tool layer or graders once, from
the spec strings stored with the results, and run every item of a block concurrently on the
actor's event loop; what they send back is JSON keyed by ids."""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from ray.data.block import Block, BlockAccessor, BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from deploysim.agent import RetryPolicy, run_turn
from deploysim.errors import UsageError
from deploysim.execute.work import (
    GradeQuery,
    ReadOnlyStore,
    ReplayQuery,
    decode_item,
    decode_messages,
    decode_tools,
    encode_outcome,
)
from deploysim.graders import GradeItem, GradeResult, get_grader
from deploysim.grading import Target
from deploysim.models import ModelSpec, get_model
from deploysim.replay import ReplaySpec, prepare_messages
from deploysim.tools import ToolDatabase, ToolLayer

Batch = dict[str, np.ndarray[Any, Any]]


def _block(rows: Iterable[dict[str, Any]]) -> Iterator[Block]:
    """Rows as one block (columns of Python values); no block for no rows."""
    listed = list(rows)
    if listed:
        columns = {k: np.array([r[k] for r in listed], dtype=object) for k in listed[0]}
        yield BlockAccessor.batch_to_block(columns)


def _column(values: list[Any]) -> np.ndarray[Any, Any]:
    return np.array(values, dtype=object)


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


def replay_source(query: ReplayQuery, ranges: Iterable[tuple[int, int]]) -> Datasource:
    """Pending replay work, one block per prefix-id range of :meth:`ReplayQuery.plan`."""
    return _StoreSource([functools.partial(_read_replay, query, lo, hi) for lo, hi in ranges])


def _read_replay(query: ReplayQuery, lo: int, hi: int) -> Iterator[Block]:
    with ReadOnlyStore(query.path) as store:
        yield from _block(query.items(store, lo, hi))


def grade_source(query: GradeQuery, chunks: Iterable[list[tuple[Target, list[int]]]]) -> Datasource:
    """Pending grading work, one block per chunk of :meth:`GradeQuery.plan`."""
    return _StoreSource([functools.partial(_read_grades, query, c) for c in chunks])


def _read_grades(query: GradeQuery, chunk: list[tuple[Target, list[int]]]) -> Iterator[Block]:
    with ReadOnlyStore(query.path) as store:
        yield from _block(query.items(store, chunk))


class ReplayActor:
    """Runs replay turns: the candidate model (and tool layer) built once per actor.

    ``__call__`` is a coroutine, so Ray Data runs several blocks at once on the actor's event
    loop; a semaphore shared by all of them caps the calls in flight at ``concurrency``.
    """

    def __init__(
        self,
        *,
        spec: str,
        retry: RetryPolicy,
        tool_db: ToolDatabase | None,
        concurrency: int,
    ) -> None:
        self.spec = ReplaySpec.model_validate_json(spec)
        self.model = get_model(ModelSpec.parse(self.spec.model))
        self.layer = ToolLayer(tool_db, self.spec.tools) if tool_db is not None else None
        self.retry = retry
        # Python >= 3.10: a semaphore binds to the loop that first waits on it (the actor's).
        self.slots = asyncio.Semaphore(concurrency)
        self.rng = random.Random()  # backoff jitter only: results never depend on it

    async def __call__(self, batch: Batch) -> Batch:
        """Replay every item of a batch; returns the ids and the outcomes as JSON."""
        ids = batch["prefix_id"].tolist()
        draws = batch["draw"].tolist()
        outcomes = await asyncio.gather(
            *(
                self._one(
                    prefix_id,
                    draw,
                    batch["messages"][i],
                    batch["tools"][i],
                    batch["conversation"][i],
                    batch["continuation"][i],
                )
                for i, (prefix_id, draw) in enumerate(zip(ids, draws, strict=True))
            )
        )
        return {"prefix_id": _column(ids), "draw": _column(draws), "outcome": _column(outcomes)}

    async def _one(
        self, prefix_id: int, draw: int, messages: str, tools: str, conversation: str, cont: str
    ) -> str:
        async with self.slots:
            outcome = await run_turn(
                self.model,
                prepare_messages(decode_messages(messages), self.spec),
                decode_tools(tools),
                self.spec.config,
                self.retry,
                self.rng,
                layer=self.layer,
                max_steps=self.spec.tools.max_steps if self.layer else 1,
                conversation=conversation,
                continuation=cont,
                salt=f"{prefix_id}:{draw}",
            )
        return encode_outcome(outcome)


class GradeActor:
    """Runs graders: each built once per actor from its spec, and checked against the hash the
    driver registered (a grader that builds differently on a worker, e.g. from another taxonomy
    file, would store grades under the wrong version)."""

    def __init__(
        self,
        *,
        specs: list[str],
        hashes: list[str],
        default_judge: str | None,
        taxonomy_file: str | None,
        concurrency: int,
    ) -> None:
        taxonomy = Path(taxonomy_file) if taxonomy_file else None
        self.graders = [
            get_grader(s, default_judge=default_judge, taxonomy_file=taxonomy) for s in specs
        ]
        for spec, grader, h in zip(specs, self.graders, hashes, strict=True):
            if grader.spec_hash != h:
                raise UsageError(
                    f"grader {spec!r} builds differently on this Ray worker (hash "
                    f"{grader.spec_hash[:12]}, driver {h[:12]}): install the same deploysim and "
                    "taxonomy file on every node"
                )
        self.slots = asyncio.Semaphore(concurrency)

    async def __call__(self, batch: Batch) -> Batch:
        """Grade every item of a batch with its pending graders; one output row per grade."""
        jobs = [
            (kind, tid, int(g), item)
            for kind, tid, graders, item in zip(
                batch["target"].tolist(),
                batch["target_id"].tolist(),
                batch["graders"].tolist(),
                [decode_item(text) for text in batch["item"].tolist()],
                strict=True,
            )
            for g in graders.split(",")
        ]
        results = await asyncio.gather(*(self._one(g, item) for _, _, g, item in jobs))
        return {
            "target": _column([j[0] for j in jobs]),
            "target_id": _column([j[1] for j in jobs]),
            "grader": _column([j[2] for j in jobs]),
            "result": _column(results),
        }

    async def _one(self, grader: int, item: GradeItem) -> str:
        async with self.slots:
            try:
                result = await self.graders[grader].grade(item)
            except Exception as e:  # a grader bug must not lose the other grades (as locally)
                result = GradeResult.ungradable(f"internal: {type(e).__name__}: {e}")
        return result.model_dump_json()
