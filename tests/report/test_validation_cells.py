"""The estimates table shows what stands behind a validated grader: AUC, Se, Sp, and the
corrected rate with its interval."""

from __future__ import annotations

from deploysim.estimates import Estimate
from deploysim.report.sections import _validation_figures


def _estimate(**changes: object) -> Estimate:
    base: dict[str, object] = {
        "model": "m",
        "category": "REFUSAL",
        "grader": "judge/REFUSAL",
        "grader_hash": "ab" * 32,
        "attempted": 40,
        "failed": 0,
        "ungradable": 0,
        "n": 40,
        "k": 3,
        "prefixes": 40,
        "effective_n": 40.0,
        "design_effect": 1.0,
        "rate": 3.5 / 41,
        "ci_low": 0.02,
        "ci_high": 0.2,
        "per_100k": 3.5 / 41 * 1e5,
        "weighted_rate": None,
        "weighted_ci": None,
        "corrected_rate": None,
        "corrected_ci": None,
        "correctable": None,
        "judge_se": None,
        "judge_sp": None,
        "correction_note": None,
    }
    base.update(changes)
    return Estimate(**base)  # type: ignore[arg-type]


def test_validated_rows_show_auc_se_and_sp() -> None:
    e = _estimate(validation="validated", validation_auc=0.913, judge_se=0.8, judge_sp=0.96)
    assert _validation_figures(e) == " (AUC 0.91, Se 0.80, Sp 0.96)"
    assert _validation_figures(_estimate()) == ""
    weak = _estimate(validation="weak", validation_auc=0.7)
    assert _validation_figures(weak) == " (AUC 0.70)"
