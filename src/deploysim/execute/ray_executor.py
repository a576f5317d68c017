"""The Ray executor: replay and grading on a Ray cluster, with the local executor's results.

Each stage is one Ray Data pipeline::

    read_datasource(pending work, on the driver's node)
        -> map_batches(ReplayActor | GradeActor, actor pool of num_actors)
        -> iter_batches on the driver -> ResultWriter / GradeWriter -> the store

- The driver is the only writer, through the same code as the local executor (``ResultWriter``
  for replays, the same ``INSERT OR IGNORE`` for grades), so results are keyed the same way and
  a re-run never duplicates one: it only reads work that is still pending.
- Reads stream: read tasks open the store read-only on the driver's node and yield blocks of
  work items as the pipeline asks for them (see :mod:`deploysim.execute.ray_stages`). A work
  item carries ids and the prefix (or transcript) as JSON, so actors need no store and run on
  any node.
- Actors build their model, tool layer and graders once, from the spec strings stored with the
  results; a batch's turns run concurrently on the actor's event loop.
- Nothing is lost to a dead worker: Ray Data restarts a dead actor and re-runs its tasks; a
  read task re-runs from a snapshot (:mod:`deploysim.execute.work`); and after each pass the
  driver counts what is still missing and runs another pass for it.

Ray is an optional extra (``pip install 'deploysim[ray]'``); this module imports it, so import
it only when the Ray executor is asked for. See ``docs/ray.md``.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from deploysim.agent import RetryPolicy
from deploysim.errors import IncompleteRunError, UsageError
from deploysim.execute.work import (
    GradeQuery,
    GradeWriter,
    ReplayQuery,
    decode_outcome,
)
from deploysim.graders import GradeResult, get_grader
from deploysim.grading import GradeSummary, register_grader
from deploysim.replay import (
    Progress,
    ReplaySpec,
    ReplaySummary,
    ResultWriter,
    _tool_layer,
    register_spec,
    sample_id,
)
from deploysim.store import Store

try:
    # "import ray.data" binds ``ray`` too. A bare "import ray" would be sorted as first-party:
    # ruff takes benchmarks/ray.py for the module.
    import ray.data
    import ray.util.client
    from ray.data import ActorPoolStrategy, DataContext
    from ray.data.datasource import Datasource
except ImportError as e:  # pragma: no cover - depends on the installed extras
    raise UsageError(
        "the Ray executor needs Ray: pip install 'deploysim[ray]' (or use the local executor)"
    ) from e

from deploysim.execute.ray_stages import GradeActor, ReplayActor, grade_source, replay_source

__all__ = ["IncompleteRunError", "ray_session", "run_grading_ray", "run_replay_ray"]

# Passes per run: the first does everything unless a worker was lost beyond what Ray retries.
MAX_PASSES = 3
# Actor tasks (blocks) running at once on one actor: while one finishes its last calls and
# ships its results, the others keep the actor's calls in flight (measured: 2 -> 4 took the
# benchmark from ~300 to ~500 requests/s on 2 busy cores).
TASKS_PER_ACTOR = 4
# Work items per block, in multiples of an actor's concurrency.
BLOCK_CONCURRENCY_MULTIPLE = 4
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


def _results(
    plan: Iterator[T],
    source: Callable[[list[T]], Datasource],
    actor: type[ReplayActor] | type[GradeActor],
    args: dict[str, Any],
    num_actors: int,
    cpus: float,
) -> Iterator[dict[str, np.ndarray[Any, Any]]]:
    """The actors' results for every planned block, as batches on the driver.

    A pipeline takes at most :data:`BLOCKS_PER_PIPELINE` blocks: Ray Data keeps statistics on
    the driver for every block a pipeline made, so one pipeline for a whole large run would
    grow the driver's memory with the run.
    """
    while blocks := list(itertools.islice(plan, BLOCKS_PER_PIPELINE)):
        ds = _actors(_read(source(blocks), len(blocks)), actor, args, num_actors, cpus)
        yield from ds.iter_batches(batch_size=None, batch_format="numpy")


def _read(source: Datasource, tasks: int) -> ray.data.Dataset:
    # override_num_blocks: one output block per read task. Without it Ray Data splits blocks
    # to reach its default parallelism (200), into blocks of a row or two.
    ds: ray.data.Dataset = ray.data.read_datasource(
        source,
        num_cpus=READ_CPUS,
        concurrency=min(tasks, READ_CONCURRENCY),
        override_num_blocks=tasks,
    )
    return ds


def _block_rows(todo: int, concurrency: int, num_actors: int) -> int:
    """Work items per block (and per actor task): enough to keep an actor's calls in flight,
    few enough that every actor gets several blocks even when the work is small."""
    return max(1, min(BLOCK_CONCURRENCY_MULTIPLE * concurrency, math.ceil(todo / (4 * num_actors))))


def _actors(
    ds: ray.data.Dataset,
    actor: type[ReplayActor] | type[GradeActor],
    args: dict[str, Any],
    num_actors: int,
    cpus: float,
) -> ray.data.Dataset:
    # A planned block is one batch (batch_size None): the actor runs its items concurrently
    # itself (its semaphore), which beats Ray Data's per-task batch concurrency (a fixed 4
    # batches). Few tasks queue per actor, so that blocks go to whichever actor frees up first.
    return ds.map_batches(
        actor,
        fn_constructor_kwargs=args,
        batch_size=None,
        compute=ActorPoolStrategy(
            size=num_actors,
            max_concurrent_calls_per_actor=TASKS_PER_ACTOR,
            max_tasks_in_flight_per_actor=TASKS_PER_ACTOR,
        ),
        num_cpus=cpus,
        batch_format="numpy",
    )


class _Query(Protocol):
    def count(self, store: Store) -> int: ...


Q = TypeVar("Q", bound=_Query)
T = TypeVar("T")


def _passes(
    store: Store, stage: str, since: float, query_at: Callable[[float], Q]
) -> Iterator[tuple[Q, int]]:
    """The query of each pass of a run and its count of work, while work is missing (the first
    count is what was pending at the start; see :mod:`deploysim.execute.work`).

    Pass 1 reads as of the run's start ``since`` (what earlier runs stored); each later pass as
    of its own start, so it finds only what earlier passes lost.
    """
    for n in range(MAX_PASSES + 1):
        query = query_at(since if n == 0 else time.time())
        todo = query.count(store)
        if todo == 0:
            return
        if n == MAX_PASSES:
            raise IncompleteRunError(
                f"{stage} on Ray: {todo} items still missing after {MAX_PASSES} passes (workers "
                "kept dying?); what was done is stored: run again to resume"
            )
        yield query, todo


def run_replay_ray(
    store: Store,
    spec: ReplaySpec,
    *,
    sample_name: str = "default",
    draws: int = 1,
    concurrency_per_actor: int = 32,
    num_actors: int = 2,
    retry: RetryPolicy | None = None,
    retry_failed: bool = False,
    on_progress: Progress | None = None,
    ray_address: str | None = None,
    cpus_per_actor: float = 1.0,
) -> ReplaySummary:
    """Replay every pending prefix of a sample on Ray; the results of
    :func:`deploysim.replay.run_replay`, stored the same way (see the module docstring).

    At most ``num_actors * concurrency_per_actor`` calls are in flight. Raises
    :class:`IncompleteRunError` if work is still missing after :data:`MAX_PASSES` passes.
    """
    if draws < 1 or concurrency_per_actor < 1 or num_actors < 1:
        raise UsageError("--samples-per-prefix, --concurrency and --num-actors must be >= 1")
    sid = sample_id(store, sample_name)
    register_spec(store, spec)
    layer = _tool_layer(store, spec.tools)
    summary = ReplaySummary(spec_hash=spec.hash, model=spec.model)
    writer = ResultWriter(store, spec.hash, summary, on_progress)
    start, since = time.perf_counter(), time.time()
    actor_args = {
        "spec": spec.model_dump_json(),
        "retry": retry or RetryPolicy(),
        "tool_db": layer.db if layer is not None else None,
        "concurrency": concurrency_per_actor,
    }

    def query_at(before: float) -> ReplayQuery:
        return ReplayQuery(str(store.path), sid, spec.hash, draws, retry_failed, since, before)

    def run(query: ReplayQuery, todo: int) -> None:
        plan = query.plan(store, _block_rows(todo, concurrency_per_actor, num_actors))
        source = functools.partial(replay_source, query)
        for batch in _results(plan, source, ReplayActor, actor_args, num_actors, cpus_per_actor):
            for pid, draw, text in zip(
                batch["prefix_id"].tolist(),
                batch["draw"].tolist(),
                batch["outcome"].tolist(),
                strict=True,
            ):
                writer.add(int(pid), int(draw), decode_outcome(text))
        writer.flush()

    try:
        with ray_session(ray_address), _quiet_data_context():
            for n, (query, todo) in enumerate(_passes(store, "replay", since, query_at)):
                summary.pending = todo if n == 0 else summary.pending
                run(query, todo)
    finally:
        writer.flush()
        summary.seconds = time.perf_counter() - start
    return summary


def run_grading_ray(
    store: Store,
    grader_specs: Sequence[str],
    *,
    default_judge: str | None = None,
    taxonomy_file: Path | None = None,
    models: Sequence[str] = (),
    replays: bool = True,
    references: bool = True,
    sample: str | None = None,
    concurrency_per_actor: int = 4,
    num_actors: int = 2,
    on_progress: Callable[[GradeSummary], None] | None = None,
    ray_address: str | None = None,
    cpus_per_actor: float = 1.0,
) -> GradeSummary:
    """Grade every target not yet graded by each grader, on Ray; the results of
    :func:`deploysim.grading.run_grading` with ``get_grader(spec, default_judge=...,
    taxonomy_file=...)`` for each spec, stored the same way (see the module docstring).

    Graders are built on the driver (to register them) and once per actor from the same
    arguments; an actor whose grader hashes differently refuses to start. Raises
    :class:`IncompleteRunError` if work is still missing after :data:`MAX_PASSES` passes.
    """
    if concurrency_per_actor < 1 or num_actors < 1:
        raise UsageError("--concurrency and --num-actors must be >= 1")
    summary = GradeSummary()
    start = time.perf_counter()
    graders = [
        get_grader(s, default_judge=default_judge, taxonomy_file=taxonomy_file)
        for s in grader_specs
    ]
    hashes = tuple(register_grader(store, g, s) for s, g in zip(grader_specs, graders, strict=True))
    writer = GradeWriter(store, summary, on_progress, start=start)
    actor_args = {
        "specs": list(grader_specs),
        "hashes": list(hashes),
        "default_judge": default_judge,
        "taxonomy_file": str(taxonomy_file) if taxonomy_file else None,
        "concurrency": concurrency_per_actor,
    }
    since = time.time()

    def query_at(before: float) -> GradeQuery:
        return GradeQuery(
            str(store.path), hashes, tuple(models), replays, references, sample, before
        )

    def run(query: GradeQuery, todo: int) -> None:
        plan = query.plan(store, _block_rows(todo, concurrency_per_actor, num_actors))
        source = functools.partial(grade_source, query)
        for batch in _results(plan, source, GradeActor, actor_args, num_actors, cpus_per_actor):
            for kind, tid, g, text in zip(
                batch["target"].tolist(),
                batch["target_id"].tolist(),
                batch["grader"].tolist(),
                batch["result"].tolist(),
                strict=True,
            ):
                i = int(g)
                result = GradeResult.model_validate_json(text)
                writer.add(
                    str(kind), int(tid), grader_specs[i], hashes[i], graders[i].category, result
                )
        writer.flush()

    try:
        with ray_session(ray_address), _quiet_data_context():
            for n, (query, todo) in enumerate(_passes(store, "grading", since, query_at)):
                summary.pending = todo if n == 0 else summary.pending
                run(query, todo)
    finally:
        writer.flush()
    return summary
