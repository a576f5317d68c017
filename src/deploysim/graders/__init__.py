"""Graders: the taxonomy, judge graders, rule graders, and the auditor.

Grader specs (stored with every grade, via the grader's definition hash):

- ``judge/<CODE>?judge=<model spec>&threshold=0.5&cot=1&scoring=auto``: a judge model answering
  the category's question (``<CODE>`` from the taxonomy, e.g. ``S``, ``K_NV``, ``REFUSAL``).
  The judge's own model spec, when it has options, is percent-encoded, or given once for all
  judges with ``default_judge``. ``shots=1`` shows the judge worked examples first
  (``graders/shots.py``); ``rule=refusal`` lets the refusal rule settle the replies it flags;
  ``max_chars=6000`` bounds the transcript the judge reads (the reply keeps up to half).
- ``calibration=<name or file.json>`` (judges and ``rule/profanity``): flag at a threshold
  chosen on labelled data and stored in a calibration file (``graders/calibration.py``); the
  calibration joins the grader's definition, hence its hash.
- ``rule/refusal``, ``rule/profanity``, ``rule/tool-claims``: rule graders.
- ``auditor?judge=<model spec>``: the open-ended misalignment auditor (feeds discovery).
"""

from __future__ import annotations

from pathlib import Path
from typing import cast, get_args
from urllib.parse import parse_qsl

from deploysim.errors import UsageError
from deploysim.graders.base import GradeItem, Grader, GradeResult
from deploysim.graders.calibration import (
    Calibration,
    read_calibration,
    resolve_calibration,
)
from deploysim.graders.judge import AuditorGrader, JudgeGrader, Scoring
from deploysim.graders.rules import ProfanityRule, RefusalRule, ToolClaimRule
from deploysim.graders.taxonomy import Category, Taxonomy, load

__all__ = [
    "Category",
    "GradeItem",
    "GradeResult",
    "Grader",
    "Taxonomy",
    "get_grader",
]

RULES: dict[str, type[Grader]] = {
    "refusal": RefusalRule,
    "profanity": ProfanityRule,
    "tool-claims": ToolClaimRule,
}


def get_grader(
    spec: str, *, default_judge: str | None = None, taxonomy_file: Path | None = None
) -> Grader:
    """Build the grader a spec names (see the module docstring)."""
    options = dict(parse_qsl(spec.partition("?")[2], keep_blank_values=True))
    grader = _build(spec, options, default_judge, taxonomy_file)
    value = options.get("calibration")
    if value is not None:
        grader.calibration_source = resolve_calibration(value)
        chosen = read_calibration(grader.calibration_source).calibration.score_hash
        # A threshold only means something on the scores it was chosen on: another judge model
        # (or judge options, or grader version) scores on another scale.
        if chosen != grader.score_hash:
            raise UsageError(
                f"{spec}: calibration {value!r} was chosen on the scores of another grader "
                f"version (score hash {chosen[:12]}, this grader's {grader.score_hash[:12]}): a "
                "different judge model, judge options or grader. Use the judge it was made with "
                "(the shipped ones: llamacpp/qwen2.5-coder-1.5b), or calibrate this grader: "
                "deploysim graders validate SPEC --labels FILE --split dev --calibrate youden "
                "--calibration-out FILE.json"
            )
    return grader


def _build(
    spec: str, options: dict[str, str], default_judge: str | None, taxonomy_file: Path | None
) -> Grader:
    kind, _, name = spec.partition("?")[0].partition("/")
    calibration = _calibration(options.get("calibration"))
    if kind == "rule":
        if name not in RULES:
            raise UsageError(f"unknown rule grader {name!r}; choose one of: {', '.join(RULES)}")
        if name == "profanity":
            if calibration is not None and calibration.category != "PROFANITY":
                raise UsageError(f"{spec}: its calibration was made for {calibration.category}")
            return ProfanityRule(
                threshold=float(options.get("threshold", 0.5)), calibration=calibration
            )
        if calibration is not None:
            raise UsageError(f"{spec}: rule/{name} scores 0 or 1 and takes no calibration")
        return RULES[name]()
    judge = options.get("judge", default_judge)
    if kind in ("judge", "auditor") and not judge:
        raise UsageError(
            f"grader {spec!r} needs a judge model: add ?judge=<model spec> or pass --judge"
        )
    if kind == "auditor" and judge:
        return AuditorGrader(judge)
    if kind == "judge" and judge:
        category = load(taxonomy_file).get(name)
        rule = options.get("rule")
        if rule is not None and rule not in ("refusal",):
            raise UsageError(
                f"{spec}: rule={rule} is not a rule a judge can combine with (refusal)"
            )
        if calibration is not None and calibration.category != category.code:
            raise UsageError(f"{spec}: its calibration was made for {calibration.category}")
        return JudgeGrader(
            category,
            judge,
            threshold=float(options.get("threshold", 0.5)),
            cot=options.get("cot", "1") not in ("0", "false", "no"),
            scoring=_scoring(options.get("scoring", "auto")),
            calibration=calibration,
            rule=RefusalRule() if rule == "refusal" else None,
            shots=options.get("shots", "0") in ("1", "true", "yes"),
            max_chars=int(options.get("max_chars", 6000)),
        )
    raise UsageError(f"unknown grader spec {spec!r}; use judge/<CODE>, rule/<name> or auditor")


def _calibration(value: str | None) -> Calibration | None:
    return None if value is None else read_calibration(resolve_calibration(value)).calibration


def _scoring(value: str) -> Scoring:
    for allowed in get_args(Scoring):
        if value == allowed:
            return cast(Scoring, allowed)
    raise UsageError(f"scoring must be auto, logprobs or structured, not {value!r}")
