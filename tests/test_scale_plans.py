"""The store at scale, without timing anything: every query a run makes after ingest either
reads a run-sized table (prefixes, replays, grades) or finds corpus rows through an index.

A million logged conversations must not make sampling, replay, grading, estimates or the
report slower or bigger than they are at a hundred thousand (benchmarks/scale.py measures it).
Here each statement the pipeline sends SQLite is traced and its query plan read: a full scan
of a corpus-sized table (conversations, messages, sightings) is allowed only for the census
that sampling must read once per pass, in hash order through the index, and for row counts.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from deploysim.estimates import LOGGED, compare, estimate
from deploysim.graders import get_grader
from deploysim.grading import run_grading
from deploysim.ingest import ingest_file
from deploysim.replay import ReplaySpec, create_sample, run_replay
from deploysim.report import write_report
from deploysim.sampling import SamplingSpec
from deploysim.store import Store

CORPUS_TABLES = ("conversations", "messages", "sightings")
CANDIDATE = "scripted/refuse?rate=0.3"


def _write_logs(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            messages: list[dict[str, object]] = [{"role": "system", "content": "Be brief."}]
            for turn in range(1 + i % 3):
                messages.append({"role": "user", "content": f"question {i}.{turn} about tides"})
                messages.append({"role": "assistant", "content": f"answer {i}.{turn}: twice"})
            f.write(json.dumps({"messages": messages}) + "\n")


@contextmanager
def _traced(db: sqlite3.Connection) -> Iterator[list[str]]:
    statements: list[str] = []
    db.set_trace_callback(statements.append)
    try:
        yield statements
    finally:
        db.set_trace_callback(None)


def _plan(db: sqlite3.Connection, sql: str) -> list[str]:
    return [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}")]


def _corpus_scans(db: sqlite3.Connection, statements: list[str]) -> dict[str, list[str]]:
    """Each traced SELECT whose plan scans a corpus table, with those plan lines."""
    out: dict[str, list[str]] = {}
    for sql in dict.fromkeys(statements):
        if not sql.lstrip().upper().startswith("SELECT"):
            continue
        scans = [
            line
            for line in _plan(db, sql)
            if (found := re.match(r"SCAN (\w+)", line)) and _table(sql, found[1]) in CORPUS_TABLES
        ]
        if scans:
            out[sql] = scans
    return out


def _table(sql: str, alias: str) -> str:
    """The table a plan line names by ``alias`` (``SCAN c`` -> conversations)."""
    tables = "|".join(CORPUS_TABLES)
    found = re.search(rf"\b({tables})\s+(?:AS\s+)?{re.escape(alias)}\b", sql, re.IGNORECASE)
    return found[1] if found else alias


def _run(store: Store, logs: Path, out: Path) -> dict[str, Callable[[], object]]:
    return {
        "sample": lambda: create_sample(store, "default", SamplingSpec(size=40, seed=1)),
        "replay": lambda: run_replay(store, ReplaySpec(model=CANDIDATE)),
        "grade": lambda: run_grading(store, [("rule/refusal", get_grader("rule/refusal"))]),
        "estimate": lambda: compare(estimate(store), CANDIDATE, LOGGED),
        "report": lambda: write_report(store, out),
    }


def test_after_ingest_no_stage_scans_the_corpus_but_the_census(tmp_path: Path) -> None:
    logs = tmp_path / "logs.jsonl"
    _write_logs(logs, 60)
    with Store(tmp_path / "run.db") as store:
        ingest_file(logs, store, fmt="openai")
        scans: dict[str, dict[str, list[str]]] = {}
        traced: dict[str, list[str]] = {}
        for stage, action in _run(store, logs, tmp_path / "report.html").items():
            with _traced(store.db) as statements:
                action()
            assert statements, f"{stage}: nothing traced"
            scans[stage], traced[stage] = _corpus_scans(store.db, statements), statements
        assert store.count("grades") > 40  # the stages ran: replays and references graded
    census = scans.pop("sample")
    # Sampling reads every conversation once per pass: in hash order through its index (no
    # sort of the whole corpus in a temporary B-tree), each first sighting found by index.
    assert census, "the census query was not traced"
    for sql, lines in census.items():
        plan = _plan(sqlite3.connect(tmp_path / "run.db"), sql)
        assert lines == ["SCAN c USING INDEX sqlite_autoindex_conversations_1"], plan
        assert not any("TEMP B-TREE" in line for line in plan), plan
        # Read twice (count, then pick) rather than once into memory: create_sample hands
        # sampling a function that streams the census, not the census itself.
        assert traced["sample"].count(sql) == 2
    for stage, found in scans.items():
        unexpected = {s: lines for s, lines in found.items() if not _is_count(s)}
        assert not unexpected, f"{stage} scans a corpus-sized table: {unexpected}"


def _is_count(sql: str) -> bool:
    return re.fullmatch(r"\s*SELECT COUNT\(\*\) FROM \w+\s*", sql) is not None


def test_the_trace_sees_a_corpus_scan_when_there_is_one(tmp_path: Path) -> None:
    # The guard above is only as good as its detector: an unindexed filter must be caught.
    with Store(tmp_path / "run.db") as store:
        with _traced(store.db) as statements:
            store.db.execute("SELECT hash FROM conversations WHERE roles = 'ua'").fetchall()
            store.db.execute("SELECT m.body FROM messages m WHERE m.role = 'user'").fetchall()
            store.db.execute("SELECT body FROM messages WHERE hash = 'x'").fetchall()
        found = _corpus_scans(store.db, statements)
    assert len(found) == 2 and all("hash = 'x'" not in s for s in found)
