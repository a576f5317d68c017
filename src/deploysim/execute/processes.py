"""Replay in several local processes, for endpoints faster than one Python process can drive.

One asyncio process spends most of a request's CPU in the OpenAI SDK (building the request,
parsing the response: about 0.8 ms), so it tops out near 1,000 requests/s however fast the
endpoint. :func:`run_replay_processes` starts ``workers`` processes, each replaying its shard
of the prefixes (``prefix id % workers``) with its share of the concurrency and committing its
own results to the same store (SQLite WAL: readers never block, the small write batches take
turns). Results, resumption and ``kill -9`` safety are those of a single-process replay: every
result is keyed by (prefix, spec, draw) and committed as it arrives.

Workers are spawned, not forked (the parent may hold threads and sockets), so a script that
calls ``run_replay(..., workers=2)`` needs the usual ``if __name__ == "__main__":`` guard.

Progress is summed from the workers' snapshots. A worker that fails stops the run with its
error; what the others committed stays, and re-running continues from there.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from deploysim.agent import RetryPolicy
from deploysim.errors import DeploysimError
from deploysim.replay import (
    Progress,
    ReplaySpec,
    ReplaySummary,
    register_spec,
    run_replay,
    sample_id,
)
from deploysim.store import Store

__all__ = ["run_replay_processes"]


def run_replay_processes(
    store: Store,
    spec: ReplaySpec,
    *,
    sample_name: str,
    draws: int,
    concurrency: int,
    retry: RetryPolicy,
    retry_failed: bool,
    on_progress: Progress | None,
    workers: int,
) -> ReplaySummary:
    """Replay a sample in ``workers`` processes; returns the summed summary."""
    start = time.perf_counter()
    sample_id(store, sample_name)  # a missing sample is the caller's error, not a worker's
    register_spec(store, spec)
    # spawn, not fork: the parent may hold threads (progress display, llama.cpp) and sockets.
    ctx = multiprocessing.get_context("spawn")
    inbox: Any = ctx.Queue()
    per = max(1, -(-concurrency // workers))
    procs = [
        ctx.Process(
            target=_worker,
            args=(str(store.path), spec, sample_name, draws, per, retry, retry_failed),
            kwargs={"shard": (i, workers), "inbox": inbox},
            daemon=True,
        )
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    latest: dict[int, ReplaySummary] = {}
    finished: set[int] = set()
    try:
        while len(finished) < workers:
            try:
                index, kind, payload = inbox.get(timeout=0.5)
            except queue.Empty:
                dead = [i for i, p in enumerate(procs) if i not in finished and not p.is_alive()]
                if dead:
                    i = dead[0]
                    raise DeploysimError(
                        f"replay worker {i} of {workers} exited with code {procs[i].exitcode}; "
                        "results committed so far are kept: run the replay again to continue"
                    ) from None
                continue
            if kind == "error":
                raise DeploysimError(f"replay worker {index} of {workers}: {payload}")
            latest[index] = payload
            if kind == "done":
                finished.add(index)
            if on_progress is not None:
                on_progress(_sum(spec, latest.values(), time.perf_counter() - start))
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join()
    return _sum(spec, latest.values(), time.perf_counter() - start)


def _worker(
    path: str,
    spec: ReplaySpec,
    sample_name: str,
    draws: int,
    concurrency: int,
    retry: RetryPolicy,
    retry_failed: bool,
    *,
    shard: tuple[int, int],
    inbox: Any,
) -> None:
    index = shard[0]
    try:
        with Store(path) as st:
            summary = run_replay(
                st,
                spec,
                sample_name=sample_name,
                draws=draws,
                concurrency=concurrency,
                retry=retry,
                retry_failed=retry_failed,
                on_progress=lambda s: inbox.put((index, "progress", _copy(s))),
                shard=shard,
            )
        inbox.put((index, "done", summary))
    except Exception as e:  # reported to the parent, which stops the run with it
        inbox.put((index, "error", f"{type(e).__name__}: {e}"))


def _copy(s: ReplaySummary) -> ReplaySummary:
    # Queue.put pickles in a background thread: send a copy the worker will not mutate.
    return replace(s, errors=dict(s.errors))


def _sum(spec: ReplaySpec, parts: Iterable[ReplaySummary], seconds: float) -> ReplaySummary:
    total = ReplaySummary(spec_hash=spec.hash, model=spec.model, seconds=seconds)
    for s in parts:
        total.pending += s.pending
        total.ok += s.ok
        total.failed += s.failed
        total.retries += s.retries
        total.input_tokens += s.input_tokens
        total.output_tokens += s.output_tokens
        for k, v in s.errors.items():
            total.errors[k] = total.errors.get(k, 0) + v
    return total
