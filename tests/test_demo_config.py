"""The bundled demo config: every grader builds, ships its validation, and --categories keeps it."""

from __future__ import annotations

from deploysim.demo import demo_config
from deploysim.graders import get_grader
from deploysim.graders.calibration import read_calibration


def test_demo_graders_build_and_calibrated_ones_ship_a_held_out_validation() -> None:
    grade = demo_config().grade
    assert grade is not None and grade.judge
    for spec in grade.graders:
        grader = get_grader(spec, default_judge=grade.judge)
        source = getattr(grader, "calibration_source", None)
        if "calibration=" not in spec:
            continue
        assert source is not None, spec
        validation = read_calibration(source).validation
        # Validated on the split the threshold was not chosen on, for exactly this version.
        assert validation is not None and validation["grader_hash"] == grader.spec_hash, spec
        assert validation["split"] != read_calibration(source).calibration.split


def test_categories_keep_the_shipped_spec_and_add_others_at_the_same_transcript_size() -> None:
    shipped = demo_config().grade
    assert shipped is not None
    refusal = next(g for g in shipped.graders if g.startswith("judge/REFUSAL"))
    grade = demo_config(categories=["REFUSAL", "S"]).grade
    assert grade is not None
    assert grade.graders[:2] == [refusal, "judge/S?max_chars=1200"]
    assert all(g.startswith("rule/") for g in grade.graders[2:])
