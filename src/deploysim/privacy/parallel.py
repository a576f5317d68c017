"""De-identification across worker processes, for ingest on several cores.

:class:`ParallelDeidentifier` has the :meth:`~deploysim.privacy.deid.Deidentifier.deidentify_many`
of a :class:`~deploysim.privacy.deid.Deidentifier` and gives the same results (the same key, so
the same surrogates: they depend only on the key and each conversation's own content), computed
by ``workers`` spawned processes that each load the detector once. A batch is cut into chunks of
whole conversations, several per worker so that one long conversation does not leave the other
workers idle; results come back in input order. With ``workers=1`` it runs in this process.

Workers are spawned, not forked, as in :mod:`deploysim.execute.processes`: the parent may hold
threads and sockets (a progress display, the store's connection).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor

from deploysim.errors import UsageError
from deploysim.keys import load_secret_key
from deploysim.privacy.deid import DEFAULT_KEEP, Deidentifier, DeidResult
from deploysim.schema import Conversation

_CHUNKS_PER_WORKER = 4  # load balance: long conversations spread over several chunks

_worker: Deidentifier | None = None  # one per worker process, built by _start_worker


def _start_worker(
    key: bytes, strict: bool, keep: frozenset[str], audit: bool, keep_introduced: bool
) -> None:
    global _worker
    _worker = Deidentifier(
        key=key, strict=strict, keep=keep, audit=audit, keep_introduced=keep_introduced
    )


def _deidentify_chunk(convs: list[Conversation]) -> tuple[list[DeidResult], int, float]:
    assert _worker is not None, "the pool's initializer builds the worker's Deidentifier"
    return _worker.deidentify_many(convs), os.getpid(), time.process_time()


def _ready(_: int) -> tuple[int, float]:
    time.sleep(0.2)  # long enough that each worker takes one of these tasks
    return os.getpid(), time.process_time()


class ParallelDeidentifier:
    """``deidentify_many`` on ``workers`` processes (see the module docstring). Close it (or use
    it as a context manager) to stop the workers; they start on the first batch, or on
    :meth:`start`. :attr:`worker_cpu_seconds` is the CPU time the workers have used (since
    :meth:`start` when it was called, else since they were spawned)."""

    def __init__(
        self,
        workers: int,
        *,
        key: bytes | None = None,
        strict: bool = False,
        keep: Iterable[str] = DEFAULT_KEEP,
        audit: bool = True,
        keep_introduced: bool = True,
    ) -> None:
        if workers < 1:
            raise UsageError(f"workers must be at least 1, not {workers}")
        self.workers = workers
        self.key = load_secret_key() if key is None else key
        self.strict = strict
        self.keep = frozenset(keep)
        self.audit = audit
        self.keep_introduced = keep_introduced
        self._local: Deidentifier | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._cpu_start: dict[int, float] = {}  # per worker process: CPU time at start()
        self._cpu_now: dict[int, float] = {}  # per worker process: CPU time after its last chunk

    def deidentify_many(self, convs: Sequence[Conversation]) -> list[DeidResult]:
        """De-identify conversations; results in input order."""
        if not convs:
            return []
        if self.workers == 1:
            return self._start_local().deidentify_many(convs)
        size = math.ceil(len(convs) / (self.workers * _CHUNKS_PER_WORKER))
        chunks = [list(convs[i : i + size]) for i in range(0, len(convs), size)]
        out: list[DeidResult] = []
        for results, pid, cpu in self._start_pool().map(_deidentify_chunk, chunks):
            out.extend(results)
            self._cpu_now[pid] = cpu
        return out

    @property
    def started_workers(self) -> int:
        """How many worker processes :meth:`start` saw ready."""
        return len(self._cpu_start)

    @property
    def worker_cpu_seconds(self) -> float:
        """CPU seconds the worker processes have used (see the class docstring)."""
        return sum(cpu - self._cpu_start.get(pid, 0.0) for pid, cpu in self._cpu_now.items())

    def start(self) -> None:
        """Start the workers (or this process's detector) now and wait until they are ready."""
        if self.workers == 1:
            self._start_local()
        else:
            # Several short tasks per worker, so that every worker takes some once started; the
            # earliest reading of each is its CPU time at the end of its start-up.
            for pid, cpu in self._start_pool().map(_ready, range(4 * self.workers)):
                self._cpu_start[pid] = min(cpu, self._cpu_start.get(pid, cpu))

    def _start_local(self) -> Deidentifier:
        if self._local is None:
            self._local = Deidentifier(
                key=self.key,
                strict=self.strict,
                keep=self.keep,
                audit=self.audit,
                keep_introduced=self.keep_introduced,
            )
        return self._local

    def _start_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(self.key, self.strict, self.keep, self.audit, self.keep_introduced),
            )
        return self._pool

    def close(self) -> None:
        """Stop the worker processes (a later batch starts new ones)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> ParallelDeidentifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
