"""The processes executor: a stage's work in several local processes, for endpoints faster than
one Python process can drive.

One asyncio process spends most of a request's CPU in the OpenAI SDK (building the request,
parsing the response: about 0.8 ms), so it tops out near 1,000 requests/s however fast the
endpoint. :class:`ProcessExecutor` starts ``workers`` processes, each building the stage's
per-batch function once and running the blocks of work the driver hands it (reading their items
from the store read-only), with its share of the concurrency. Results come back to the driver,
the only writer, so they are stored as by every other executor: keyed the same way, committed as
they arrive, resumable after ``kill -9``.

Workers are spawned, not forked (the parent may hold threads and sockets), so a script that
uses this executor needs the usual ``if __name__ == "__main__":`` guard. A worker that fails
stops the run with its error; what was stored stays, and running again continues from there.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import queue
import time
from dataclasses import dataclass
from typing import Any

from deploysim.errors import DeploysimError, UsageError
from deploysim.stage import (
    BLOCKS_PER_WORKER,
    Query,
    ReadOnlyStore,
    Stage,
    WorkerFactory,
    block_rows,
    passes,
)
from deploysim.store import Store

__all__ = ["ProcessExecutor"]


class ProcessExecutor:
    """Runs a stage's blocks in ``workers`` spawned processes, the stage's concurrency split
    between them."""

    name = "processes"

    def __init__(self, workers: int = 2) -> None:
        if workers < 1:
            raise UsageError("--workers must be at least 1")
        self.workers = workers

    def run(self, store: Store, stage: Stage) -> None:
        """Run every pending item of ``stage`` in the worker processes."""
        factory = stage.remote_worker()
        per = max(1, math.ceil(stage.concurrency / self.workers))
        for query, todo in passes(store, stage, time.time()):
            self._pass(store, stage, query, factory, per, todo)

    def _pass(
        self, store: Store, stage: Stage, query: Query, factory: WorkerFactory, per: int, todo: int
    ) -> None:
        # spawn, not fork: the parent may hold threads (progress display, llama.cpp) and sockets.
        ctx = multiprocessing.get_context("spawn")
        tasks: Any = ctx.Queue()
        results: Any = ctx.Queue()
        n = self.workers
        for block in query.plan(store, block_rows(todo, per, n)):
            tasks.put(block)
        for _ in range(n * BLOCKS_PER_WORKER):
            tasks.put(None)  # one stop per lane
        procs = [
            ctx.Process(
                target=_serve,
                args=(_Job(i, str(store.path), query, factory, per, tasks, results),),
                daemon=True,
            )
            for i in range(n)
        ]
        for p in procs:
            p.start()
        finished: set[int] = set()
        try:
            while len(finished) < n:
                try:
                    index, kind, payload = results.get(timeout=0.5)
                except queue.Empty:
                    dead = [
                        i for i, p in enumerate(procs) if i not in finished and not p.is_alive()
                    ]
                    if dead:
                        raise DeploysimError(
                            f"{stage.name} worker {dead[0]} of {n} exited with code "
                            f"{procs[dead[0]].exitcode}; results stored so far are kept: run "
                            "again to continue"
                        ) from None
                    continue
                if kind == "error":
                    raise DeploysimError(f"{stage.name} worker {index} of {n}: {payload}")
                if kind == "done":
                    finished.add(index)
                else:
                    stage.write(payload)
        finally:
            for p in procs:
                if p.is_alive():
                    p.terminate()
                p.join()


@dataclass(frozen=True)
class _Job:
    """What one worker process needs (picklable): its index, the store, the pass's query, the
    worker factory and its concurrency, and the driver's queues."""

    index: int
    path: str
    query: Query
    factory: WorkerFactory
    concurrency: int
    tasks: Any
    results: Any


def _serve(job: _Job) -> None:
    """A worker process: build the per-batch function, run blocks until told to stop."""
    try:
        asyncio.run(_lanes(job))
        job.results.put((job.index, "done", None))
    except Exception as e:  # reported to the driver, which stops the run with it
        job.results.put((job.index, "error", f"{type(e).__name__}: {e}"))


async def _lanes(job: _Job) -> None:
    worker = job.factory(job.concurrency)
    loop = asyncio.get_running_loop()
    # Several blocks at once (lanes): while one finishes its last calls, the others keep the
    # worker's calls in flight.

    async def lane() -> None:
        while (block := await loop.run_in_executor(None, job.tasks.get)) is not None:
            items = list(job.query.items(store, block))
            job.results.put((job.index, "ok", await worker(items)))

    try:
        with ReadOnlyStore(job.path) as store:
            await asyncio.gather(*(lane() for _ in range(BLOCKS_PER_WORKER)))
    finally:
        await worker.aclose()
