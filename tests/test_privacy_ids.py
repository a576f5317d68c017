"""Identifiers after their cue, in lists under a cue, and what is no identifier (deid-11).
The codes are invented."""

from __future__ import annotations

import pytest

from deploysim.privacy.detector import Detector


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector()


def _ids(detector: Detector, text: str) -> list[str]:
    return [text[d.start : d.end] for d in detector.detect(text) if d.entity_type == "ACCOUNT_ID"]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Your reservation ID is **Q7RTZP**. Anything else?", "Q7RTZP"),
        ("- **Reservation ID:** HVLQNW\n- **Cabin:** economy", "HVLQNW"),
        ("I found your booking with the ID **K2M9XB** for Friday.", "K2M9XB"),
        ("Your current reservation (ID: K2M9XB) is one-way.", "K2M9XB"),
        ('Please change the flight on reservation "K2M9XB".', "K2M9XB"),
    ],
)
def test_codes_after_their_cue(detector: Detector, text: str, code: str) -> None:
    assert code in _ids(detector, text), text


def test_codes_listed_under_a_cue(detector: Detector) -> None:
    text = (
        "Here are your reservation IDs:\n\n1. Q7RTZP\n2. **HVLQNW**\n- K2M9XB\n\nWhich one?\n"
        "Reservations to cancel**: Q7RTZP, HVLQNW"
    )
    rule = next(r for r in detector.rules if r.name == "id_list")
    found = [text[d.start : d.end] for d in rule.find(text)]
    assert sorted(found) == sorted(["Q7RTZP", "HVLQNW", "K2M9XB", "Q7RTZP", "HVLQNW"]), found
    # Each is replaced, whatever type the merge keeps.
    spans = [(d.start, d.end) for d in detector.detect(text)]
    for code in ("Q7RTZP", "HVLQNW", "K2M9XB"):
        at = [i for i in range(len(text)) if text.startswith(code, i)]
        assert all(any(s <= i < e for s, e in spans) for i in at), code


@pytest.mark.parametrize(
    "text",
    [
        "Order status: PENDING",
        "Here are the ticket types:\n- GENERAL\n- PREMIUM\n",
        "The account ID is not shown on this page.",
        "Error code: PYTHON is not a valid interpreter name.",
    ],
)
def test_words_in_capitals_are_no_codes(detector: Detector, text: str) -> None:
    assert _ids(detector, text) == [], text
