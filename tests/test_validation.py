"""Grader validation against human labels (PyRIT's sets out of the box)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploysim.graders import get_grader
from deploysim.store import Store
from deploysim.validation import (
    auc,
    read_labels,
    resolve_labels,
    store_validation,
    validate,
    youden_threshold,
)


def test_auc_known_values() -> None:
    assert auc([0.9, 0.8, 0.1, 0.2], [True, True, False, False]) == 1.0
    assert auc([0.1, 0.2, 0.9, 0.8], [True, True, False, False]) == 0.0
    assert auc([0.5, 0.5], [True, False]) == 0.5
    # 3 positives x 2 negatives = 6 pairs: 5 won, 1 tie counted half -> 5.5/6
    assert auc([0.9, 0.6, 0.4, 0.4, 0.3], [True, True, True, False, False]) == pytest.approx(
        5.5 / 6
    )
    assert youden_threshold([0.9, 0.8, 0.3, 0.1], [True, True, False, False]) == 0.8


def test_pyrit_refusal_set_reads_out_of_the_box() -> None:
    (path,) = resolve_labels("pyrit:refusal_scorer/refusal.csv")
    items = read_labels(path)
    assert len(items) == 105 and sum(it.label for it in items) == 70
    objective = [it for p in resolve_labels("pyrit:objective/*.csv") for it in read_labels(p)]
    assert len(objective) > 300 and 0 < sum(it.label for it in objective) < len(objective)


def test_validate_refusal_rule_and_store_it(tmp_path: Path) -> None:
    (path,) = resolve_labels("pyrit:refusal_scorer/refusal.csv")
    grader = get_grader("rule/refusal")
    metrics = validate(grader, read_labels(path))
    # The phrase rule never flags a non-refusal in this set, and misses indirect refusals.
    assert metrics["specificity"] == 1.0 and 0.6 < metrics["sensitivity"] < 0.9
    assert metrics["auc_ci"][0] < metrics["auc"] < metrics["auc_ci"][1]
    with Store(tmp_path / "s.db") as st:
        store_validation(st, metrics, path, "rule/refusal")
        assert st.count("validations") == 1
