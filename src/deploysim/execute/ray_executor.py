"""The Ray executor: any stage (replay, grading) on a Ray cluster, with the local executor's
results.

A pass of a stage is one or more Ray Data pipelines::

    read_datasource(pending work, on the driver's node)
        -> map_batches(StageActor: the stage's per-batch function, actor pool of num_actors)
        -> iter_batches on the driver -> stage.write -> the store

- The driver is the only writer, through the stage's own writer (as with every executor), so
  results are keyed the same way and a re-run never duplicates one: it only reads work that is
  still pending.
- Reads stream: read tasks open the store read-only on the driver's node and yield blocks of
  work items as the pipeline asks for them (see :mod:`deploysim.execute.ray_stages`). A work
  item carries ids and the prefix (or transcript) as JSON, so actors need no store and run on
  any node.
- Actors build the stage's per-batch function once, from spec strings (the stage's picklable
  factory); a batch's items run concurrently on the actor's event loop.
- Nothing is lost to a dead worker: Ray Data restarts a dead actor and re-runs its tasks; a
  read task re-runs from a snapshot (:mod:`deploysim.stage`); and after each pass the driver
  counts what is still missing and runs another pass for it.

Ray is an optional extra (``pip install 'deploysim[ray]'``); this module imports it, so import
it only when the Ray executor is asked for. See ``docs/ray.md``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypedDict, Unpack

import numpy as np

from deploysim.agent import RetryPolicy
from deploysim.errors import IncompleteRunError, UsageError
from deploysim.graders import get_grader
from deploysim.grading import GradeSummary, run_grading
from deploysim.replay import Progress, ReplaySpec, ReplaySummary, run_replay
from deploysim.stage import Query, Stage, WorkerFactory, block_rows, passes
from deploysim.store import Store

try:
    # "import ray.data" binds ``ray`` too. A bare "import ray" would be sorted as first-party:
    # ruff takes benchmarks/ray.py for the module.
    import ray.data
    import ray.util.client
    from ray.data import ActorPoolStrategy, DataContext
except ImportError as e:  # pragma: no cover - depends on the installed extras
    raise UsageError(
        "the Ray executor needs Ray: pip install 'deploysim[ray]' (or use the local executor)"
    ) from e

from deploysim.execute.ray_stages import StageActor, rows, store_source

__all__ = [
    "GradingOptions",
    "IncompleteRunError",
    "RayExecutor",
    "ReplayOptions",
    "ray_session",
    "run_grading_ray",
    "run_replay_ray",
]

# Actor tasks (blocks) running at once on one actor: while one finishes its last calls and
# ships its results, the others keep the actor's calls in flight (measured: 2 -> 4 took the
# benchmark from ~300 to ~500 requests/s on 2 busy cores).
TASKS_PER_ACTOR = 4
# Blocks per Ray Data pipeline (about 256k work items at 32 calls per actor): a larger run is
# several pipelines one after another, each starting its actors anew (seconds).
BLOCKS_PER_PIPELINE = 2_000
# Read tasks running at once (each reads one block of work).
READ_CONCURRENCY = 2
# CPUs reserved per read task: none. Reads are short (SQLite, JSON), and they must fit beside
# actors that reserve every CPU of the driver's node, or the pipeline would stall.
READ_CPUS = 0.0


@contextlib.contextmanager
def ray_session(address: str | None = None) -> Iterator[None]:
    """Use the Ray instance this process is connected to, or connect for the duration.

    ``address`` as for ``ray.init``: ``None`` reads ``RAY_ADDRESS`` and otherwise starts a local
    instance; ``"auto"`` or ``"host:6379"`` joins a running cluster from one of its nodes. Ray
    Client (``ray://``) cannot work: read tasks must run where the store file is. A session
    this function started is shut down at the end; an existing one is left running.
    """
    if ray.is_initialized():
        _refuse_client()
        yield
        return
    _refuse_client(address or os.environ.get("RAY_ADDRESS", ""))
    ray.init(address=address)
    try:
        _refuse_client()
        yield
    finally:
        ray.shutdown()


def _refuse_client(address: str = "") -> None:
    """Refuse Ray Client: an address about to be used, or the connection in use."""
    connected = ray.util.client.ray.is_connected()  # type: ignore[no-untyped-call]
    if address.startswith("ray://") or connected:
        raise UsageError(
            "the Ray executor cannot run through Ray Client (ray://): it reads the store on the "
            "driver's node. Run deploysim on a cluster node (RAY_ADDRESS=auto) or submit it as "
            "a Ray job with the store on the head node; see docs/ray.md"
        )


@contextlib.contextmanager
def _quiet_data_context() -> Iterator[None]:
    # deploysim reports progress itself; Ray Data's bars and banners would interleave with it.
    # A dataset takes its own copy of the context when it is made: this one is restored after.
    ctx = DataContext.get_current()
    saved = ctx.enable_progress_bars, ctx.print_on_execution_start
    ctx.enable_progress_bars = ctx.print_on_execution_start = False
    try:
        with warnings.catch_warnings():
            # A pipeline with fewer blocks than actors (the end of a run) is expected here.
            warnings.filterwarnings("ignore", "The minimum number of concurrent actors")
            yield
    finally:
        ctx.enable_progress_bars, ctx.print_on_execution_start = saved


class RayExecutor:
    """Runs a stage's blocks on Ray actors: ``num_actors`` of them, each with the stage's
    concurrency (calls in flight per actor) and ``cpus_per_actor`` CPUs reserved. ``address``
    as for :func:`ray_session`."""

    name = "ray"

    def __init__(
        self, *, num_actors: int = 2, address: str | None = None, cpus_per_actor: float = 1.0
    ) -> None:
        if num_actors < 1:
            raise UsageError("--num-actors must be at least 1")
        self.num_actors = num_actors
        self.address = address
        self.cpus_per_actor = cpus_per_actor

    def run(self, store: Store, stage: Stage) -> None:
        """Run every pending item of ``stage`` on Ray (several passes if work was lost)."""
        factory = stage.remote_worker()
        since = time.time()
        with ray_session(self.address), _quiet_data_context():
            for query, todo in passes(store, stage, since):
                plan = query.plan(store, block_rows(todo, stage.concurrency, self.num_actors))
                for batch in self._results(query, plan, factory, stage.concurrency):
                    stage.write(rows(batch))

    def _results(
        self, query: Query, plan: Iterator[Any], factory: WorkerFactory, concurrency: int
    ) -> Iterator[dict[str, np.ndarray[Any, Any]]]:
        """The actors' results for every planned block, as batches on the driver.

        A pipeline takes at most :data:`BLOCKS_PER_PIPELINE` blocks: Ray Data keeps statistics
        on the driver for every block a pipeline made, so one pipeline for a whole large run
        would grow the driver's memory with the run.
        """
        while blocks := list(itertools.islice(plan, BLOCKS_PER_PIPELINE)):
            ds = _read(store_source(query, blocks), len(blocks))
            # A planned block is one batch (batch_size None): the actor runs its items
            # concurrently itself (the worker's semaphore), which beats Ray Data's per-task batch
            # concurrency (a fixed 4 batches). Few tasks queue per actor, so that blocks go to
            # whichever actor frees up first.
            ds = ds.map_batches(
                StageActor,
                fn_constructor_kwargs={"factory": factory, "concurrency": concurrency},
                batch_size=None,
                compute=ActorPoolStrategy(
                    size=self.num_actors,
                    max_concurrent_calls_per_actor=TASKS_PER_ACTOR,
                    max_tasks_in_flight_per_actor=TASKS_PER_ACTOR,
                ),
                num_cpus=self.cpus_per_actor,
                batch_format="numpy",
            )
            yield from ds.iter_batches(batch_size=None, batch_format="numpy")


def _read(source: Any, tasks: int) -> ray.data.Dataset:
    # override_num_blocks: one output block per read task. Without it Ray Data splits blocks
    # to reach its default parallelism (200), into blocks of a row or two.
    ds: ray.data.Dataset = ray.data.read_datasource(
        source,
        num_cpus=READ_CPUS,
        concurrency=min(tasks, READ_CONCURRENCY),
        override_num_blocks=tasks,
    )
    return ds


class ReplayOptions(TypedDict, total=False):
    """The options of :func:`~deploysim.replay.run_replay` that :func:`run_replay_ray` passes on
    as given; a caller leaves out what it does not set, so the defaults stay ``run_replay``'s."""

    sample_name: str
    draws: int
    retry: RetryPolicy | None
    retry_failed: bool
    on_progress: Progress | None


class GradingOptions(TypedDict, total=False):
    """The options of :func:`~deploysim.grading.run_grading` that :func:`run_grading_ray` passes
    on as given (the graders' own ``default_judge`` and ``taxonomy_file`` are its arguments)."""

    models: Sequence[str]
    replays: bool
    references: bool
    sample: str | None
    on_progress: Callable[[GradeSummary], None] | None


def run_replay_ray(
    store: Store,
    spec: ReplaySpec,
    *,
    concurrency_per_actor: int = 32,
    num_actors: int = 2,
    ray_address: str | None = None,
    cpus_per_actor: float = 1.0,
    **options: Unpack[ReplayOptions],
) -> ReplaySummary:
    """:func:`deploysim.replay.run_replay` with a :class:`RayExecutor` (kept for scripts that
    call it), taking its :class:`ReplayOptions`. At most ``num_actors * concurrency_per_actor``
    calls are in flight."""
    executor = RayExecutor(
        num_actors=num_actors, address=ray_address, cpus_per_actor=cpus_per_actor
    )
    return run_replay(store, spec, concurrency=concurrency_per_actor, executor=executor, **options)


def run_grading_ray(
    store: Store,
    grader_specs: Sequence[str],
    *,
    default_judge: str | None = None,
    taxonomy_file: Path | None = None,
    concurrency_per_actor: int = 4,
    num_actors: int = 2,
    ray_address: str | None = None,
    cpus_per_actor: float = 1.0,
    **options: Unpack[GradingOptions],
) -> GradeSummary:
    """:func:`deploysim.grading.run_grading` with a :class:`RayExecutor`, taking its
    :class:`GradingOptions`, the graders built with ``get_grader(spec, default_judge=...,
    taxonomy_file=...)`` (kept for scripts)."""
    graders = [
        (s, get_grader(s, default_judge=default_judge, taxonomy_file=taxonomy_file))
        for s in grader_specs
    ]
    executor = RayExecutor(
        num_actors=num_actors, address=ray_address, cpus_per_actor=cpus_per_actor
    )
    return run_grading(
        store,
        graders,
        concurrency=concurrency_per_actor,
        executor=executor,
        default_judge=default_judge,
        taxonomy_file=taxonomy_file,
        **options,
    )
