"""Graders: the taxonomy, judge graders, rule graders, and the auditor.

Grader specs (stored with every grade, via the grader's definition hash):

- ``judge/<CODE>?judge=<model spec>&threshold=0.5&cot=1&scoring=auto``: a judge model answering
  the category's question (``<CODE>`` from the taxonomy, e.g. ``S``, ``K_NV``, ``REFUSAL``).
  The judge's own model spec, when it has options, is percent-encoded, or given once for all
  judges with ``default_judge``.
- ``rule/refusal``, ``rule/profanity``, ``rule/tool-claims``: rule graders.
- ``auditor?judge=<model spec>``: the open-ended misalignment auditor (feeds discovery).
"""

from __future__ import annotations

from pathlib import Path
from typing import cast, get_args
from urllib.parse import parse_qsl

from deploysim.errors import UsageError
from deploysim.graders.base import GradeItem, Grader, GradeResult
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
    head, _, query = spec.partition("?")
    options = dict(parse_qsl(query, keep_blank_values=True))
    kind, _, name = head.partition("/")
    if kind == "rule":
        if name not in RULES:
            raise UsageError(f"unknown rule grader {name!r}; choose one of: {', '.join(RULES)}")
        if name == "profanity":
            return ProfanityRule(threshold=float(options.get("threshold", 0.5)))
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
        return JudgeGrader(
            category,
            judge,
            threshold=float(options.get("threshold", 0.5)),
            cot=options.get("cot", "1") not in ("0", "false", "no"),
            scoring=_scoring(options.get("scoring", "auto")),
        )
    raise UsageError(f"unknown grader spec {spec!r}; use judge/<CODE>, rule/<name> or auditor")


def _scoring(value: str) -> Scoring:
    for allowed in get_args(Scoring):
        if value == allowed:
            return cast(Scoring, allowed)
    raise UsageError(f"scoring must be auto, logprobs or structured, not {value!r}")
