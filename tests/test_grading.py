"""Grading stored replays and logged references: spec hashes, no-op re-runs, ungradables."""

from __future__ import annotations

from pathlib import Path

from deploysim.graders import get_grader
from deploysim.grading import run_grading
from deploysim.ingest import ingest_file
from deploysim.replay import ReplaySpec, create_sample, run_replay
from deploysim.sampling import SamplingSpec
from deploysim.store import Store
from tests.conftest import HH, TAU


def _store(tmp_path: Path) -> Store:
    st = Store(tmp_path / "s.db")
    ingest_file(HH, st)
    ingest_file(TAU, st)
    create_sample(st, "default", SamplingSpec(size=30, seed=4))
    run_replay(st, ReplaySpec(model="scripted/refuse?rate=0.5"))
    run_replay(st, ReplaySpec(model="scripted/fail?rate=0.2&kind=bad_request"))
    return st


def test_grades_replays_and_references_once(tmp_path: Path) -> None:
    st = _store(tmp_path)
    specs = ["rule/refusal", "judge/S?judge=scripted/yes%3Fp%3D0.9"]
    graders = [(s, get_grader(s)) for s in specs]
    summary = run_grading(st, graders)
    ok_replays = st.db.execute("SELECT COUNT(*) FROM replays WHERE status = 'ok'").fetchone()[0]
    refs = st.db.execute(
        "SELECT COUNT(*) FROM prefixes WHERE reference_index IS NOT NULL"
    ).fetchone()[0]
    assert ok_replays < 60 and refs > 0  # failed replays are not graded
    assert summary.pending == summary.ok == 2 * (ok_replays + refs)
    hashes = {r[0] for r in st.db.execute("SELECT DISTINCT grader_hash FROM grades")}
    assert hashes == {g.spec_hash for _, g in graders}
    stored = {r[0] for r in st.db.execute("SELECT hash FROM graders")}
    assert stored == hashes
    # The refusal rule sees the scripted model's deterministic refusals (rate 0.5).
    flagged = st.db.execute(
        "SELECT COUNT(*) FROM grades g JOIN graders d ON d.hash = g.grader_hash "
        "WHERE d.spec = 'rule/refusal' AND g.target = 'replay' AND g.flagged = 1"
    ).fetchone()[0]
    assert 0 < flagged < ok_replays
    # Running again does nothing; a changed grader is a new version beside the old one.
    again = run_grading(st, [(s, get_grader(s)) for s in specs])
    assert again.pending == 0
    before = st.count("grades")
    new = run_grading(
        st,
        [
            (
                "judge/S?judge=scripted/yes%3Fp%3D0.9&threshold=0.95",
                get_grader("judge/S?judge=scripted/yes%3Fp%3D0.9&threshold=0.95"),
            )
        ],
    )
    assert new.ok == ok_replays + refs and st.count("grades") == before + new.ok
    assert new.flagged == 0  # p = 0.9 < threshold 0.95


def test_garbage_judge_output_is_counted_as_ungradable(tmp_path: Path) -> None:
    st = _store(tmp_path)
    spec = "judge/S?judge=scripted/echo"  # echo never answers yes/no or JSON
    summary = run_grading(st, [(spec, get_grader(spec))], references=False)
    assert summary.ok == 0 and summary.ungradable == summary.pending > 0
    errors = {r[0] for r in st.db.execute("SELECT error FROM grades")}
    assert errors == {"judge output was not the requested JSON"}


def test_targets_come_grouped_by_prefix(tmp_path: Path) -> None:
    # A local judge reuses the cached prompt of the shared prefix only if the responses to one
    # prefix are graded one after another.
    from deploysim.grading import targets

    st = _store(tmp_path)
    order = list(targets(st, sample="default"))
    prefixes = [t.prefix_id for t in order]
    assert prefixes == sorted(prefixes)
    kinds = {t.kind for t in order}
    assert kinds == {"replay", "reference"}
    # Within a prefix, its replays come before its logged reply.
    for pid in set(prefixes):
        group = [t.kind for t in order if t.prefix_id == pid]
        assert group == sorted(group, key=lambda k: k == "reference")
    only = list(targets(st, models=["scripted/refuse?rate=0.5"], references=False))
    assert only and {t.kind for t in only} == {"replay"}
    assert len(only) < len([t for t in order if t.kind == "replay"])
    logged = list(targets(st, replays=False, sample="default"))
    assert logged == [t for t in order if t.kind == "reference"]
