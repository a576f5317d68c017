"""Public organisations and places (``privacy/public.py``): kept where nothing personal is said."""

from __future__ import annotations

import pytest

from deploysim.privacy import Deidentifier
from deploysim.privacy.detector import Detector
from deploysim.privacy.public import is_public, public_spans
from deploysim.privacy.rules import Detection
from deploysim.schema import Conversation, Message


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector()


def _types(detector: Detector, text: str) -> dict[str, str]:
    return {text[d.start : d.end]: d.entity_type for d in detector.detect(text)}


def test_public_knowledge_from_word_frequencies(detector: Detector) -> None:
    common = detector.is_common
    assert is_public("Lisbon", "LOCATION", common)
    assert is_public("Norway", "LOCATION", common)  # a country, also by the place list
    assert is_public("Spotify", "ORGANIZATION", common)
    # Coined names, people's names and registered small firms are not known to be public.
    assert not is_public("Quennelby", "LOCATION", common)
    assert not is_public("Trellisoft", "ORGANIZATION", common)
    assert not is_public("Okonkwo Partners", "ORGANIZATION", common)
    assert not is_public("Garcia Logistics", "ORGANIZATION", common)  # a census surname
    assert not is_public("Harbor Light", "ORGANIZATION", common)  # ordinary words only
    assert not is_public("Spotify Holdings LLC", "ORGANIZATION", common)
    # Nationalities, people and everything else are never dropped as public.
    assert not is_public("Norwegian", "NRP", common)
    assert not is_public("Lisbon", "PERSON", common)
    assert not is_public("lisbon@example.com", "EMAIL_ADDRESS", common)


def test_a_personal_sentence_keeps_the_detection(detector: Detector) -> None:
    text = "Dana Reyes flew to Lisbon last May. What should a first trip there include?"
    dets = detector.detect(text)
    assert "Lisbon" in {text[d.start : d.end] for d in dets}
    # public_spans drops only spaCy's own finds beside nothing personal.
    place = Detection(0, 6, "LOCATION", 0.7, "spacy")
    assert public_spans("Lisbon has many temples.", [place], detector.is_common) == []
    rule = Detection(0, 6, "LOCATION", 0.7, "place_after_movement")
    assert public_spans("Lisbon has many temples.", [rule], detector.is_common) == [rule]
    beside = [place, Detection(20, 30, "PERSON", 0.7, "spacy")]
    assert public_spans("Lisbon has temples; Dana Reyes", beside, detector.is_common) == beside


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Write a short guide to the temples of Lisbon for first-time visitors.", "Lisbon"),
        ("Draft five Spotify playlist names for a bakery that sells sourdough.", "Spotify"),
    ],
)
def test_public_names_without_personal_context_are_kept(
    detector: Detector, text: str, value: str
) -> None:
    assert value not in _types(detector, text)
    conv = Conversation(messages=(Message(role="user", content=text),))
    out = Deidentifier(key=b"k", detector=detector).deidentify(conv).conversation
    assert out is not None and value in out.messages[0].text


@pytest.mark.parametrize(
    "text",
    [
        "I live in Lisbon and need a dentist who speaks English.",
        "My company is moving its office to Lisbon next spring.",
        "Please send the parcel to Mirela Dobrev in Lisbon.",
    ],
)
def test_personal_context_replaces_public_places(detector: Detector, text: str) -> None:
    assert _types(detector, text).get("Lisbon") == "LOCATION"
    conv = Conversation(messages=(Message(role="user", content=text),))
    out = Deidentifier(key=b"k", detector=detector).deidentify(conv).conversation
    assert out is not None and "Lisbon" not in out.messages[0].text


def test_keep_public_off_restores_detection() -> None:
    text = "Write a short guide to the temples of Lisbon for first-time visitors."
    found = Detector(keep_public=False).detect(text)
    assert "Lisbon" in {text[d.start : d.end] for d in found}
