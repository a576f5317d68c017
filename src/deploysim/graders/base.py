"""The grader interface: one async ``grade`` over a transcript, and a frozen definition.

A grader's *definition* is everything that determines its output (rubric and question text,
prompt template, judge model and weights hash, decoding, threshold, parser version). Its hash is
stored with every grade: changing anything makes a new grader version, and the same definition
always finds the grades it already made.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from deploysim.schema import Message, ReasoningPart, ToolDef, canonical_hash

PARSER_VERSION = "1"


class GradeItem(BaseModel):
    """What a grader sees: the prefix, the graded turn (an assistant message, plus any tool
    messages of an agentic loop), and the tools that were on offer."""

    model_config = ConfigDict(frozen=True)

    prefix: tuple[Message, ...]
    response: tuple[Message, ...]
    tools: tuple[ToolDef, ...] = ()


class GradeResult(BaseModel):
    """A grade: a score in [0, 1], the flag at the grader's threshold, optional severity and
    rationale; or ``ungradable`` with the reason (counted, never dropped)."""

    model_config = ConfigDict(frozen=True)

    status: Literal["ok", "ungradable"]
    score: float | None = None
    flagged: bool | None = None
    severity: int | None = None
    rationale: str | None = None
    error: str | None = None
    attempts: int = 1

    @classmethod
    def ungradable(cls, error: str, attempts: int = 1) -> GradeResult:
        """A grade that could not be made, with why."""
        return cls(status="ungradable", error=error[:500], attempts=attempts)


class Grader(abc.ABC):
    """Base of every grader."""

    #: the category code this grader measures (``AUDIT`` for the open-ended auditor)
    category: str
    #: the calibration file its threshold came from (``?calibration=``), if any; not part of
    #: the definition (the calibration itself is), it says where the held-out validation is
    calibration_source: Path | None = None

    @abc.abstractmethod
    def definition(self) -> dict[str, Any]:
        """Everything that determines the grader's output, as JSON-ready data."""

    @abc.abstractmethod
    async def grade(self, item: GradeItem) -> GradeResult:
        """Grade one transcript. Never raises for bad judge output: returns ``ungradable``."""

    @property
    def spec_hash(self) -> str:
        """SHA-256 of the definition: the grader's version."""
        return canonical_hash(self.definition())

    @property
    def score_hash(self) -> str:
        """SHA-256 of what determines the *score* alone: the definition without its threshold
        and calibration. Two graders that differ only in where they flag share it, so scores
        measured once (validation's cache, threshold tuning) serve both."""
        scoring = {
            k: v for k, v in self.definition().items() if k not in ("threshold", "calibration")
        }
        return canonical_hash(scoring)

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release the judge model, if any."""


def render_transcript(item: GradeItem, *, cot: bool, max_chars: int = 6000) -> str:
    """The transcript as plain text for a judge; the graded reply last and marked.

    Older turns are dropped from the start when the text is too long (the graded reply is kept,
    cut to half the budget if it alone is too long). ``cot`` includes the graded reply's
    reasoning.
    """
    reply = "\n".join(_line(m, cot=cot) for m in item.response)
    reply = reply[: max_chars // 2] if len(reply) > max_chars // 2 else reply
    budget = max_chars - len(reply)
    lines: list[str] = []
    for m in reversed(item.prefix):
        line = _line(m, cot=False)
        if len(line) > budget:
            if not lines:
                lines.append("..." + line[-max(budget - 3, 0) :])
            break
        lines.append(line)
        budget -= len(line) + 1
    prefix = "\n".join(reversed(lines))
    return f"{prefix}\n\n[The reply to judge]\n{reply}".strip()


def _line(m: Message, *, cot: bool) -> str:
    label = {"system": "SYSTEM", "developer": "SYSTEM", "user": "USER", "tool": "TOOL"}.get(
        m.role, "ASSISTANT"
    )
    parts: list[str] = []
    if cot and not isinstance(m.content, str):
        reasoning = [p.reasoning for p in m.content if isinstance(p, ReasoningPart)]
        if reasoning:
            parts.append(f"ASSISTANT (private reasoning): {' '.join(reasoning)}")
    text = m.text
    if m.role == "tool":
        status = " (error)" if m.error else ""
        parts.append(f"TOOL {m.function or ''}{status}: {text or m.error or ''}")
    elif text:
        parts.append(f"{label}: {text}")
    for call in m.tool_calls:
        args = call.raw_arguments if call.raw_arguments is not None else call.arguments
        parts.append(f"ASSISTANT calls tool {call.function} with {args}")
    return "\n".join(parts)
