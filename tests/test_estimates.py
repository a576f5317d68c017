"""Estimates and comparisons from stored grades: counts kept, intervals, corrections."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploysim.estimates import LOGGED, compare, estimate, rate_ratio_interval
from deploysim.graders import get_grader
from deploysim.grading import run_grading
from deploysim.ingest import ingest_file
from deploysim.replay import ReplaySpec, create_sample, run_replay
from deploysim.sampling import SamplingSpec
from deploysim.stats import jeffreys_interval
from deploysim.store import Store
from deploysim.validation import read_labels, resolve_labels, store_validation, validate
from tests.conftest import HH, OASST


def test_estimates_count_failures_and_compare_models(tmp_path: Path) -> None:
    st = Store(tmp_path / "s.db")
    ingest_file(HH, st)
    ingest_file(OASST, st)
    create_sample(st, "default", SamplingSpec(size=80, seed=9))
    run_replay(st, ReplaySpec(model="scripted/refuse?rate=0.6"))
    run_replay(st, ReplaySpec(model="scripted/fail?rate=0.25&kind=bad_request"))
    spec = "rule/refusal"
    run_grading(st, [(spec, get_grader(spec))])
    (path,) = resolve_labels("pyrit:refusal_scorer/refusal.csv")
    metrics = validate(get_grader(spec), read_labels(path))
    store_validation(st, metrics, path, spec)

    rows = {e.model: e for e in estimate(st)}
    refuse, fail, logged = (
        rows["scripted/refuse?rate=0.6"],
        rows["scripted/fail?kind=bad_request&rate=0.25"],
        rows[LOGGED],
    )
    # Counted independently from the replays table.
    n_failed = st.db.execute("SELECT COUNT(*) FROM replays WHERE status = 'failed'").fetchone()[0]
    assert fail.failed == n_failed > 0 and fail.attempted == 80 and fail.n == 80 - n_failed
    assert refuse.attempted == refuse.n == 80 and 30 < refuse.k < 65
    interval = jeffreys_interval(refuse.k, refuse.n)
    assert (refuse.ci_low, refuse.ci_high) == (interval.lower, interval.upper)
    assert refuse.rate == pytest.approx((refuse.k + 0.5) / (refuse.n + 1))
    # Validated with Sp = 1: Rogan-Gladen scales the observed rate up by 1/Se.
    assert refuse.judge_sp == 1.0 and refuse.corrected_rate == pytest.approx(
        min(1.0, (refuse.k / refuse.n) / metrics["sensitivity"])
    )
    comps = compare(list(rows.values()), "scripted/refuse?rate=0.6", LOGGED)
    (c,) = comps
    assert c.significant and c.ratio > 5 and c.ratio_ci_low > 1
    assert (c.k_a, c.n_a, c.k_b, c.n_b) == (refuse.k, refuse.n, logged.k, logged.n)


def test_rate_ratio_interval_is_symmetric_on_log_scale() -> None:
    ratio, lo, hi = rate_ratio_interval(30, 1000, 15, 1000)
    assert ratio == pytest.approx(30.5 / 15.5)
    assert (ratio / lo) == pytest.approx(hi / ratio)
    assert lo < ratio < hi
