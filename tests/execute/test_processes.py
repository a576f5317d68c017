"""The processes executor against a real loopback server that injects faults: every prefix ends
once (completion or recorded failure), progress is summed, worker errors stop the run."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from deploysim.agent import RetryPolicy
from deploysim.cli import app
from deploysim.errors import DeploysimError, UsageError
from deploysim.execute.processes import ProcessExecutor
from deploysim.ingest import ingest_file
from deploysim.models import GenerateConfig, get_model
from deploysim.replay import ReplaySpec, ReplaySummary, create_sample, run_replay
from deploysim.sampling import SamplingSpec
from deploysim.store import Store
from deploysim.testing import OpenAIServer
from tests.conftest import HH, OASST, TAU

TWO = ProcessExecutor(2)


def _store(path: Path, size: int) -> None:
    with Store(path) as st:
        for f in (HH, OASST, TAU):
            ingest_file(f, st)
        create_sample(st, "default", SamplingSpec(size=size, seed=5))


def test_two_processes_every_prefix_ends_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "x")
    db = tmp_path / "s.db"
    _store(db, 120)
    rates = {"rate_limit": 0.1, "server_error": 0.1, "bad_request": 0.05}
    seen: list[ReplaySummary] = []
    with Store(db) as st, OpenAIServer(rates=rates, retry_after=0.01, latency=0.01) as srv:
        spec = ReplaySpec(
            model=f"openai/m?base_url={srv.base_url}", config=GenerateConfig(max_tokens=16)
        )
        retry = RetryPolicy(max_attempts=4, base_s=0.01, cap_s=0.05)
        summary = run_replay(
            st, spec, concurrency=8, executor=TWO, retry=retry, on_progress=seen.append
        )
        served = sum(srv.counts.values())
        rows = st.db.execute("SELECT prefix_id, draw, status, error_kind FROM replays").fetchall()
        again = run_replay(st, spec, executor=TWO)
    assert len(rows) == 120 and len({(p, d) for p, d, _, _ in rows}) == 120
    assert summary.pending == 120 and summary.ok + summary.failed == 120
    assert summary.ok == sum(r[2] == "ok" for r in rows) and summary.retries > 0
    kinds = {r[3] for r in rows if r[2] == "failed"}  # retries exhausted: 5xx / 429 too
    assert "bad_request" in kinds and kinds <= {"bad_request", "server_error", "rate_limit"}
    # Both processes made requests: progress snapshots came in and the sum is monotone.
    done = [s.ok + s.failed for s in seen]
    assert done == sorted(done) and done[-1] == 120
    assert served >= 120
    assert again.pending == 0 and again.ok == again.failed == 0


def test_worker_errors_stop_the_run_with_their_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    db = tmp_path / "s.db"
    _store(db, 10)
    with Store(db) as st:
        spec = ReplaySpec(model="scripted/fail")
        summary = run_replay(st, spec, executor=TWO, retry=RetryPolicy(max_attempts=1))
        assert summary.failed == 10  # per-item failures are data, not a stopped run
        with pytest.raises(UsageError, match="no sample 'nope'"):
            run_replay(st, spec, executor=TWO, sample_name="nope")
        remote = ReplaySpec(model="openai/m?base_url=https://api.example.com/v1")
        with pytest.raises(DeploysimError, match=r"replay worker . of 2: .*OPENAI_API_KEY"):
            run_replay(st, remote, executor=TWO)
        with pytest.raises(UsageError, match="builds the model from its spec"):
            run_replay(st, spec, executor=TWO, model=get_model("scripted/echo"))


def test_cli_workers(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    _store(db, 30)
    r = CliRunner().invoke(
        app, ["replay", "--store", str(db), "--model", "scripted/echo", "--workers", "2", "--json"]
    )
    assert r.exit_code == 0, r.output
    with Store(db) as st:
        assert st.db.execute("SELECT COUNT(DISTINCT prefix_id) FROM replays").fetchone() == (30,)
