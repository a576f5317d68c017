"""Replay on real prefixes: stored with the full spec, failures as data, resumable, no dupes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from deploysim.agent import RetryPolicy
from deploysim.ingest import ingest_file
from deploysim.models import GenerateConfig, Generation, Model, ModelError, ModelSpec
from deploysim.replay import ReplaySpec, create_sample, load_prefix, run_replay
from deploysim.sampling import SamplingSpec
from deploysim.schema import Message, ToolDef
from deploysim.store import Store
from tests.conftest import HH, OASST, TAU

FAST = RetryPolicy(max_attempts=4, base_s=0.001, cap_s=0.01)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    st = Store(tmp_path / "s.db")
    for f in (HH, OASST, TAU):
        ingest_file(f, st)
    return st


def _rows(store: Store) -> list[tuple[int, int, str]]:
    return store.db.execute("SELECT prefix_id, draw, status FROM replays ORDER BY 1, 2").fetchall()


def test_scripted_replay_on_real_prefixes_is_stored_with_spec(store: Store) -> None:
    create_sample(store, "default", SamplingSpec(size=40, seed=1))
    spec = ReplaySpec(model="scripted/echo", config=GenerateConfig(max_tokens=64, seed=3))
    summary = run_replay(store, spec, draws=2)
    assert (summary.ok, summary.failed, summary.pending) == (80, 0, 80)
    stored = json.loads(
        store.db.execute("SELECT spec FROM replay_specs WHERE hash = ?", (spec.hash,)).fetchone()[0]
    )
    assert stored["model"] == "scripted/echo" and stored["config"]["max_tokens"] == 64
    pid, response = store.db.execute("SELECT prefix_id, response FROM replays LIMIT 1").fetchone()
    prefix = load_prefix(store, pid)
    last_user = [m for m in prefix.messages if m.role == "user"][-1].text
    assert prefix.messages[-1].role == "user"  # turn mode: the prefix ends on the user turn
    content = json.loads(response)[0]["content"]
    assert content.startswith("You said:") and f"You said: {last_user}".startswith(content)
    # Running again finds nothing to do.
    again = run_replay(store, spec, draws=2)
    assert (again.pending, again.ok) == (0, 0)
    assert len(_rows(store)) == 80


class Flaky(Model):
    """Fails the first ``fails`` calls per prefix with a retryable error, then answers."""

    def __init__(self, fails: int, retry_after: float | None = None) -> None:
        super().__init__(ModelSpec.parse("test/flaky"))
        self.fails = fails
        self.retry_after = retry_after
        self.calls: dict[str, int] = {}

    async def generate(
        self, messages: Sequence[Message], tools: Sequence[ToolDef], config: GenerateConfig
    ) -> Generation:
        key = messages[-1].content_hash()
        self.calls[key] = self.calls.get(key, 0) + 1
        if self.calls[key] <= self.fails:
            raise ModelError("rate_limit", "429", retryable=True, retry_after=self.retry_after)
        return Generation(text="fine", finish_reason="stop")


def test_retryable_errors_are_retried_then_succeed(store: Store) -> None:
    create_sample(store, "default", SamplingSpec(size=10))
    model = Flaky(fails=2, retry_after=0.01)
    summary = run_replay(store, ReplaySpec(model="test/flaky"), model=model, retry=FAST)
    assert (summary.ok, summary.failed, summary.retries) == (10, 0, 20)
    attempts = [r[0] for r in store.db.execute("SELECT attempts FROM replays")]
    assert attempts == [3] * 10


def test_exhausted_retries_and_bad_requests_are_recorded_failures(store: Store) -> None:
    create_sample(store, "default", SamplingSpec(size=10))
    summary = run_replay(store, ReplaySpec(model="test/flaky"), model=Flaky(fails=99), retry=FAST)
    assert (summary.ok, summary.failed, summary.errors) == (0, 10, {"rate_limit": 10})
    kinds = {r[0] for r in store.db.execute("SELECT error_kind FROM replays")}
    assert kinds == {"rate_limit"}
    # Failures are results: a plain re-run does not repeat them; --retry-failed does.
    assert run_replay(store, ReplaySpec(model="test/flaky"), model=Flaky(fails=99)).pending == 0
    redo = run_replay(
        store, ReplaySpec(model="test/flaky"), model=Flaky(fails=0), retry=FAST, retry_failed=True
    )
    assert (redo.ok, redo.failed) == (10, 0)
    assert [r[2] for r in _rows(store)] == ["ok"] * 10


class Broken(Model):
    """Hangs on some prefixes and raises a non-provider exception on others."""

    async def generate(
        self, messages: Sequence[Message], tools: Sequence[ToolDef], config: GenerateConfig
    ) -> Generation:
        import asyncio

        n = len(messages[-1].text)
        if n % 3 == 0:
            await asyncio.sleep(10)
        if n % 3 == 1:
            raise KeyError("provider bug")
        return Generation(text="ok")


def test_timeouts_and_provider_bugs_do_not_lose_other_prefixes(store: Store) -> None:
    create_sample(store, "default", SamplingSpec(size=30, seed=2))
    spec = ReplaySpec(model="test/broken", config=GenerateConfig(timeout_s=0.05))
    summary = run_replay(
        store, spec, model=Broken(ModelSpec.parse("test/broken")), retry=FAST, concurrency=30
    )
    assert summary.ok + summary.failed == 30
    assert set(summary.errors) <= {"timeout", "internal"} and summary.errors
    assert len(_rows(store)) == 30


def test_system_prompt_override_replaces_logged_one(store: Store) -> None:
    create_sample(store, "tau", SamplingSpec(size=5, formats=("tau-bench",)))
    from deploysim.replay import prepare_messages

    prefix = load_prefix(store, 1)
    assert prefix.messages[0].role == "system"
    spec = ReplaySpec(model="scripted/echo", system_prompt="Be brief.")
    messages = prepare_messages(prefix.messages, spec)
    assert messages[0].text == "Be brief." and messages[1:] == list(prefix.messages[1:])


def test_kill_9_mid_replay_then_rerun_gives_each_prefix_once(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with Store(db) as st:
        for f in (HH, OASST, TAU):
            ingest_file(f, st)
        create_sample(st, "default", SamplingSpec(size=200, seed=5))
    cmd = [
        sys.executable,
        "-m",
        "deploysim",
        "replay",
        "--store",
        str(db),
        "--model",
        "scripted/echo?latency=0.02",
        "--concurrency",
        "4",
        "--json",
    ]
    env = {**os.environ, "DEPLOYSIM_SECRET_KEY": "k"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            time.sleep(0.1)
            with Store(db) as st:
                done = st.count("replays")
            if done >= 30:
                break
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert 30 <= done < 200, "the kill must land mid-run"
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    summary = json.loads(rerun.stdout)
    with Store(db) as st:
        rows = st.db.execute("SELECT prefix_id, draw FROM replays").fetchall()
    assert len(rows) == 200 and len(set(rows)) == 200
    # The rerun did exactly what the kill left undone, and nothing twice.
    assert 200 - summary["pending"] >= done
    assert summary["ok"] == summary["pending"]
