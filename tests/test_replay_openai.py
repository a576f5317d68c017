"""Replay over the OpenAI-compatible path against a real loopback server that injects faults:
every prefix ends as a completion or a recorded failure, none lost, none duplicated; the API
key never reaches the store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploysim.agent import RetryPolicy
from deploysim.ingest import ingest_file
from deploysim.models import GenerateConfig
from deploysim.replay import ReplaySpec, create_sample, run_replay
from deploysim.sampling import SamplingSpec
from deploysim.store import Store
from deploysim.testing import OpenAIServer
from tests.conftest import HH, OASST, TAU

SECRET = "sk-test-DO-NOT-LEAK-4f8a2c"


def test_faulty_server_every_prefix_ends_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    rates = {
        "rate_limit": 0.08,
        "server_error": 0.08,
        "unavailable": 0.04,
        "hang": 0.03,
        "drop": 0.04,
        "malformed": 0.04,
        "bad_request": 0.02,
    }
    db = tmp_path / "s.db"
    with Store(db) as st:
        for f in (HH, OASST, TAU):
            ingest_file(f, st)
        create_sample(st, "default", SamplingSpec(size=150, seed=11))
        with OpenAIServer(rates=rates, retry_after=0.01, hang_s=5, api_key=SECRET) as srv:
            spec = ReplaySpec(
                model=f"openai/test-model?base_url={srv.base_url}",
                config=GenerateConfig(timeout_s=0.5, max_tokens=32),
            )
            retry = RetryPolicy(max_attempts=4, base_s=0.01, cap_s=0.05)
            summary = run_replay(st, spec, concurrency=16, retry=retry)
            served = dict(srv.counts)
        rows = st.db.execute("SELECT prefix_id, draw, status, error_kind FROM replays").fetchall()
        # Re-running the same spec finds nothing to do (the server is gone: no call is made).
        again = run_replay(st, spec)
        specs = [s for (s,) in st.db.execute("SELECT spec FROM replay_specs")]
    assert again.pending == 0 and again.ok == again.failed == 0
    assert len(rows) == 150 and len({(r[0], r[1]) for r in rows}) == 150
    assert summary.ok + summary.failed == 150 and summary.ok > 100
    assert summary.retries > 10  # faults were retried
    # Only non-retryable errors (or exhausted retries) end as failures, with their kind.
    kinds = {r[3] for r in rows if r[2] == "failed"}
    assert "bad_request" in kinds
    # The server saw no more requests than the engine made (attempts = prefixes + retries; a
    # request that timed out before reaching the server is not seen), and it served faults.
    assert sum(served.values()) <= 150 + summary.retries
    assert sum(v for k, v in served.items() if k != "ok") >= 10
    # The key never reaches the store.
    wal = Path(f"{db}-wal")
    raw = db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    assert SECRET.encode() not in raw and not any(SECRET in s for s in specs)
    with Store(db) as st:
        ok = [
            json.loads(b)
            for (b,) in st.db.execute("SELECT response FROM replays WHERE status='ok'")
        ]
    assert all(r[0]["content"].startswith("You said:") for r in ok)


def test_cli_output_never_shows_the_key(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    db = tmp_path / "s.db"
    with Store(db) as st:
        ingest_file(HH, st)
        create_sample(st, "default", SamplingSpec(size=10))
    env = {**os.environ, "OPENAI_API_KEY": SECRET, "DEPLOYSIM_SECRET_KEY": "k"}
    # A wrong key on the server side: every call fails with 401, whose text names no key.
    with OpenAIServer(api_key="another-key") as srv:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "deploysim",
                "replay",
                "--store",
                str(db),
                "--model",
                f"openai/m?base_url={srv.base_url}",
                "--json",
            ],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
    summary = json.loads(proc.stdout)
    assert summary["failed"] == 10 and summary["errors"] == {"auth": 10}
    assert SECRET not in proc.stdout + proc.stderr
    with Store(db) as st:
        errors = [e for (e,) in st.db.execute("SELECT error FROM replays")]
    assert errors and not any(SECRET in (e or "") for e in errors)
