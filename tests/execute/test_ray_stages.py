"""What runs on the cluster, run in this process: read tasks and actors (Ray importable, no
Ray instance started)."""

# ruff: noqa: E402 - the imports after extras.require("ray") need Ray
from __future__ import annotations

import asyncio
import functools
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests import extras

# Before the imports that need Ray: skip the module without it, or fail under
# DEPLOYSIM_REQUIRE_EXTRAS=1.
extras.require("ray")

from deploysim.agent import RetryPolicy
from deploysim.errors import UsageError
from deploysim.execute.ray_executor import ray_session
from deploysim.execute.ray_stages import StageActor, store_source
from deploysim.graders import GradeResult, get_grader
from deploysim.grading import GradeQuery, GradeWorker, register_grader, run_grading
from deploysim.ingest import ingest_file
from deploysim.replay import (
    ReplayQuery,
    ReplaySpec,
    ReplayWorker,
    create_sample,
    decode_outcome,
    run_replay,
)
from deploysim.sampling import SamplingSpec
from deploysim.store import Store
from tests.conftest import HH, TAU

SPEC = ReplaySpec(model="scripted/refuse?rate=0.5")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    st = Store(tmp_path / "s.db")
    ingest_file(HH, st)
    ingest_file(TAU, st)
    create_sample(st, "default", SamplingSpec(size=20, seed=2))
    return st


def _rows(blocks: list[Any]) -> list[dict[str, Any]]:
    return [row for block in blocks for row in block.to_pylist()]


def _batch(rows: list[dict[str, Any]]) -> dict[str, np.ndarray[Any, Any]]:
    return {k: np.array([r[k] for r in rows], dtype=object) for k in rows[0]}


def test_replay_read_tasks_and_actors_make_what_the_local_executor_stores(store: Store) -> None:
    now = time.time()
    sid = store.db.execute("SELECT id FROM samples").fetchone()[0]
    query = ReplayQuery(str(store.path), sid, SPEC.hash, 2, False, now, now)
    ranges = list(query.plan(store, 8))
    tasks = store_source(query, ranges).get_read_tasks(200)
    assert len(tasks) == len(ranges) > 1  # one read task (one block) per planned range
    rows = _rows([block for task in tasks for block in task()])
    assert len(rows) == 40 and len({(r["prefix_id"], r["draw"]) for r in rows}) == 40

    factory = functools.partial(ReplayWorker.build, SPEC.model_dump_json(), RetryPolicy(), None)
    actor = StageActor(factory=factory, concurrency=3)
    out = asyncio.run(actor(_batch(rows)))
    run_replay(store, SPEC, draws=2)
    stored = {
        (pid, draw): json.loads(response)
        for pid, draw, response in store.db.execute("SELECT prefix_id, draw, response FROM replays")
    }
    for pid, draw, text in zip(out["prefix_id"], out["draw"], out["outcome"], strict=True):
        outcome = decode_outcome(text)
        assert [m.to_json_dict() for m in outcome.messages] == stored[(pid, draw)]


def test_grade_read_tasks_and_actors_make_what_the_local_executor_stores(store: Store) -> None:
    run_replay(store, SPEC)
    specs = ["rule/refusal", "judge/S?judge=scripted/yes%3Fp%3D0.2"]
    hashes = tuple(register_grader(store, get_grader(s), s) for s in specs)
    query = GradeQuery(str(store.path), hashes, (), True, True, None, time.time())
    chunks = list(query.plan(store, 6))
    rows = _rows([b for task in store_source(query, chunks).get_read_tasks(1) for b in task()])
    factory = functools.partial(GradeWorker.build, specs, list(hashes), None, None)
    actor = StageActor(factory=factory, concurrency=2)
    out = asyncio.run(actor(_batch(rows)))
    run_grading(store, [(s, get_grader(s)) for s in specs])
    stored = {
        (kind, tid, h): (status, score, flagged)
        for kind, tid, h, status, score, flagged in store.db.execute(
            "SELECT target, target_id, grader_hash, status, score, flagged FROM grades"
        )
    }
    assert len(out["result"]) == len(stored) > 0
    for kind, tid, g, text in zip(
        out["target"], out["target_id"], out["grader"], out["result"], strict=True
    ):
        r = GradeResult.model_validate_json(text)
        assert stored[(kind, tid, hashes[g])] == (r.status, r.score, r.flagged)


def test_an_actor_refuses_a_grader_that_builds_differently() -> None:
    factory = functools.partial(GradeWorker.build, ["rule/refusal"], ["0" * 64], None, None)
    with pytest.raises(UsageError, match="builds differently"):
        StageActor(factory=factory, concurrency=1)


def test_ray_client_addresses_are_refused() -> None:
    import ray

    if ray.is_initialized():
        pytest.skip("a Ray instance is running in this process")
    with pytest.raises(UsageError, match="Ray Client"), ray_session("ray://127.0.0.1:1"):
        pass
    assert not ray.is_initialized()
