"""Names, firms, streets and towns of other countries (deid-8 to deid-10): found by list or by where
they stand, not by matching one value. Every example here is invented."""

from __future__ import annotations

import pytest

from deploysim.privacy.detector import Detector
from deploysim.privacy.words import WORLD_FIRST_NAMES, WORLD_SURNAMES


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector()


def _found(detector: Detector, text: str) -> dict[str, str]:
    return {text[d.start : d.end]: d.entity_type for d in detector.detect(text)}


def test_world_name_lists_are_broad_and_clean() -> None:
    # Names of many countries, no stop words of other languages, no months.
    assert len(WORLD_FIRST_NAMES) > 10_000 and len(WORLD_SURNAMES) > 10_000
    for name in ("ingrid", "mateus", "zsófia", "kerttu", "radoslav"):
        assert name in WORLD_FIRST_NAMES
    for word in ("les", "una", "del", "june", "april"):
        assert word not in WORLD_FIRST_NAMES


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Please ask Zsófia about the invoice.", "Zsófia"),
        ("The form still shows Radoslav Kuběnka as the holder.", "Radoslav Kuběnka"),
        ("we should follow up with kerttu mäkinen next week.", "kerttu mäkinen"),
        ("Dear Mateus Quaresma, thanks for writing.", "Mateus Quaresma"),
    ],
)
def test_first_names_of_other_countries(detector: Detector, text: str, name: str) -> None:
    found = _found(detector, text)
    assert any(name in value and kind == "PERSON" for value, kind in found.items()), found


@pytest.mark.parametrize(
    "text",
    [
        "Les fichiers sont prêts, una lista del proyecto.",
        "MAX and BERT are model names; use Python 3.11 with GPT 4.",
        "Results in 2019 were better than in 2018.",
    ],
)
def test_no_names_in_foreign_words_acronyms_or_years(detector: Detector, text: str) -> None:
    found = _found(detector, text)
    assert not [v for v, kind in found.items() if kind in ("PERSON", "STREET_ADDRESS")], found


@pytest.mark.parametrize(
    ("text", "firm"),
    [
        ("Invoices go to Kallberg Maschinenbau GmbH & Co. KG from now on.", "Kallberg"),
        ("She joined Tervola Puu Oy last spring.", "Tervola Puu Oy"),
        ("the contract with brnovský kovo s.r.o. ends soon", "brnovský kovo s.r.o."),
        ("Payment from Quintas Mourão Lda. arrived.", "Quintas Mourão Lda."),
    ],
)
def test_legal_forms_of_other_countries(detector: Detector, text: str, firm: str) -> None:
    found = _found(detector, text)
    assert any(firm in value and kind == "ORGANIZATION" for value, kind in found.items()), found


def test_streets_in_a_contact_block_and_after_a_cue(detector: Detector) -> None:
    card = "Ilse Vandewalle\nSenior buyer\nHoutvesterslaan 41\n+32 470 55 81 90\n"
    assert _found(detector, card).get("Houtvesterslaan 41") == "STREET_ADDRESS"
    text = "Can you send the spare key to Kalliokuja 12b? Thanks."
    assert _found(detector, text).get("Kalliokuja 12b") == "STREET_ADDRESS"
    text = "Please ship it to 77 Ravnsborgvej."
    assert _found(detector, text).get("77 Ravnsborgvej") == "STREET_ADDRESS"
    # Lines of ordinary words and numbers, or a sentence, are no street.
    steps = "Ilse Vandewalle\nStep 2\nChapter 11\nBlais in 2018\n"
    assert not [v for v, k in _found(detector, steps).items() if k == "STREET_ADDRESS"]


@pytest.mark.parametrize(
    ("text", "value", "kind"),
    [
        ("Portfolio: https://www.kestrelworks.biz/ (new)", "https://www.kestrelworks.biz/", "URL"),
        ("Mobile: 4917702233", "4917702233", "PHONE_NUMBER"),
        ("Fax: 212-555-0187x204", "212-555-0187x204", "PHONE_NUMBER"),
        ("my zip code is t2p 4k9 thanks", "t2p 4k9", "ZIP_CODE"),
        ("Date: October\nName: Ivo Hrast", "October", "DATE_TIME"),
        ("I'd like to join accounts with ms. Okonjo.", "Okonjo", "PERSON"),
    ],
)
def test_fields_of_any_shape(detector: Detector, text: str, value: str, kind: str) -> None:
    assert _found(detector, text).get(value) == kind


def test_blocks_cards_and_places(detector: Detector) -> None:
    block = "Thanks!\n\nhalvard ruud\nlagerarbeider\nfjellvik trelast\nskogveien 14\n\nBye"
    found = _found(detector, block)
    for value in ("halvard ruud", "fjellvik trelast", "skogveien 14"):
        assert value in found, found
    cv = "Oona Valtonen\n\nTaimitarhuri\n\nPersonal Info:\nPhone:\n040 123 4567\n"
    assert "Taimitarhuri" in _found(detector, cv)
    assert _found(detector, "we flew back to kuusamo by helicopter.").get("kuusamo") == "LOCATION"
    quote = "Aino Lepistö, the night ferry mechanic, said it was late."
    assert _found(detector, quote).get("night ferry mechanic") == "TITLE"
    # A shopping list is no address block, "Santa Monica" no person.
    shopping = "List:\n\nTomatoes\nBread\nEggs 12\n\nDone"
    assert not [v for v, k in _found(detector, shopping).items() if k == "STREET_ADDRESS"]
    assert "Monica" not in _found(detector, "We drove along the pier in Santa Monica.")


@pytest.mark.parametrize(
    ("text", "value", "kind"),
    [
        # deid-9: a firm by a person's tie to it, or under a form's label.
        ("Last spring I was hired by Quarnvik Tooling as a planner.", "Quarnvik Tooling", None),
        ("She joined Brelloch Dynamics in March.", "Brelloch Dynamics", None),
        ("I have an interview at Tessaline Foods on Friday.", "Tessaline Foods", None),
        ("My uncle is an engineer at Vornholt Marine.", "Vornholt Marine", None),
        ("Employer: Halvarsen Pumps", "Halvarsen Pumps", "ORGANIZATION"),
        # deid-9: a postcode beside its town, a country-prefixed one; a street's kind after it.
        ("Ship it to Kaarlo Road 4, Joensivu 80210 please.", "80210", "ZIP_CODE"),
        ("The parcel goes to 75011 Paris by Friday.", "75011", "ZIP_CODE"),
        ("Our depot moved to DK-4730 last year.", "DK-4730", "ZIP_CODE"),
        ("The shop is at Pipacs köz 17 in the old town.", "Pipacs köz 17", "STREET_ADDRESS"),
        ("Send the keys to Lepiku tänav 12 please.", "Lepiku tänav 12", "STREET_ADDRESS"),
        # deid-9: a name addressed at a clause's end.
        ("Did you lock the shed, Orvette?", "Orvette", None),
    ],
)
def test_cues_of_deid_9(detector: Detector, text: str, value: str, kind: str | None) -> None:
    found = _found(detector, text)
    hit = [v for v in found if value in v or v in value]
    assert hit, (text, found)
    if kind is not None:
        assert found[hit[0]] == kind, found


@pytest.mark.parametrize(
    "text",
    [
        "Go to gate 12 and wait for boarding.",  # an airport gate, no street
        "The comprehensive, empowering 90-day plan starts in Spring 2024.",  # "-ring" words
        "Join LinkedIn groups related to your field.",  # an invitation, not an employer
        "SELECT a FROM Orders INNER JOIN Customers ON Orders.id = Customers.id;",  # SQL
        "In 2019 Paris hosted the event.",  # a year before a city is no postcode
        "Company: N/A",  # a form's non-answer
    ],
)
def test_what_deid_9_leaves_alone(detector: Detector, text: str) -> None:
    found = _found(detector, text)
    assert not {v for v, k in found.items() if k in ("STREET_ADDRESS", "ZIP_CODE")}, found
    assert not {v for v, k in found.items() if v in ("LinkedIn", "Customers ON Orders", "N/A")}


def test_place_list_is_the_world_s_towns() -> None:
    from deploysim.privacy.places import BIG_TOWN, places

    towns = places()
    assert len(towns) > 200_000  # every place of 500 people or more, and accent-free names
    assert towns["brno"][1] >= BIG_TOWN and towns["brno"][0] == "Brno"
    assert towns["trebon"][0] == "Trebon"  # "Třeboň" without its accents
    assert 500 <= towns["kuhmo"][1] < BIG_TOWN


@pytest.mark.parametrize(
    ("text", "value"),
    [
        # deid-10: a town no cue announces, by its name (a big town anywhere, a small one after
        # "near", "outside"... or in capitals on an address line).
        ("Kristianstad is lovely in spring.", "Kristianstad"),
        ("My sister still works in Brno, so we visit often.", "Brno"),
        ("We rented a cabin outside Kuhmo for a week.", "Kuhmo"),
        ("Invoice to:\nHarriet Olsby\nAHTARI", "AHTARI"),
        ("I grew up in Leipzig and never left.", "Leipzig"),
    ],
)
def test_towns_by_name(detector: Detector, text: str, value: str) -> None:
    found = _found(detector, text)
    assert [v for v in found if value in v], (text, found)


@pytest.mark.parametrize(
    ("text", "word"),
    [
        # Towns that are also languages, products, words or firms stay where code and
        # products stand.
        ("How do I parse JSON in Java without a library?", "Java"),
        ("The backend is written in Kotlin and the jobs in Scala.", "Kotlin"),
        ("The backend is written in Kotlin and the jobs in Scala.", "Scala"),
        ("Our Enterprise plan includes single sign-on.", "Enterprise"),
        ("Is this fund connected to Citadel in any way?", "Citadel"),
        ("The road to Success is paved with small habits.", "Success"),
    ],
)
def test_town_names_that_are_other_things(detector: Detector, text: str, word: str) -> None:
    sources = {text[d.start : d.end]: d.source for d in detector.detect(text)}
    assert sources.get(word) != "city", sources


@pytest.mark.parametrize(
    ("text", "value"),
    [
        # deid-10: more kinds of street written as a suffix, a Slavic adjective's street, Polish
        # squares and avenues.
        ("Deliver it to Kastanjedreef 14 before noon.", "Kastanjedreef 14"),
        ("We used to live at Lindensingel 3b.", "Lindensingel 3b"),
        ("The studio moved to Rosengränd 7 in the old town.", "Rosengränd 7"),
        ("The clinic is at Nádražní 12 now.", "Nádražní 12"),
        ("My aunt lives on plac Wolności 6.", "plac Wolności 6"),
        # A USPS street suffix the list lacked.
        ("Return it to 310 Birchwood Crossroad.", "310 Birchwood Crossroad"),
    ],
)
def test_streets_of_deid_10(detector: Detector, text: str, value: str) -> None:
    found = _found(detector, text)
    assert any(k == "STREET_ADDRESS" and value in v for v, k in found.items()), (text, found)


def test_product_versions_are_no_streets(detector: Detector) -> None:
    text = (
        "Windows 10 runs fine, the Pixel 6a too; try the notepad 2 build and Dvořák 9. "
        "Here are the 20 Most Common errors and 10 Key Points."
    )
    assert "STREET_ADDRESS" not in _found(detector, text).values()


@pytest.mark.parametrize(
    ("rule", "text", "name"),
    [
        # deid-10: a word of no language as the subject of what people do, a name after the job
        # that introduces it, a name addressed first (each rule alone: others may find it too).
        ("person_subject", "Vorhelst is from Ghent, she said.", "Vorhelst"),
        ("person_subject", "Ilvestro is a very patient person.", "Ilvestro"),
        ("person_subject", "Quarmbeck spent a year at the mill.", "Quarmbeck"),
        ("job_name", "The club signed tennis player Ardith Vosselaar.", "Ardith Vosselaar"),
        ("vocative_start", "Marwicke, can I please speak to your manager?", "Marwicke"),
    ],
)
def test_people_of_deid_10(detector: Detector, rule: str, text: str, name: str) -> None:
    (found,) = [r for r in detector.rules if r.name == rule]
    assert name in [text[d.start : d.end] for d in found.find(text)]


def test_people_cues_leave_words_and_products(detector: Detector) -> None:
    text = (
        "Kubernetes is a very popular tool. However, can we go? Python, can you parse it? "
        "Read the software engineer Job Description."
    )
    found = _found(detector, text)
    for word in ("Kubernetes", "However", "Python", "Job Description"):
        assert found.get(word) != "PERSON", found


def _by_gazetteer(detector: Detector, text: str) -> list[str]:
    rule = next(r for r in detector.rules if r.name == "city")
    return [text[d.start : d.end] for d in rule.find(text)]


def test_area_list_names_countries_in_many_languages_and_regions() -> None:
    from deploysim.privacy.places import areas

    table = areas()
    assert len(table) > 20_000  # CLDR's ~250 countries in hundreds of languages, ISO regions
    for name in ("sverige", "deutschland", "nordrhein-westfalen", "lubelskie", "baja california"):
        assert name in table, name


@pytest.mark.parametrize(
    ("text", "value"),
    [
        # deid-11: a country in its own or another language, a first-level region, in lower
        # case after a preposition.
        ("Österreich was colder than we expected.", "Österreich"),
        ("We spent a year in Sverige and loved it.", "Sverige"),  # a WordNet noun: needs "in"
        ("She spent the summer in Zuid-Afrika with her aunt.", "Zuid-Afrika"),
        ("Lubelskie is where my grandmother grew up.", "Lubelskie"),
        ("Our cousins settled in Nordrhein-Westfalen after the war.", "Nordrhein-Westfalen"),
        ("we relocated to nordrhein-westfalen last spring", "nordrhein-westfalen"),
        ("we drove down to baja california for the holidays", "baja california"),
    ],
)
def test_countries_and_regions_by_name(detector: Detector, text: str, value: str) -> None:
    assert value in _by_gazetteer(detector, text), text


@pytest.mark.parametrize(
    "text",
    [
        # Regions that are words or products, and towns in lower case, stay.
        "Here is a script in Unity that spawns enemies.",
        "Add a Meta Description to every page of the site.",
        "It is written in kotlin and deployed to heroku.",
        "we moved to new hampshire",  # made of English words: lower case is not enough
    ],
)
def test_region_names_that_are_other_things(detector: Detector, text: str) -> None:
    assert _by_gazetteer(detector, text) == [], text


@pytest.mark.parametrize(
    ("text", "value"),
    [
        # deid-11: the house number first, as English writes foreign streets.
        ("Our office moved to 412 Solbakkevej last month.", "412 Solbakkevej"),
        # A cue, then a street and a house number with a letter and a flat.
        ("The meeting is at Lindholmgata 7b/2, third floor.", "Lindholmgata 7b/2"),
        ("my address is 58 Hawthorn road if you need it", "58 Hawthorn road"),
        # French streets, their kind in lower case.
        ("Please send it to 12, avenue des Tilleuls before noon.", "avenue des Tilleuls"),
        ("She rents a tiny flat rue Mouffetard now.", "rue Mouffetard"),
        # Russian and Ukrainian addresses.
        ("Доставьте на пр. Мира, д. 12 к. 3 завтра.", "пр. Мира, д. 12 к. 3"),
        ("Надішліть на вул. Липова, буд. 7 кв. 5, будь ласка.", "вул. Липова, буд. 7 кв. 5"),
    ],
)
def test_streets_of_deid_11(detector: Detector, text: str, value: str) -> None:
    found = _found(detector, text)
    assert any(k == "STREET_ADDRESS" and value in v for v, k in found.items()), (text, found)


@pytest.mark.parametrize(
    "text",
    [
        "In 2019 Colgate changed its logo.",
        "I wrote 3 Python scripts and 2 Bash ones.",
        "Our memory address is 0x7ffe5 and it moves.",
        "We upgraded to Python 3 last week.",
        "The route planner takes 5 main roads into account.",
    ],
)
def test_what_deid_11_streets_leave_alone(detector: Detector, text: str) -> None:
    assert "STREET_ADDRESS" not in _found(detector, text).values(), text


@pytest.mark.parametrize(
    ("text", "name"),
    [
        # deid-11: people by the company they keep, a cue, a surname's particle.
        ("Sipkova and I are planning a trip.", "Sipkova"),
        ("Ondrejka is my new roommate.", "Ondrejka"),
        ("Tell Vasquaro I said hi.", "Vasquaro"),
        ("You picked a fine time to leave me, van Dijkhuis.", "van Dijkhuis"),
        ("I spoke to von der Lahn about it.", "von der Lahn"),
    ],
)
def test_people_of_deid_11(detector: Detector, text: str, name: str) -> None:
    assert any(k == "PERSON" and name in v for v, k in _found(detector, text).items()), text


@pytest.mark.parametrize(
    "text",
    [
        "Tell Python to use UTF-8.",
        "I had no skills in VBA and I learnt fast.",
        "The ten Commandments are old.",
        "It cost ten Euros.",
    ],
)
def test_people_cues_of_deid_11_leave_words(detector: Detector, text: str) -> None:
    assert "PERSON" not in _found(detector, text).values(), text
