"""The Ray executor on a local Ray instance: the local executor's results, resumable, and
nothing lost when a worker is killed. One Ray instance serves the whole module."""

# ruff: noqa: E402 - the imports after extras.require("ray") need Ray
from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests import extras

# Before the imports that need Ray: skip the module without it, or fail under
# DEPLOYSIM_REQUIRE_EXTRAS=1.
extras.require("ray")

from deploysim.agent import RetryPolicy
from deploysim.execute import ray_executor
from deploysim.execute.ray_executor import run_grading_ray, run_replay_ray
from deploysim.graders import get_grader
from deploysim.grading import run_grading
from deploysim.ingest import ingest_file
from deploysim.replay import ReplayQuery, ReplaySpec, create_sample, run_replay
from deploysim.sampling import SamplingSpec
from deploysim.store import Store
from deploysim.tools import ToolPolicy
from tests.conftest import HH, OASST, TAU, tau_user

pytestmark = pytest.mark.slow  # Ray starts in ~10 s and each pipeline in a few more

FAST = RetryPolicy(max_attempts=3, base_s=0.001, cap_s=0.01)
# Both actors fit the 2 CPUs of the test instance.
RAY = {"num_actors": 2, "cpus_per_actor": 0.5, "concurrency_per_actor": 4}
ARGS = quote(json.dumps({"user_id": tau_user()[0]}))
SPECS = [
    (ReplaySpec(model="scripted/refuse?rate=0.5"), 2),
    # retryable failures: attempts and retry counts must match too
    (ReplaySpec(model="scripted/fail?rate=0.3&kind=rate_limit"), 1),
    # the agent loop over the tool layer: recorded tool results come from the driver's corpus
    (
        ReplaySpec(
            model=f"scripted/call?tool=get_user_details&args={ARGS}&times=2",
            tools=ToolPolicy(mode="replay"),
        ),
        1,
    ),
]
GRADERS = ["rule/refusal", "judge/S?judge=scripted/yes%3Fp%3D0.9"]


@pytest.fixture(scope="module", autouse=True)
def _ray_instance() -> Iterator[None]:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _store(path: Path, size: int = 60) -> Store:
    st = Store(path)
    for f in (HH, OASST, TAU):
        ingest_file(f, st)
    create_sample(st, "default", SamplingSpec(size=size, seed=4))
    return st


def _replays(st: Store) -> list[tuple[Any, ...]]:
    """Every stored replay, without ids, timestamps or latency."""
    return st.db.execute(
        "SELECT prefix_id, spec_hash, draw, status, response, finish_reason, error_kind, error, "
        "attempts, input_tokens, output_tokens FROM replays ORDER BY prefix_id, spec_hash, draw"
    ).fetchall()


def _grades(st: Store) -> list[tuple[Any, ...]]:
    """Every stored grade, its replay target named by (prefix, spec, draw): replay ids differ
    between stores."""
    return st.db.execute(
        "SELECT g.target, r.prefix_id, r.spec_hash, r.draw, g.target_id, g.grader_hash, "
        "g.category, g.status, g.score, g.flagged, g.severity, g.rationale, g.error, g.attempts "
        "FROM grades g LEFT JOIN replays r ON g.target = 'replay' AND r.id = g.target_id "
        "ORDER BY 1, 2, 3, 4, 5, 6"
    ).fetchall()


def _without_ids(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    # target_id is the replay's own id for replay targets (differs), the prefix id otherwise.
    return [(*r[:4], None if r[0] == "replay" else r[4], *r[5:]) for r in rows]


def _counts(summary: Any) -> dict[str, Any]:
    return {k: v for k, v in summary.to_json().items() if k != "seconds"}


def test_replay_and_grading_store_what_the_local_executor_stores(tmp_path: Path) -> None:
    local, remote = _store(tmp_path / "local.db"), _store(tmp_path / "ray.db")
    for spec, draws in SPECS:
        expected = run_replay(local, spec, draws=draws, retry=FAST)
        got = run_replay_ray(remote, spec, draws=draws, retry=FAST, **RAY)
        assert _counts(got) == _counts(expected)
        assert got.pending == got.ok + got.failed > 0
    rows = _replays(remote)
    assert rows == _replays(local)
    assert {r[3] for r in rows} == {"ok", "failed"} and {r[6] for r in rows} >= {"rate_limit"}
    tool_sources = {
        m.get("metadata", {}).get("tool_source")
        for r in rows
        if r[4]
        for m in json.loads(r[4])
        if m["role"] == "tool"
    }
    assert "recorded" in tool_sources  # the tool layer ran on the actors, on the driver's corpus

    expected_g = run_grading(local, [(s, get_grader(s)) for s in GRADERS])
    got_g = run_grading_ray(remote, GRADERS, **RAY)
    assert _counts(got_g) == _counts(expected_g) and got_g.pending > 0
    assert _without_ids(_grades(remote)) == _without_ids(_grades(local))
    # Nothing is left to do, by either executor's count.
    assert run_grading_ray(remote, GRADERS, **RAY).pending == 0
    assert run_grading(remote, [(s, get_grader(s)) for s in GRADERS]).pending == 0
    assert run_replay(remote, SPECS[0][0], draws=2).pending == 0


def test_a_rerun_resumes_and_retries_failures_as_the_local_executor_does(tmp_path: Path) -> None:
    local, remote = _store(tmp_path / "local.db"), _store(tmp_path / "ray.db")
    spec = ReplaySpec(model="scripted/fail?rate=0.3&kind=bad_request")
    run_replay(local, spec, draws=2)
    first = run_replay_ray(remote, spec, draws=2, **RAY)
    assert first.failed > 0 and _replays(remote) == _replays(local)
    # A crash lost some results: only those are done again.
    for st in (local, remote):
        st.db.execute("DELETE FROM replays WHERE prefix_id % 3 = 0")
    lost = first.pending - len(_replays(remote))
    again = run_replay_ray(remote, spec, draws=2, **RAY)
    assert _counts(again) == _counts(run_replay(local, spec, draws=2))
    assert again.pending == lost > 0
    # --retry-failed runs each failure once more (attempts add up), and only once per run.
    failed = remote.db.execute("SELECT COUNT(*) FROM replays WHERE status = 'failed'").fetchone()
    retried = run_replay_ray(remote, spec, draws=2, retry_failed=True, **RAY)
    assert _counts(retried) == _counts(run_replay(local, spec, draws=2, retry_failed=True))
    assert retried.pending == retried.failed == failed[0]
    assert _replays(remote) == _replays(local)
    assert {r[8] for r in _replays(remote) if r[3] == "failed"} == {2}
    assert run_replay_ray(remote, spec, draws=2, **RAY).pending == 0


def test_work_a_pass_loses_is_done_by_the_next_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    st = _store(tmp_path / "ray.db", size=30)
    plan = ReplayQuery.plan
    calls: list[int] = []

    def lose_the_first_block(self: ReplayQuery, store: Store, rows: int) -> Iterator[Any]:
        calls.append(rows)
        blocks = plan(self, store, rows)
        if len(calls) == 1:
            next(blocks)  # as if its results never came back
        yield from blocks

    monkeypatch.setattr(ReplayQuery, "plan", lose_the_first_block)
    monkeypatch.setattr(ray_executor, "BLOCKS_PER_PIPELINE", 3)  # several pipelines a pass
    progress: list[tuple[int, int]] = []
    summary = run_replay_ray(
        st,
        ReplaySpec(model="scripted/echo"),
        draws=2,
        on_progress=lambda s: progress.append((s.pending, s.ok + s.failed)),
        **RAY,
    )
    assert len(calls) == 2  # a second pass
    assert summary.pending == summary.ok == 60 == st.count("replays")
    assert progress[0][0] == 60 and progress[-1] == (60, 60)  # the total is known from the start


def _actor_pids() -> list[int]:
    """Processes of stage actors (Ray titles them ray::MapWorker(MapBatches(StageActor)))."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if b"MapBatches(StageActor)" in cmdline:
                pids.append(int(entry))
    return pids


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds actors through /proc")
def test_a_killed_actor_loses_nothing(tmp_path: Path) -> None:
    st = _store(tmp_path / "ray.db")
    draws, prefixes = 6, st.count("prefixes")
    killed: list[tuple[int, int]] = []
    earlier = set(_actor_pids())  # actors of earlier pipelines, maybe still exiting

    def kill_an_actor_mid_run() -> None:
        db = sqlite3.connect(tmp_path / "ray.db")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = db.execute("SELECT COUNT(*) FROM replays").fetchone()[0]
            pids = [pid for pid in _actor_pids() if pid not in earlier]
            if done >= 40 and pids:
                os.kill(pids[0], signal.SIGKILL)
                killed.append((pids[0], done))
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_an_actor_mid_run, daemon=True)
    killer.start()
    # 8 calls in flight at 50 ms each: about 2 s of work, plenty of time to kill mid-run.
    spec = ReplaySpec(model="scripted/echo?latency=0.05")
    summary = run_replay_ray(st, spec, draws=draws, **RAY)
    killer.join()
    assert killed and killed[0][1] < prefixes * draws  # killed while work remained
    assert summary.pending == summary.ok == prefixes * draws and summary.failed == 0
    rows = st.db.execute(
        "SELECT prefix_id, draw, COUNT(*), MIN(status) FROM replays GROUP BY prefix_id, draw"
    ).fetchall()
    expected = {(p, d) for (p,) in st.db.execute("SELECT id FROM prefixes") for d in range(draws)}
    assert {(p, d) for p, d, _, _ in rows} == expected
    assert {(n, status) for _, _, n, status in rows} == {(1, "ok")}  # every pair exactly once
