"""Street addresses of many countries: the street words, kinds and affixes, and the rules that
find a street by its shape ("412 Larkspur Drive", "Kaivokatu 41", "9, avenue de la Gare", "пр.
Мира, д. 12") or after a cue ("lives at", "my address is"). Split from
:mod:`deploysim.privacy.rules` (``deid-11``) to keep each module under 600 lines.
"""

from __future__ import annotations

import re

from deploysim.privacy.rules import CAPW, Rule, rx
from deploysim.privacy.words import words

__all__ = ["STREET_WORDS", "YEAR", "affixed", "affixed_first", "street_rules"]

STREET_WORDS = (
    r"Street|St|Road|Rd|Avenue|Ave|Av|Lane|Ln|Drive|Dr|Boulevard|Blvd|Court|Ct|Place|Pl|Terrace|"
    r"Way|Circle|Cir|Highway|Hwy|Parkway|Pkwy|Square|Sq|Trail|Crescent|Close|Gardens|Grove|Hill|"
    r"Hills|Harbor|Harbour|Isle|Island|Gateway|Pass|Path|Pike|Ridge|Row|Run|Track|Turnpike|Valley|"
    r"View|Village|Walk|Wells?|Forges?|Cove|Creek|Crossing|Mews|Park|Plaza|Point|Port|Shore|Shores|"
    r"Spring|Springs|Station|Summit|Throughway|Union|Vista|Alley|Bypass|Causeway|Fork|Forks|Glen|"
    r"Heights|Junction|Knoll|Landing|Loop|Meadows?|Mill|Mission|Oval|Pines|Ramp|Rapids|Rest|"
    r"Route|Stream|Tunnel|Wharf|Garden|Field|Fields|Bridge|Corner|Estate|Estates|Green|Lake|Lakes|"
    # More of the USPS standard street suffixes (Publication 28, appendix C), less those that
    # follow a number in ordinary text ("10 Key Points", "20 Most Common", "2 Boot Camp").
    r"Branch|Brooks?|Burgs?|Canyon|Cape|Center|Cliffs?|Corners|Courts|Coves|Crest|"
    r"Crossroad|Curve|Dale|Dam|Divide|Expressway|Extension|Ferry|Flats?|Fords?|Forest|Fort|"
    r"Freeway|Glens|Greens|Groves|Harbors|Haven|Hollow|Inlet|Islands|Junctions|Knolls|Loaf|"
    r"Lodge|Mall|Manors?|Motorway|Mountain|Neck|Orchard|Overpass|Passage|Pine|Plains?|"
    r"Prairie|Radial|Ranch|Rapid|Ridges|River|Rue|Shoals?|Skyway|Spurs?|Stravenue|Trace|"
    r"Trafficway|Underpass|Valleys|Viaduct|Villes?|Villages|Mills|Parks|Ports|Unions|Squares|"
    r"Walks|Wall"
)
_AFFIXES = tuple(
    words(
        """
    gate gata gatan vej veien vegen katu kuja tie straße strasse str. gasse weg laan straat
    gade väg vägen braut stræde vænget utca ulica cesta tér torg plads platz allee
    stien svingen bakken vollen plass plassen ringen baan hof bulevardi
    lei dreef singel gracht kade plein dijk steeg boulevard damm ufer pfad chaussee markt
    gränd stig backe polku kaari rinne stræti
    """
    )
)
_STREET_AFFIX = r"(?:[\w\-]*(?:" + "|".join(re.escape(a) for a in _AFFIXES) + r"))"
# Streets named by an adjective in the Slavic languages ("Hlavní", "Nádražní", "Zelená"...),
# which end so, with a diacritic no English word has.
_SLAVIC_STREET_END = ("ská", "cká", "ná", "ní", "ová", "ička", "ačka", "ska", "cka")
_STREET_PREFIX = (
    r"(?:Rue|Via|Viale|Calle|Avda\.?|Avenida|Av\.?|Rua|Travessa|ul\.|ulica|Strada|Piazza|Plaza|"
    r"Paseo|Camino|Carrer|Corso|Largo|trg|Trg|Boulevard|Chemin|Allée|Rambla|Praça|Estrada|"
    r"plac|Plac|aleja|Aleja)"
)


YEAR = re.compile(r"(?:19|20)\d\d")
"""A year of the last two centuries ("2024"): beside a street or place, no house number or
postcode."""


def affixed(s: str) -> bool:
    """A street word with its kind as a suffix ("Storgata 5"), not the kind alone ("gate 12":
    an airport's) nor before a year ("Hallgate 2024"). No "-ring": English "-ing" words
    ("during 2023", "Spring 2024") outnumber the streets."""
    w, number = s.split()[0].lower().rstrip("."), s.split()[-1]
    if YEAR.fullmatch(number):
        return False
    if any(w.endswith(a.rstrip(".")) and len(w) > len(a) + 1 for a in _AFFIXES):
        return True
    # A Slavic adjective's ending, and a letter no English word has somewhere in the word.
    return len(w) > 5 and w.endswith(_SLAVIC_STREET_END) and not w.isascii()


def affixed_first(s: str) -> bool:
    """The same with the house number first ("687 Istedgade", as English writes it)."""
    number, *_, w = s.split()
    return affixed(f"{w} {number}")


# Kinds of French street, written in lower case before the name ("9, avenue de la Gare").
_FRENCH_KINDS = (
    r"rue|avenue|av\.|boulevard|bd|chemin|allée|impasse|place|quai|route|cours|square|passage"
)
# Russian and Ukrainian kinds of street, abbreviated or whole (general knowledge).
_CYRILLIC_KINDS = (
    r"ул|пр|просп|пр-т|пер|бул|бульв|ш|наб|пл|алл|туп|вул|пров|улица|проспект|переулок|"
    r"бульвар|шоссе|набережная|площадь|аллея|вулиця|провулок|площа|узвіз|шосе"
)
# Street words English writers also type in lower case after a number and a name ("221
# Baker street"): the unambiguous ones only.
_LOWER_STREET_WORDS = (
    r"street|road|avenue|lane|drive|boulevard|terrace|crescent|parkway|highway|plaza|close"
)


# A unit of a building before its number ("Apt. 4", "Suite #210", "PO Box 77").
_UNIT = (
    r"(?:Apt|APT|apt|Apartment|Suite|SUITE|suite|Ste|Unit|Flat|Bldg|Box|P\.?\s?O\.?\s?Box|PSC|"
    r"PMB)\.?[ \t]*#?"
)
# A line's start, past its indent and a few marks ("  > ", "- ").
_LINE = r"^[^\S\n]*[^\w\s]{0,4}[^\S\n]*"


_STREET_CONNECTORS = frozenset(
    words(
        """
    de del la le dei do da di das dos von der van u.
    """
    )
)
_SW = rf"(?:{CAPW}\.?|(?i:{_STREET_AFFIX})|u\.|d[eiao]s?|del|la|le|von|der|van)"


def street_rules(stop: frozenset[str]) -> list[Rule]:
    """The street rules, given the stop words (not inside a street's name)."""

    def street_ok(s: str) -> bool:
        words = [w.lower() for w in s.split()[1:-1]]
        return not any(w in stop and w not in _STREET_CONNECTORS for w in words)

    street_num = r"\d{1,6}(?:[ \t]+\d{1,5})?"
    # fmt: off
    return [
        # Street addresses: "412 Larkspur Drive", "18330 Kaivokatu 41", "Via dei Tintori 9".
        Rule("street_en", rx(rf"\b(?P<STREET_ADDRESS>{street_num}[ \t]+(?:{CAPW}[ \t]+){{0,4}}"
            rf"(?:{STREET_WORDS})\.?)(?![\w])"), score=0.85),
        Rule("street_eu", rx(
            rf"\b(?P<STREET_ADDRESS>{street_num}[ \t]+(?:{_STREET_PREFIX}[ \t]+)?{_SW}"
            rf"(?:[ \t]+{_SW}){{0,3}}[ \t]+\d{{1,5}}[A-Za-z]?\b\.?)"), validate=street_ok,
            score=0.8),
        Rule("street_named", rx(
            rf"(?P<STREET_ADDRESS>\b{_STREET_PREFIX}[ \t]+(?:[^\W\d_][\w'’.\-]*[ \t]+){{0,3}}"
            rf"\d{{1,5}}[A-Za-z]?\b)"), score=0.75),
        Rule("street_affix", rx(r"(?<![\w-])[^\W\d][\w\-]{2,}\.?[ \t]+\d{1,5}[A-Za-z]?\b"),
            "STREET_ADDRESS", 0.75, validate=affixed),
        Rule("street_affix_first", rx(
            r"(?<![\w./\-])\d{1,5}[A-Za-z]?[ \t]+[^\W\d][\w\-]{2,}(?![\w\-])"),
            "STREET_ADDRESS", 0.75, validate=affixed_first),
        # "9, avenue de la Gare", "14 bis rue Pasteur", "rue Lepic": a French street, its kind
        # in lower case (no number: only the kinds no English sentence uses so).
        Rule("street_fr", rx(
            rf"(?P<STREET_ADDRESS>(?:\b\d{{1,5}}(?:[ \t]?(?:bis|ter))?,?[ \t]+(?:{_FRENCH_KINDS})"
            rf"|(?<![\w\-])(?:rue|boulevard|chemin|allée|impasse|quai))[ \t]+"
            rf"(?:(?:de[ \t]+la|de|du|des|la|le|les)[ \t]+|[dl][’'])?{CAPW}"
            rf"(?:[ \t\-]+(?:(?:de|la|le|du|des|aux?|sur|en)[ \t\-]+)?{CAPW}){{0,3}})"),
            score=0.75),
        # "пр. Ленина, д. 5 к. 2", "вулиця Шевченка, буд. 4 кв. 1".
        Rule("street_cyrillic", rx(
            rf"(?P<STREET_ADDRESS>(?<![\w\-])(?i:{_CYRILLIC_KINDS})\.?[ \t]+[^\W_][\w\-]*"
            r"(?:[ \t]+[^\W_][\w\-]*){0,3}?,?[ \t]+(?i:д|дом|буд)\.[ \t]*\d+[а-яa-z]?"
            r"(?:/\d+)?(?:,?[ \t]+(?i:к|корп|стр|кв)\.[ \t]*\d+)*)"), score=0.8),
        Rule("street_en_lc", rx(
            rf"\b(?P<STREET_ADDRESS>{street_num}[ \t]+(?:{CAPW}[ \t]+){{1,3}}"
            rf"(?:{_LOWER_STREET_WORDS}))(?![\w])"), score=0.75),
        Rule("address_context", rx(
            r"(?i:\b(?:lives?|living|lived)\s+(?:at|on)|\baddress(?:\s+is)?\s*:|"
            r"\b(?:my|our|his|her|their|your)\s+address\s+is|\blocated\s+at|"
            r"\bdrops?\s+you\s+off\s+at|\bsend\s+(?:it|them|a\s+new\s+one)\s+to|\bship\s+(?:it\s+)?"
            r"to|\bdeliver(?:ed)?\s+(?:it\s+)?to|\bstop\s+at|\blived\s+in|\blive\s+in)\s+"
            r"(?P<STREET_ADDRESS>(?:the\s+corner\s+of\s+)?\d[^\n.?!;:]{3,80}?)"
            # It ends before the sentence goes on ("... 14 before noon", "... by Friday").
            r"(?=[.?!;]\s|[.?!;]?$|\n|\s+(?:street|and|but|which|for|before|after|by|until|"
            r"tomorrow|today|tonight|next|this|please|asap|if|so|when|because|now|last)\b)"),
            score=0.75),
        Rule("street_corner", rx(
            r"(?i:\bthe\s+corner\s+of)\s+(?P<STREET_ADDRESS>[^\n,.?!]{3,60}?\s+and\s+"
            r"[^\n,.?!]{3,60}?)(?=[.?!,\n]|$)"), score=0.75),
        Rule("street_unit", rx(rf"\b(?P<STREET_ADDRESS>{_UNIT}[ \t]*\d{{1,6}}[A-Za-z]?)\b"),
            score=0.8),
        # A line that starts with a house number, above a line that starts with its unit
        # ("77 Hollis Vale, 5\n Apt. 12"): an address block, whatever the street's language.
        Rule("street_above_unit", rx(
            rf"(?m:{_LINE}(?P<STREET_ADDRESS>\d{{1,6}}[A-Za-z]?[ \t,]+[^\n]{{3,60}}?)[ \t,]*\n"
            rf"{_LINE}{_UNIT}[ \t]*\d)"), score=0.7),
        Rule("military_ship", rx(rf"\b(?:USNS|USNV|USS|USCGC)[ \t]+{CAPW}"), "STREET_ADDRESS"),
        Rule("military_post", rx(
            r"\b(?P<LOCATION>[ADF]PO)[ \t]+(?P<LOCATION__2>A[AEP])[ \t]+(?P<ZIP_CODE>\d{5})\b")),
        Rule("street_lives_on", rx(
            r"(?i:\b(?:lives?|living|lived)\s+(?:on|at)\s+|\blocated\s+on\s+)"
            r"(?i:the\s+[a-z]+\s+(?:side|end|part)\s+of\s+)?"
            rf"(?P<STREET_ADDRESS>{CAPW}(?:[ \t]+{CAPW}){{0,3}}[ \t]+\d{{1,5}}[A-Za-z]?)\b"),
            score=0.75),
    ]
    # fmt: on
