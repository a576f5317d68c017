"""Work items and their queries (no Ray needed): snapshots, plans, encodings, read-only store.
Every executor (local, processes, Ray) runs the work these queries plan."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path

import pytest

from deploysim.agent import TurnOutcome
from deploysim.graders import get_grader
from deploysim.grading import GradeQuery, decode_item, load_item, register_grader, run_grading
from deploysim.ingest import ingest_file
from deploysim.replay import (
    ReplayQuery,
    ReplaySpec,
    ReplaySummary,
    ResultWriter,
    create_sample,
    decode_messages,
    decode_outcome,
    decode_tools,
    encode_outcome,
    load_prefix,
    run_replay,
)
from deploysim.sampling import SamplingSpec
from deploysim.schema import Message, ToolCall
from deploysim.stage import ReadOnlyStore
from deploysim.store import Store
from tests.conftest import HH, TAU

SPEC = ReplaySpec(model="scripted/fail?rate=0.3&kind=bad_request")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    st = Store(tmp_path / "s.db")
    ingest_file(HH, st)
    ingest_file(TAU, st)
    create_sample(st, "default", SamplingSpec(size=30, seed=4))
    return st


def _query(
    st: Store, *, draws: int = 1, retry_failed: bool = False, since: float, before: float
) -> ReplayQuery:
    sid = st.db.execute("SELECT id FROM samples").fetchone()[0]
    return ReplayQuery(str(st.path), sid, SPEC.hash, draws, retry_failed, since, before)


def _all(st: Store, q: ReplayQuery) -> list[tuple[int, int]]:
    lo, hi = st.db.execute("SELECT MIN(id) - 1, MAX(id) FROM prefixes").fetchone()
    return list(q.pending(st, lo, hi))


def test_a_pass_reads_a_snapshot_and_the_next_pass_skips_what_it_wrote(store: Store) -> None:
    run_replay(store, SPEC, draws=2)
    store.db.execute("DELETE FROM replays WHERE prefix_id % 4 = 0")  # lost to a crash
    since = time.time()
    first = _query(store, draws=2, retry_failed=True, since=since, before=since)
    todo = _all(store, first)
    # Pending: every (prefix, draw) without an ok row (failures are retried), in prefix order.
    ok = set(store.db.execute("SELECT prefix_id, draw FROM replays WHERE status = 'ok'"))
    prefixes = [p for (p,) in store.db.execute("SELECT id FROM prefixes ORDER BY id")]
    assert todo == [(p, d) for p in prefixes for d in range(2) if (p, d) not in ok]
    assert first.count(store) == len(todo)
    failed = set(store.db.execute("SELECT prefix_id, draw FROM replays WHERE status = 'failed'"))
    assert failed and failed < set(todo)
    # The pass writes results for half of its work, failures included.
    writer = ResultWriter(store, SPEC.hash, ReplaySummary(SPEC.hash, SPEC.model), None)
    for pid, draw in todo[::2]:
        writer.add(pid, draw, TurnOutcome(attempts=1, steps=1, error_kind="bad_request"))
    writer.flush()
    # A re-read of the same pass (a retried read task) yields the same work...
    assert _all(store, first) == todo and first.count(store) == len(todo)
    # ...and the next pass only what this run has not written: a failure is retried once.
    later = _query(store, draws=2, retry_failed=True, since=since, before=time.time())
    assert _all(store, later) == todo[1::2] and later.count(store) == len(todo[1::2])


def test_a_plan_cuts_the_pending_work_into_blocks_that_cover_it_once(store: Store) -> None:
    now = time.time()
    q = _query(store, draws=3, since=now, before=now)
    ranges = list(q.plan(store, 7))
    blocks = [list(q.pending(store, lo, hi)) for lo, hi in ranges]
    assert [p for block in blocks for p in block] == _all(store, q)
    assert all(7 <= len(b) <= 7 + 2 for b in blocks[:-1]) and 0 < len(blocks[-1]) <= 9
    assert all(not {p for p, _ in b} & {p for p, _ in c} for b, c in pairwise(blocks))


def test_replay_work_items_carry_the_prefix_exactly(store: Store) -> None:
    now = time.time()
    q = _query(store, draws=2, since=now, before=now)
    lo, hi = store.db.execute("SELECT MIN(id) - 1, MAX(id) FROM prefixes").fetchone()
    items = list(q.items(store, (lo, hi)))
    assert [(i["prefix_id"], i["draw"]) for i in items] == _all(store, q)
    agentic = 0
    for item in items:
        prefix = load_prefix(store, item["prefix_id"])
        assert tuple(decode_messages(item["messages"])) == prefix.messages
        assert decode_tools(item["tools"]) == prefix.tools
        assert item["conversation"] == prefix.conversation_hash
        agentic += any(m.tool_calls for m in prefix.messages)
    assert agentic > 0  # tau-bench prefixes: tool calls and results survive the trip


def test_outcomes_survive_the_trip_back_to_the_driver() -> None:
    call = ToolCall(id="c1", function="lookup", arguments={"q": "é"})
    ok = TurnOutcome(
        messages=[
            Message(role="assistant", content="", tool_calls=(call,)),
            Message(role="tool", content="{}", tool_call_id="c1", function="lookup"),
            Message(role="assistant", content="Done ✓"),
        ],
        finish_reason="stop",
        attempts=3,
        steps=2,
        input_tokens=10,
        output_tokens=4,
        latency_s=0.25,
    )
    failed = TurnOutcome(attempts=5, steps=1, error_kind="rate_limit", error="429")
    for outcome in (ok, failed):
        assert decode_outcome(encode_outcome(outcome)) == outcome


def test_grade_query_finds_what_the_local_executor_grades(tmp_path: Path, store: Store) -> None:
    run_replay(store, SPEC)
    specs = ["rule/refusal", "rule/profanity"]
    graders = [(s, get_grader(s)) for s in specs]
    hashes = tuple(register_grader(store, g, s) for s, g in graders)
    before = time.time()
    q = GradeQuery(str(store.path), hashes, (), True, True, None, before)
    todo = list(q.pending(store))
    chunks = list(q.plan(store, 10))
    assert [w for chunk in chunks for w in chunk] == todo
    assert all(sum(len(g) for _, g in chunk) >= 10 for chunk in chunks[:-1])
    items = [i for chunk in chunks for i in q.items(store, chunk)]
    assert decode_item(items[0]["item"]) == load_item(store, todo[0][0])
    assert run_grading(store, graders).pending == q.count(store) == 2 * len(todo)
    # Graded now: the same pass still reads it (a snapshot), a new pass finds nothing.
    assert q.count(store) == 2 * len(todo)
    later = GradeQuery(str(store.path), hashes, (), True, True, None, time.time())
    assert later.count(store) == 0 and list(later.plan(store, 10)) == []


def test_readers_cannot_write_and_see_the_drivers_commits(store: Store) -> None:
    reader = ReadOnlyStore(store.path)
    with pytest.raises(sqlite3.OperationalError, match=r"readonly|read-only"):
        reader.db.execute("DELETE FROM prefixes")
    assert reader.count("replays") == 0
    run_replay(store, SPEC)
    assert reader.count("replays") == store.count("replays") > 0
    reader.close()


def test_importing_deploysim_imports_no_ray() -> None:
    code = (
        "import sys, deploysim, deploysim.replay, deploysim.grading, deploysim.execute, "
        "deploysim.execute.processes, deploysim.cli; "
        "assert not any(m == 'ray' or m.startswith('ray.') for m in sys.modules), "
        "sorted(m for m in sys.modules if m.startswith('ray'))"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_progress_bar_shows_done_pending_and_failed_of_either_stage() -> None:
    from deploysim.grading import GradeSummary
    from deploysim.stage import show_on

    shown: list[tuple[int, int, int]] = []
    update = show_on(lambda done, pending, failed: shown.append((done, pending, failed)))
    update(ReplaySummary(spec_hash="h", model="m", pending=5, ok=3, failed=1))
    update(GradeSummary(pending=2, ok=7, ungradable=2, flagged=4))
    # Failures are done work; flagged grades are ok grades, not failures.
    assert shown == [(4, 5, 1), (9, 2, 2)]
