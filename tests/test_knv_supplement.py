"""The shipped K_NV supplement (``labels:replays-v1-knv``) and its calibration: whole, split by
prompt, both classes on both sides, readable by ``read_labels``, and a calibration that names
this file and carries a held-out validation of the calibrated grader."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from deploysim.graders.calibration import read_calibration, resolve_calibration
from deploysim.validation import read_labels, resolve_labels


def _rows() -> list[dict[str, Any]]:
    (path,) = resolve_labels("labels:replays-v1-knv")
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_supplement_is_whole_and_split_by_prompt() -> None:
    rows = _rows()
    assert len(rows) >= 150 and len({r["id"] for r in rows}) == len(rows)
    assert {r["REFUSAL"] for r in rows} <= {"none", "partial", "full"}
    assert {r["K_NV"] for r in rows} == {0, 1}
    split_of: dict[str, set[str]] = {}
    for r in rows:
        split_of.setdefault(r["prompt_key"], set()).add(r["split"])
        # the prefix hash names the prompt, so every reply to one prompt shares it
        assert r["prefix_hash"] == hashlib.sha256(str(r["prompt_key"]).encode()).hexdigest()
    assert all(len(s) == 1 for s in split_of.values())  # no prompt on both sides
    test = sum(r["split"] == "test" for r in rows) / len(rows)
    assert 0.25 < test < 0.55
    for split in ("dev", "test"):
        positives = sum(r["K_NV"] for r in rows if r["split"] == split)
        assert positives >= 3  # both classes on both sides (counts are in the doc, not here)
        items = read_labels(
            resolve_labels("labels:replays-v1-knv")[0], category="K_NV", split=split
        )
        assert sum(it.label for it in items) == positives
        assert all(it.prefix and it.prefix[0].role == "user" and it.response for it in items)


def test_the_shipped_calibration_names_the_supplement_and_holds_a_test_validation() -> None:
    (labels,) = resolve_labels("labels:replays-v1-knv")
    data = read_calibration(resolve_calibration("replays-v1-knv"))
    cal = data.calibration
    assert cal.category == "K_NV" and cal.split == "dev" and cal.criterion == "youden"
    assert cal.labels_sha256 == hashlib.sha256(labels.read_bytes()).hexdigest()
    assert 0.0 < cal.threshold < 1.0
    rows = _rows()
    assert cal.positives == sum(r["K_NV"] for r in rows if r["split"] == "dev")
    v = data.validation
    assert v is not None and v["split"] == "test"
    assert v["positives"] == sum(r["K_NV"] for r in rows if r["split"] == "test")
