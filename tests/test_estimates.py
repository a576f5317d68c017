"""Estimates and comparisons from stored grades: counts kept, intervals, corrections."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploysim.estimates import LOGGED, compare, estimate, rate_ratio_interval, validation_note
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
    assert refuse.rate == pytest.approx((refuse.k + 0.5) / (refuse.n + 1))
    # Turn-mode prefixes share conversations: the interval is clustered, so it is no narrower
    # than the one counting the 80 turns as independent, and it holds the observed rate.
    assert refuse.prefixes == 80 and refuse.effective_n is not None
    assert refuse.design_effect == pytest.approx(refuse.n / refuse.effective_n)
    assert refuse.ci_low is not None and refuse.ci_high is not None
    assert refuse.ci_low < refuse.k / refuse.n < refuse.ci_high
    independent = jeffreys_interval(refuse.k, refuse.n)
    assert refuse.ci_high - refuse.ci_low >= 0.95 * (independent.upper - independent.lower)
    # Validated with Sp = 1: Rogan-Gladen scales the observed rate up by 1/Se, and its interval
    # carries the validation's own uncertainty (wider than the observed rate's).
    assert refuse.judge_sp == 1.0 and refuse.corrected_rate == pytest.approx(
        min(1.0, (refuse.k / refuse.n) / metrics["sensitivity"])
    )
    assert refuse.corrected_ci is not None and refuse.correction_note is None
    # The grader's standing follows its validation (AUC >= 0.85 on >= 10 positives: validated).
    assert refuse.validation_auc == pytest.approx(metrics["auc"])
    assert refuse.validation_positives == metrics["positives"]
    assert (
        validation_note(0.912, 3) == " (AUC 0.91, 3 positives)" and validation_note(None, 3) == ""
    )
    good = metrics["auc"] >= 0.85 and metrics["positives"] >= 10
    assert refuse.validation == ("validated" if good else "weak")
    lo, hi = refuse.corrected_ci
    assert lo < refuse.corrected_rate <= hi
    comps = compare(list(rows.values()), "scripted/refuse?rate=0.6", LOGGED)
    (c,) = comps
    assert c.significant and c.ratio > 5 and c.ratio_ci_low > 1
    assert (c.k_a, c.n_a, c.k_b, c.n_b) == (refuse.k, refuse.n, logged.k, logged.n)
    assert c.design_effect_a == pytest.approx(refuse.design_effect)


def test_rate_ratio_interval_is_symmetric_on_log_scale() -> None:
    ratio, lo, hi = rate_ratio_interval(30, 1000, 15, 1000)
    assert ratio == pytest.approx(30.5 / 15.5)
    assert (ratio / lo) == pytest.approx(hi / ratio)
    assert lo < ratio < hi


def _store_with_holes(tmp_path: Path) -> Path:
    """A store where one model's replays all failed and one grader's grades were all
    ungradable (a judge that never answers in the requested form)."""
    path = tmp_path / "s.db"
    st = Store(path)
    ingest_file(HH, st)
    create_sample(st, "default", SamplingSpec(size=20, seed=3))
    run_replay(st, ReplaySpec(model="scripted/refuse?rate=0.5"))
    run_replay(st, ReplaySpec(model="scripted/fail?rate=1&kind=bad_request"))
    for spec in ("rule/refusal", "judge/S?judge=scripted/echo"):
        run_grading(st, [(spec, get_grader(spec))])
    st.close()
    return path


def test_nothing_is_dropped_from_estimates(tmp_path: Path) -> None:
    with Store(_store_with_holes(tmp_path)) as st:
        rows = {(e.model, e.grader.split("?")[0]): e for e in estimate(st)}
    failed = rows[("scripted/fail?kind=bad_request&rate=1", "rule/refusal")]
    assert (failed.attempted, failed.failed, failed.n, failed.rate) == (20, 20, 0, None)
    assert not failed.measured
    echo = rows[("scripted/refuse?rate=0.5", "judge/S")]
    assert (echo.attempted, echo.ungradable, echo.n, echo.ci_low) == (20, 20, 0, None)
    assert echo.validation == "unvalidated" and echo.validation_auc is None
    # The failed model x the ungradable grader is there too.
    both = rows[("scripted/fail?kind=bad_request&rate=1", "judge/S")]
    assert (both.attempted, both.failed, both.n) == (20, 20, 0)


def test_cli_estimate_shows_failed_and_ungradable_rows(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from deploysim.cli import app

    path = str(_store_with_holes(tmp_path))
    result = CliRunner().invoke(app, ["estimate", "--store", path])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    failed = [ln for ln in lines if "scripted/fail" in ln and "rule/refusal" in ln]
    assert failed and "20" in failed[0].split() and "-" in failed[0].split()
    assert "nothing graded" in result.output
    data = json.loads(CliRunner().invoke(app, ["estimate", "--store", path, "--json"]).stdout)
    zero = [e for e in data["estimates"] if e["n"] == 0]
    # fail x rule, fail x judge, refuse x judge, logged x judge.
    assert len(zero) == 4 and all(e["rate"] is None for e in zero)


def test_draws_per_prefix_are_clustered_and_the_tail_is_refused_without_spread(
    tmp_path: Path,
) -> None:
    import json

    from typer.testing import CliRunner

    from deploysim.cli import app

    path = tmp_path / "s.db"
    with Store(path) as st:
        ingest_file(HH, st)
        create_sample(st, "default", SamplingSpec(size=20, seed=3))
        # A scripted model answers a prefix the same way every time: its 3 draws of a prefix
        # are perfectly correlated, so they are worth one draw, not three.
        run_replay(st, ReplaySpec(model="scripted/refuse?rate=0.5"), draws=3)
        run_grading(st, [("rule/refusal", get_grader("rule/refusal"))])
        (row,) = [e for e in estimate(st) if e.model != LOGGED]
    assert (row.n, row.prefixes) == (60, 20) and 0 < row.k < 60
    assert row.design_effect is not None and row.design_effect >= 2.5
    result = CliRunner().invoke(app, ["estimate", "--store", str(path), "--tail", "--json"])
    assert result.exit_code == 0, result.output
    (tail,) = [t for t in json.loads(result.stdout)["tail"] if t["model"] != LOGGED]
    # Every flagged prefix is flagged 3 of 3 times: the top scores tie, no tail to fit.
    assert tail["risk"] is None and tail["refused"]
    assert tail["draws"] == 60 and tail["prefixes"] == 20
    logged = [t for t in json.loads(result.stdout)["tail"] if t["model"] == LOGGED]
    assert logged and logged[0]["refused"].startswith("one draw per prefix")


def test_a_validation_at_another_threshold_is_not_applied(tmp_path: Path) -> None:
    st = Store(tmp_path / "s.db")
    ingest_file(HH, st)
    create_sample(st, "default", SamplingSpec(size=20, seed=3))
    spec = "judge/REFUSAL?judge=scripted/yes%3Fp%3D0.8"  # its own threshold is 0.5
    run_grading(st, [(spec, get_grader(spec))], replays=False)
    (path,) = resolve_labels("pyrit:refusal_scorer/refusal.csv")
    metrics = validate(get_grader(spec), read_labels(path)[:40], threshold=0.9)
    store_validation(st, metrics, path, spec)
    (row,) = estimate(st)
    assert row.corrected_rate is None and row.judge_se is None
    assert row.correction_note is not None and "threshold 0.9" in row.correction_note
