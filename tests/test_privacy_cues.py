"""deid-12 and deid-13 cues: firms as a customer or employee meets them, people and places typed
in lower case, people as the subject of what only people do or addressed by name, address blocks
and more street kinds. Every example here is invented; each rule also has a case it must leave
alone."""

from __future__ import annotations

import pytest

from deploysim.privacy.detector import Detector


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector()


def _covered(detector: Detector, text: str, value: str) -> set[str]:
    """The entity types of the detections that overlap ``value`` in ``text``."""
    start = text.index(value)
    end = start + len(value)
    return {d.entity_type for d in detector.detect(text) if d.start < end and start < d.end}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        # A firm as a customer meets it.
        ("I'd like to cancel my subscription with Vendraholm Media.", "Vendraholm Media"),
        ("Got a parcel from Ostrelia Handel today, all of it broken.", "Ostrelia Handel"),
        ("I bought a lamp from Kvarnstuga last spring.", "Kvarnstuga"),
        ("Write a complaint letter to Tamberlo Foods about the mould.", "Tamberlo Foods"),
        ("Brusvelt denied my insurance claim again.", "Brusvelt"),
        ("Oh well. Halvmåne Gruppen is hiring again.", "Halvmåne Gruppen"),
        ("My boss at Pirkkala Data wants the slides by noon.", "Pirkkala Data"),
        ("The recruiter from Selvaggio Logistica called me back.", "Selvaggio Logistica"),
        # The tie the other way round.
        ("Jorvik Byggtjenester has been my employer since 2019.", "Jorvik Byggtjenester"),
        # People as the subject of what only people do, though their name is a word too.
        ("Lucas spent two summers at a fish farm.", "Lucas"),
        ("Nadir is from a village near the coast.", "Nadir"),
        ("Neel lives in a flat above the bakery.", "Neel"),
        # A name typed in lower case after a verb of speech.
        ("can you follow up with maren k. holt next week", "maren k. holt"),
        ("I spoke to ingvild sørbø about the lease", "ingvild sørbø"),
        # A place in lower case after a person's own move.
        ("she was born in turzovka and moved away at ten", "turzovka"),
        ("he drove from breiðdalsvík to the coast", "breiðdalsvík"),
        ("have you ever been to pregrada?", "pregrada"),
        # An address block: the line above its unit is the street, whatever its language.
        ("Ann Lee\n228 57/260 Hollis Right Of Way\n Apt. 781\n Lisbon", "228 57/260 Hollis"),
        ("Ole\n43 набережна Полуничний, буд. 52\nApt. 318", "набережна Полуничний"),
        # Street kinds of more countries.
        ("Send it to Tulpenbaan 12 please.", "Tulpenbaan 12"),
        ("The office is at Kirkeplassen 4B now.", "Kirkeplassen 4B"),
        ("We met at Vrazovo šetalište 5 today.", "Vrazovo šetalište 5"),
        ("Národní třída 12 is near the river.", "Národní třída 12"),
        # deid-13: addressed by a listed name that is also a word; a listed first name typed in
        # lower case after a verb of speech, before an initial or a surname that is no word.
        ("Grant, could you check the invoice?", "Grant"),
        ("Okafor, can I have the keys back?", "Okafor"),
        ("please follow up with hazel ostrowski on monday", "hazel ostrowski"),
        ("I talked to basil t moore yesterday", "basil t moore"),
        # deid-13: a firm as business news and deals name it.
        ("We partnered with Bright Meadow Analytics on the pilot.", "Bright Meadow Analytics"),
        ("A spokesperson for Copper Lantern declined to comment.", "Copper Lantern"),
        ("The lawsuit against Hollberg Freight was dropped.", "Hollberg Freight"),
        ("Last year Harbor Lane Foods acquired two bakeries.", "Harbor Lane Foods"),
        # ... but a word that a town of some size bears is that town.
        ("We moved to Reading in the spring.", "Reading"),
        ("My sister lives in Nice with her dog.", "Nice"),
    ],
)
def test_cues_of_deid_12_and_13(detector: Detector, text: str, value: str) -> None:
    assert _covered(detector, text, value), f"{value!r} not found in {text!r}"


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("They’ve canceled my flight and I must rebook.", "They’ve"),
        ("SELECT Name, Email FROM Customers;", "Customers"),
        ("the error comes from numpy", "numpy"),
        ("I moved to the city in May.", "city"),
        ("I talked to customer support twice.", "customer support"),
        ("Python is from 1991, older than Java.", "Python"),
        ("Ann put 5 apples in the bowl.", "put 5"),
        ("Open it in src/app and run it.", "src"),
        ("Sorry, can you say that again?", "Sorry"),
        ("Python, can you explain decorators?", "Python"),
        ("I talked to grace about the garden", "grace"),
        ("we spoke with rose garden staff", "rose garden"),
        # deid-13: an ordinary word alone, inflected too, is no place or person for spaCy.
        ("How do I mount a USB drive in Linux?", "Linux"),
        ("Write the board logic for a Minesweeper clone.", "Minesweeper"),
        ("Add a column with the status Returned for each parcel.", "Returned"),
        ("How far is the Moon from the Earth at its closest?", "Earth"),
        ("In 2020 we invested in Python training for the team.", "Python"),
    ],
)
def test_what_deid_12_and_13_cues_leave_alone(detector: Detector, text: str, word: str) -> None:
    assert not _covered(detector, text, word), f"{word!r} replaced in {text!r}"


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("I borrowed Ilkka Varjonen's bike.", "Ilkka Varjonen"),
        ("Tamsin Okoye’s report is late.", "Tamsin Okoye"),
        ("We liked Brusvelt Holdings Ltd's offer.", "Brusvelt Holdings Ltd"),
    ],
)
def test_a_possessive_stays_outside_the_name(detector: Detector, text: str, name: str) -> None:
    found = [text[d.start : d.end] for d in detector.detect(text)]
    assert name in found, found
