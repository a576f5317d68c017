"""Evaluation of PII detection on span-labelled texts (the presidio-research JSON format).

A labelled span counts as *found* when any detection overlaps it, whatever its type (for
de-identification what matters is that the characters get replaced). Precision is measured on
characters: the share of detected characters that lie inside some labelled span. F2 weighs recall
four times as much as precision. Per entity type, recall is over the labelled spans of that type
and precision over the detections mapped to that type (``LOCATION`` is the dataset's ``GPE``,
``URL`` its ``DOMAIN_NAME``, ``DATE_OF_BIRTH`` its ``DATE_TIME``).

Presidio's default analyzer (its default recognizers and the same spaCy model, full pipeline) runs
on the same texts for comparison, with its e-mail recognizer swapped for the offline one.

Development and test parts (:func:`part_of`): a record whose ``template_id`` is even belongs to the
development part, odd to the test part; a record without ``template_id`` goes by its 0-based index
in the file instead. Splitting by template keeps every sentence shape of the test part out of the
development part, so rules tuned on development sentences cannot fit test sentences by their shape.
Tune only on ``dev``; report ``test``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from deploysim.errors import InputError
from deploysim.privacy.detector import SPACY_MODEL, Detector, OfflineEmailRecognizer
from deploysim.privacy.rules import Detection

Part = Literal["all", "dev", "test"]
"""Which records of a labelled file to use (see :func:`part_of`)."""

TYPE_MAP = {"LOCATION": "GPE", "URL": "DOMAIN_NAME", "DATE_OF_BIRTH": "DATE_TIME"}
"""Detection types renamed to the dataset's labels."""


@dataclass(frozen=True)
class Span:
    """A labelled entity: ``text[start:end]``."""

    start: int
    end: int
    entity_type: str


@dataclass(frozen=True)
class LabelledText:
    """One text with its labelled spans."""

    text: str
    spans: tuple[Span, ...]
    part: Literal["dev", "test"] = "dev"


@dataclass
class SystemScore:
    """Counts for one system: spans found per type, detected characters per type."""

    spans: dict[str, int] = field(default_factory=dict)
    found: dict[str, int] = field(default_factory=dict)
    chars: dict[str, int] = field(default_factory=dict)
    good_chars: dict[str, int] = field(default_factory=dict)

    def recall(self, etype: str | None = None) -> float:
        """Share of labelled spans (of ``etype``, or all) overlapped by a detection."""
        n = self.spans.get(etype, 0) if etype else sum(self.spans.values())
        k = self.found.get(etype, 0) if etype else sum(self.found.values())
        return k / n if n else 0.0

    def precision(self, etype: str | None = None) -> float:
        """Share of detected characters (of detections typed ``etype``, or all) inside a label."""
        n = self.chars.get(etype, 0) if etype else sum(self.chars.values())
        k = self.good_chars.get(etype, 0) if etype else sum(self.good_chars.values())
        return k / n if n else 0.0

    def f2(self, etype: str | None = None) -> float:
        """F-beta with beta = 2."""
        p, r = self.precision(etype), self.recall(etype)
        return 5 * p * r / (4 * p + r) if p + r else 0.0

    def add(self, item: LabelledText, dets: Sequence[Detection]) -> None:
        """Score the detections of one text."""
        labelled = [False] * len(item.text)
        for s in item.spans:
            labelled[s.start : s.end] = [True] * (s.end - s.start)
            self.spans[s.entity_type] = self.spans.get(s.entity_type, 0) + 1
            if any(d.start < s.end and s.start < d.end for d in dets):
                self.found[s.entity_type] = self.found.get(s.entity_type, 0) + 1
        seen = [False] * len(item.text)  # overlapping detections count each character once
        for d in dets:
            etype = TYPE_MAP.get(d.entity_type, d.entity_type)
            new = [i for i in range(d.start, d.end) if not seen[i]]
            for i in new:
                seen[i] = True
            self.chars[etype] = self.chars.get(etype, 0) + len(new)
            good = sum(labelled[i] for i in new)
            self.good_chars[etype] = self.good_chars.get(etype, 0) + good

    def as_dict(self) -> dict[str, Any]:
        """Totals and per-type figures as JSON-ready data."""
        types = sorted(set(self.spans) | set(self.chars))
        return {
            "recall": self.recall(),
            "char_precision": self.precision(),
            "f2": self.f2(),
            "per_entity": {
                t: {
                    "spans": self.spans.get(t, 0),
                    "recall": self.recall(t) if t in self.spans else None,
                    "precision": self.precision(t) if t in self.chars else None,
                    "f2": self.f2(t) if t in self.spans and t in self.chars else None,
                }
                for t in types
            },
        }


def part_of(index: int, template_id: object) -> Literal["dev", "test"]:
    """The part a record belongs to: by the parity of its integer ``template_id`` when it has
    one (even: ``dev``, odd: ``test``), else by the parity of its 0-based ``index``."""
    key = (
        template_id if isinstance(template_id, int) and not isinstance(template_id, bool) else index
    )
    return "test" if key % 2 else "dev"


def load_labelled(path: Path, limit: int | None = None, part: Part = "all") -> list[LabelledText]:
    """Texts and spans from a presidio-research JSON file (``full_text`` and ``spans``), the
    records of ``part`` only (:func:`part_of`); ``limit`` counts records of the file before the
    part is selected."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: cannot read labelled data ({e})") from None
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a JSON array of {{full_text, spans}} records")
    out = []
    for i, rec in enumerate(data[:limit] if limit is not None else data):
        try:
            spans = tuple(
                Span(int(s["start_position"]), int(s["end_position"]), str(s["entity_type"]))
                for s in rec["spans"]
            )
            where = part_of(i, rec.get("template_id"))
            out.append(LabelledText(str(rec["full_text"]), spans, where))
        except (AttributeError, KeyError, TypeError, ValueError) as e:
            raise InputError(f"{path}: record {i + 1} is not a labelled text ({e})") from None
    return [it for it in out if part in ("all", it.part)]


def presidio_default_analyzer(model: str = SPACY_MODEL) -> Any:
    """Presidio's default ``AnalyzerEngine`` on the given spaCy model, kept offline."""
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    nlp_conf = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model}]}
    engine = AnalyzerEngine(
        nlp_engine=NlpEngineProvider(nlp_configuration=nlp_conf).create_engine()
    )
    engine.registry.remove_recognizer("EmailRecognizer")
    engine.registry.add_recognizer(OfflineEmailRecognizer())
    return engine


def presidio_detect(engine: Any, texts: Sequence[str]) -> list[list[Detection]]:
    """Presidio's results, one text at a time (its default use), as detections."""
    return [
        [
            Detection(r.start, r.end, r.entity_type, r.score, "presidio")
            for r in engine.analyze(text, language="en")
        ]
        for text in texts
    ]


def evaluate(items: Sequence[LabelledText], dets: Sequence[Sequence[Detection]]) -> SystemScore:
    """Score one system's detections on the labelled texts."""
    score = SystemScore()
    for item, found in zip(items, dets, strict=True):
        score.add(item, found)
    return score


def leaked_values(items: Sequence[LabelledText], outputs: Sequence[str]) -> list[tuple[str, str]]:
    """``(type, value)`` of labelled raw values that still occur, as whole words, in the output
    produced from their own text."""
    leaks = []
    for item, out in zip(items, outputs, strict=True):
        for s in item.spans:
            value = item.text[s.start : s.end].strip()
            if value and re.search(rf"(?<!\w){re.escape(value)}(?!\w)", out):
                leaks.append((s.entity_type, value))
    return leaks


def measure(items: Sequence[LabelledText], detector: Detector, presidio: Any) -> dict[str, Any]:
    """deploysim's and Presidio's detection scores on ``items``, and the labelled values that
    de-identification leaves in place (by type): what ``deploysim privacy eval`` reports."""
    from deploysim.privacy.deid import DEID_VERSION, Deidentifier
    from deploysim.schema import Conversation, Message

    texts = [it.text for it in items]
    ours = evaluate(items, detector.detect_many(texts))
    theirs = evaluate(items, presidio_detect(presidio, texts))
    convs = [Conversation(messages=(Message(role="user", content=t),)) for t in texts]
    deid = Deidentifier(key=b"privacy-eval", detector=detector).deidentify_many(convs)
    outputs = [r.conversation.messages[0].text if r.conversation else "" for r in deid]
    leaks = leaked_values(items, outputs)
    by_type: dict[str, int] = {}
    for etype, _ in leaks:
        by_type[etype] = by_type.get(etype, 0) + 1
    return {
        "texts": len(items),
        "spans": sum(len(it.spans) for it in items),
        "deid_version": DEID_VERSION,
        "systems": {"deploysim": ours.as_dict(), "presidio_default": theirs.as_dict()},
        "leaks": {"total": len(leaks), "per_entity": dict(sorted(by_type.items()))},
    }
