"""The regex rules of the PII detector (:mod:`deploysim.privacy.detector`), built on the word
lists of :mod:`deploysim.privacy.words`.

The rules cover what the small spaCy model misses: street addresses and address blocks, postal
codes, honorifics and job titles, ages, dates of birth, account / booking / order ids, API keys
and secrets, names in structural contexts (``Name:``, speaker labels, introductions), places and
organisations in context, nationalities and religions, and names that the model does not tag
but the sentence marks as names (:func:`cue_rules`). The name patterns (``CAPW``, ``NAME``,
``ORG``, ``PLACE``...) are public: :mod:`deploysim.privacy.post` builds on them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from deploysim.privacy.words import (
    COUNTRIES,
    FIRST_NAMES,
    HONORIFICS,
    NATIONALITIES,
    OCCUPATIONS,
    WORLD_FIRST_NAMES,
    words,
)


@dataclass(frozen=True, slots=True)
class Detection:
    """A typed span of a text: ``text[start:end]`` is an entity of ``entity_type``."""

    start: int
    end: int
    entity_type: str
    score: float
    source: str


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
UPPER = _UP
"""The capital letters of the Latin, Greek and Cyrillic scripts, as a regex class body."""
_LO = _char_class(str.islower)
LOWER = _LO
"""The small letters of those scripts, likewise."""
CAP = rf"[{_UP}][{_LO}{_UP}'’\-]*[{_LO}{_UP}]\.?|[{_UP}]\.?"  # a capitalised word or initial
# A capitalised or all-caps word, double-barrelled too ("Blum-Roth", "Cahir-McElnay",
# "VILLENEUVE-D'ASCQ"), with a surname's capitalised prefix ("McAllister", "O'Hare", "DeLuca").
CAPW = (
    rf"(?:[{_UP}](?:(?<=M)a?c[{_UP}]|(?<=[OD])['’][{_UP}]|(?<=[DL])[ae][{_UP}]|(?<=D)i[{_UP}]"
    rf"|(?<=F)itz[{_UP}])?[{_LO}'’\-]*[{_LO}]"
    rf"(?:-(?:Mc|Mac)?[{_UP}][{_LO}'’]*[{_LO}])*"
    rf"|[{_UP}]{{2,}}(?:[-'’][{_UP}]+)*)"
)
PARTICLE = r"(?:van|von|de|der|den|ten|ter|da|di|del|la|le|bin|al)[ \t]+"
"""A name particle and the space after it ("van ", "de la" is two)."""
NAME = rf"{CAPW}(?:[ \t]+(?:{PARTICLE})?{CAPW}|[ \t]+[{_UP}]\.?(?=[ \t]+[{_UP}])){{0,3}}"
# An organisation's name: capitalised words (CamelCase and "Ltd." allowed), "and"/"of" inside.
LEGAL = r"(?:Inc|Ltd|LLC|Corp|Corporation|Limited|GmbH|plc|PLC|LLP|AG)"
# Legal forms of firms in other countries, as registries write them (general knowledge: the
# forms of company law in Europe and the Americas). Bare capitals ("AS", "SA") only after a
# capitalised name; dotted forms also in lower case ("novák s.r.o."), where nothing else
# reads like them.
_LEGAL_BARE = (
    r"GmbH|mbH|KGaA|KG|OHG|GbR|UG|eG|SE|SA|SAS|SARL|SpA|SRL|BV|NV|VOF|AB|HB|KB|A/S|ApS|AS|ASA|"
    r"Oy|Oyj|Ay|Ky|ry|OÜ|MTÜ|SIA|UAB|EIRELI|Ltda|Lda|S/A|Pty|Pvt|OOO|ZAO|PAO|TOV|DOO|Sp|Kft|"
    r"Zrt|Nyrt|Bt|Kkt"
)
_LEGAL_DOTTED = (
    r"e\.V\.|e\.G\.|S\.A\.(?:S\.)?|S\.A|S\.L\.(?:U\.|N\.E\.?|L\.)?|S\.L|S\.R\.L\.|S\.r\.l\.|"
    r"S\.p\.A\.|S\.n\.c\.|S\.C\.S?\.|S\.à[ \t]r\.l\.|B\.V\.|N\.V\.|V\.O\.F\.|C\.V\.|Kft\.|Zrt\.|"
    r"Nyrt\.|Bt\.|Kkt\.|Ltda\.|Lda\.|s\.r\.o\.|spol\.[ \t]s[ \t]r\.[ \t]?o\.|a\.s\.|k\.s\.|"
    r"v\.o\.s\.|o\.s\.|z\.s\.|sp\.[ \t]z[ \t]o\.[ \t]?o\.|sp\.[ \t]?j\.|s\.c\.|d\.o\.o\.|"
    r"j\.d\.o\.o\.|d\.d\.|k\.d\.|d\.n\.o\.|s\.p\.|A\.Ş\.|Ltd\.[ \t]Şti\.|Pty\.?[ \t]Ltd\.?|"
    r"Pvt\.?[ \t]Ltd\.?|Cía\.|Hnos\.|Sp\.[ \t]?k\.|a/s|S/A"
)
_ORG_W = rf"(?!{LEGAL}\b)(?:[{_UP}][{_LO}]+(?:[{_UP}][{_LO}]+)+|{CAPW})"
ORG = (
    rf"(?<![\w'’\-])(?!(?:The|A|An|This|That|These|Those|Our|My|Your|Their|His|Her|Its)\b)"
    rf"{_ORG_W}(?:[ \t]+(?:(?:and|And|of|Of|&|de|du)[ \t]+)?{_ORG_W}){{0,4}}(?![\w'’\-])"
)
PLACE = (
    rf"{CAPW}(?:[ \t'’\-]+(?:(?:de|del|la|las|los|do|da|nad|pod|am|sur|O')[ \t]+)?"
    rf"{CAPW}){{0,3}}"
)

_COUNTRY_RE = re.compile(
    r"(?<![\w-])(?:"
    + "|".join(re.escape(c) for c in sorted(COUNTRIES, key=len, reverse=True))
    + r")(?![\w-])"
)


def rx(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """A rule's pattern: ``^`` and ``$`` match at every line."""
    return re.compile(pattern, flags | re.MULTILINE)


_OCC = "|".join(sorted(OCCUPATIONS, key=len, reverse=True))
# Jobs that also name software or things ("a package manager", "a device driver"): not a cue
# that the subject of "X is a ..." is a person.
_THING_JOBS = frozenset(
    words(
        """
    manager installer handler controller operator driver loader collector setter tender sorter
    assembler cleaner cutter agent assistant interpreter editor planner producer packager
    inspector examiner designer developer programmer reporter tutor coach guard broker buyer
    dispatcher estimator writer trainer translator specialist associate advisor consultant
    """
    )
)
_OCC_PEOPLE = "|".join(sorted(OCCUPATIONS - _THING_JOBS, key=len, reverse=True))
_MONTH_WORD = re.compile(
    r"(?i)\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\b|\b(?:mon|tues?|wed|"
    r"thu(?:rs)?|fri|sat|sun)day\b"
)
# What a form's "Company:" field holds when it names no firm.
_NON_ANSWERS = frozenset(
    {"n/a", "na", "none", "tbd", "unknown", "self", "self-employed", "freelance", "various"}
)
# Field labels of forms and cards ("Tel: ...") that are no speaker's name.
_LABELS = frozenset(words("tel fax mob cel ph dob ssn iban bic swift vat attn ref re cc bcc"))
_ORG_KINDS = frozenset(words("president king queen prince princess emperor chancellor governor"))
_RELATIVES = (
    r"kid|son|daughter|child|wife|husband|partner|brother|sister|mother|mom|mum|father|dad|"
    r"friend|boss|colleague|coworker|neighbou?r|boyfriend|girlfriend|fianc[eé]e?|cousin|uncle|"
    r"aunt|niece|nephew|grandson|granddaughter|grandmother|grandfather|grandma|grandpa|"
    r"roommate|landlord|tenant|client|patient|student"
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


def digits(s: str) -> int:
    return sum(c.isdigit() for c in s)


def _phone_ok(s: str) -> bool:
    if not 7 <= digits(re.split(r"(?i)x|ext", s)[0]) <= 15:  # the extension does not count
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


# Lower-case country names that are also ordinary words.
_AMBIGUOUS_COUNTRIES = frozenset(
    words("turkey chad jordan georgia china guinea niger chile panama japan iran india mali")
)
# Capitalised sentence starts that are not names ("This is a company that...").
_PRONOUNS_ETC = frozenset(words("this that it he she they there here what which who one each"))


# The end of a pronoun's contraction ("they’ve", "we'll").
_CONTRACTION = re.compile(r"['’](?:ve|re|ll|d|s|m)$")
# Verbs and phrases a person's name follows ("spoke to", "directed by").
_SPEECH = (
    r"said|says|asked|told|shouted|yelled|whispered|replied|married|thanked|met|emailed|texted|"
    r"contacted|follow(?:ed)?\s+up\s+with|speak\s+to|spoke\s+(?:to|with)|talk(?:ed)?\s+(?:to|with)|"
    r"meeting\s+with|directed\s+by|written\s+by|starring|featuring|produced\s+by|performed\s+by|"
    r"sung\s+by|composed\s+by"
)
LC = r"[^\W\d_A-Z][^\W\d_]"
"""A lower-case letter, then the class of the letters after it ("maren", "åsa")."""


def build_rules(common: frozenset[str], stop: frozenset[str]) -> list[Rule]:
    """The regex rules, given ordinary English words (``common``) and stop words."""

    def is_common(word: str) -> bool:
        w = word.lower().strip(".,'’")
        return w in common and w not in FIRST_NAMES

    def not_stop(s: str) -> bool:
        return s.split()[0].lower() not in stop

    def not_common(s: str) -> bool:
        words = [w for w in re.split(r"[\s.]+", s) if len(w) > 1]
        return bool(words) and not is_common(words[0]) and not is_common(words[-1])

    def heading(s: str) -> bool:
        # "Results:", "Learnings:", "Updated:" head a list in an answer; they are not speakers.
        # The stem must be a word of four or more letters: "Xid:" is a speaker, not "xi" + d.
        w = s.lower()
        stems = (w[: -len(x)] for x in ("s", "es", "ed", "d", "ing") if w.endswith(x))
        return " " not in w and any(len(t) > 3 and is_common(t) for t in stems)

    def no_word(s: str) -> bool:  # every word of two letters or more is no English word
        words = [w for w in s.split() if len(w.rstrip(".")) > 1]
        return all(w not in stop and not is_common(w) for w in words)

    def first_listed(s: str) -> bool:  # "hazel k. ostrowski", "hazel ostrowski"
        parts = s.split()
        return parts[0] in WORLD_FIRST_NAMES and (len(parts) == 3 or not is_common(parts[-1]))

    def first_not_common(s: str) -> bool:
        return not is_common(s.split()[0].strip(".,"))

    def has_digit(s: str) -> bool:
        return any(c.isdigit() for c in s)

    def has_digit_or_month(s: str) -> bool:
        return has_digit(s) or bool(_MONTH_WORD.search(s))

    i = re.IGNORECASE
    hon = "|".join(HONORIFICS)
    stop_alt = "|".join(sorted((re.escape(w) for w in stop), key=len, reverse=True))
    lc_word = rf"(?!(?i:{stop_alt})\b)[^\W\d_][^\W\d_'’\-]+"
    # fmt: off
    rules = [
        # People: honorifics, name fields, introductions, relatives, speaker labels, vocatives.
        Rule("honorific", rx(rf"\b(?P<TITLE>(?:{hon})\.?)[ \t]+(?P<PERSON>{NAME})"), score=0.9),
        Rule("honorific_lc", rx(r"\b(?:mr|mrs|ms|dr|prof)\.(?=\s+\w)", i), "TITLE", 0.7),
        # A name after a lower-case honorific ("with ms. Okafor"), whatever its case.
        Rule("honorific_name", rx(
            r"\b(?i:mr|mrs|ms|miss|dr|prof)\.?[ \t]+(?P<PERSON>[^\W\d_][\w'’\-]+"
            r"(?:[ \t]+[^\W\d_][\w'’\-]+)?)(?=[ \t]*(?:[.,;!?]|$))"),
            validate=lambda s: not_stop(s) and not is_common(s.split()[-1]), score=0.75),
        Rule("name_field", rx(
            r"^[ \t>]*(?i:name|full name|contact|customer|patient|client|author|attn|"
            r"attention|directed by|written by|signed|employee|passenger|guest|applicant|"
            rf"recipient|sender|from|to)[ \t]*:[ \t]*(?P<PERSON>{NAME})[ \t]*$"), score=0.85),
        Rule("introduced_name", rx(
            r"(?i:\b(?:my|his|her|their|your)\s+(?:full\s+|first\s+|last\s+|middle\s+|real\s+"
            r"|maiden\s+|nick)?name\s+is|\bcalls?\s+me|\bnamed(?:\s+(?:him|her|them))?|"
            r"\b(?:was|were|is)\s+called|\bgoes\s+by)\s+" rf"(?P<PERSON>{NAME})"),
            validate=not_stop, score=0.85),
        Rule("self_introduction", rx(
            rf"(?i:\bthis\s+is|\bi\s+am|\bi'm|\bim)\s+(?P<PERSON>{NAME})"),
            validate=first_not_common, score=0.8),
        Rule("introduced_name_lc", rx(
            r"\b(?:my name is|call me|calls me)\s+(?P<PERSON>[a-z][^\W\d_]{2,})\b"),
            validate=not_common, score=0.7),
        # "his mother's maiden name is halvorsen", "And your family name? Quennell", "my name
        # is petra lindqvist": the answer to a name question, in any case, up to three words
        # that are not stop words (ordinary words are allowed: WordNet lists many surnames).
        Rule("name_answer", rx(
            r"(?i:\b(?:(?:first|last|full|maiden|middle|family|sur|given|real|nick)[ \t]?name"
            r"(?:[ \t]+(?:is|was))?[ \t]*[?:]?|my[ \t]+name[ \t]+is|call[ \t]+me)[ \t]+)"
            rf"(?P<PERSON>{lc_word}(?:[ \t]+{lc_word}){{0,2}})"), score=0.75),
        Rule("relative", rx(rf"(?i:\bmy\s+(?:{_RELATIVES}))\s+(?P<PERSON>{NAME})"), score=0.8),
        Rule("speech_verb", rx(rf"(?i:\b(?:{_SPEECH})\s+(?:at\s+|to\s+)?)(?P<PERSON>{NAME})"),
            validate=not_stop, score=0.8),
        # The same in lower case, two or three words none of which is English ("follow up with
        # maren k. holt"), or a listed first name before an initial or a surname that is no
        # English word ("spoke to hazel ostrowski"): a person's name typed without capitals.
        Rule("speech_verb_lc", rx(
            rf"(?i:\b(?:{_SPEECH})\s+)"
            rf"(?P<PERSON>{LC}{{2,}}(?:[ \t]+[a-z]\.?)?[ \t]+{LC}{{2,}})\b"),
            validate=lambda s: no_word(s) or first_listed(s), score=0.6),
        # Cues that software and firms also follow ("tell Python to ..."): no ordinary word.
        Rule("person_cue", rx(
            r"(?i:\b(?:tell|forward\s+(?:this|it|them)\s+to|e-?mail\s+to|(?:lunch|dinner|"
            r"coffee|drinks)\s+with|according\s+to)\s+)"
            rf"(?P<PERSON>{NAME})"), validate=not_common, score=0.75),
        # "Ilse and I are ...", "me and Ilse", "Ilse is my new roommate": a person by the
        # company they keep.
        Rule("and_i", rx(
            rf"(?:^|(?<=[.!?] ))(?P<PERSON>{NAME})[ \t]+and[ \t]+I\b(?!['’])"
            rf"|\b(?i:me)[ \t]+and[ \t]+(?P<PERSON__2>{NAME})"
            rf"|(?:^|(?<=[.!?] ))(?P<PERSON__3>{NAME})[ \t]+(?:is|was)[ \t]+(?:my|our)[ \t]+"
            rf"(?:[a-z]+[ \t]+)?(?:{_RELATIVES}|roomie|flatmate|housemate|manager|teammate)\b"),
            validate=lambda s: not_common(s) and not s.isupper(), score=0.75),
        Rule("speech_subject", rx(
            rf"(?<![\w.,] )(?<![\w.,])(?P<PERSON>{CAPW})[ \t]+(?=(?:said|says|shouted|yelled|"
            r"whispered|replied|asked|told|lives|lived|spent|married)\b)"), validate=not_common,
            score=0.75),
        Rule("lowercase_name", rx(r"\b(?P<PERSON>(?:" +
            "|".join(n for n in sorted(FIRST_NAMES) if n not in common) +
            r")(?:[ \t]+[a-z]\.?)?(?:[ \t]+(?!(?:" + "|".join(sorted(stop)) + r")\b)"
            r"[a-z]{3,})?)\b"),
            validate=lambda s: len(s.split()) == 1 or not is_common(s.split()[-1]), score=0.6),
        # Lower case "first m last": any census first name (also one that is a dictionary word,
        # "benjamin", "mark"), a middle initial, and a surname that is not an English word.
        Rule("lowercase_initial_name", rx(r"\b(?P<PERSON>(?:" + "|".join(sorted(FIRST_NAMES)) +
            r")[ \t]+[a-z]\.?[ \t]+[a-z]{3,})\b"),
            validate=lambda s: not is_common(s.split()[-1]) and s.split()[-1] not in stop,
            score=0.6),
        Rule("initial_name", rx(rf"\b(?P<PERSON>{CAPW}[ \t]+[{_UP}]\.?[ \t]+{CAPW})(?![\w.])"),
            validate=first_not_common, score=0.8),
        Rule("speaker", rx(
            rf"^[ \t>]*(?P<PERSON>{CAPW}(?:[ \t]+{CAPW})?)[ \t]*:[ \t]*(?=[\"'\w])"),
            validate=lambda s: not_common(s) and not heading(s) and s.lower() not in _LABELS,
            score=0.75),
        # A quoted line of dialogue in lower case: 'ansel: "where were you?" greta:"at..."'. Only
        # at the very start of a line or right after a closing quote: indented "href: "..."" is
        # code, not dialogue.
        Rule("speaker_quote", rx(
            r"(?:^|(?<=[\"”] ))(?P<PERSON>[a-z]{3,})[ \t]*:[ \t]*[\"“](?=[^\W\d_])", re.M),
            validate=not_common, score=0.7),
        Rule("vocative", rx(
            rf"^[ \t]*(?P<PERSON>{CAPW}),[ \t]+(?=(?:can|could|would|will|please|I|you|do|"
            r"did|are|is|have|what|why|how|where|when|thanks?|let|we)\b)"), validate=not_common,
            score=0.75),
        # Addressed at a clause's end: "Remember me, Ilse?", "Don't go, Kroon!".
        Rule("vocative_end", rx(rf",[ \t]+(?P<PERSON>{CAPW})(?=[ \t]*[?!])"),
            validate=lambda s: not_common(s) and s not in COUNTRIES, score=0.7),
        # Job titles: on a line of their own, or after "work ... as".
        Rule("job_line", rx(
            r"^[ \t>]*(?P<TITLE>(?:[A-Za-z\-]+,?[ \t]+){0,5}(?:and[ \t]+)?[A-Za-z\-]*"
            rf"(?i:{_OCC})s?)[ \t]*$"), score=0.7),
        Rule("job_as", rx(
            r"(?i:\b(?:work(?:s|ed|ing)?|employed|hired|job)\b[^.\n]{0,40}?\bas(?:\s+an?)?)\s+"
            rf"(?P<TITLE>(?:[A-Za-z\-]+\s+){{0,4}}?[A-Za-z\-]*(?i:{_OCC})s?)\b"), score=0.7),
        Rule("job_field", rx(
            r"(?i:\b(?:job\s+title|occupation|profession|position)\s*(?::|is)\s*)"
            r"(?P<TITLE>[^\n.,;]{3,60})"), score=0.7),
        # Places.
        Rule("place_context", rx(
            r"(?i:\b(?:flew|flying|fly|moved|moving|relocated|travell?ed|travell?ing|drove|"
            r"driving|went|trip|came|come|comes|originally|based|located|born|raised|living|"
            r"lives|live|lived|stationed|stay(?:ed|ing)?|visit(?:ed|ing)?|arrived|landed|"
            r"head(?:ed|ing)|back|return(?:s|ed|ing)?|gr[eo]w\s+up)"
            r"(?:\s+(?:here|there|back|away|out|over))?\s+"
            r"(?:to|from|in|at|near)|\b(?:i\s+am|i'm|we\s+are|we're|is|are|was|were)\s+"
            r"(?:in|from)|\bhome\s+(?:city|town|country)(?:\s+(?:of|is))?)\s+"
            rf"(?P<LOCATION>{PLACE})"), validate=not_stop, score=0.75),
        Rule("place_field", rx(
            r"^[ \t>]*(?i:where|location|city|town|country|place|venue|destination|origin|"
            rf"hometown)[ \t]*:[ \t]*(?P<LOCATION>{PLACE})"), score=0.75),
        Rule("org_context", rx(
            r"(?i:\b(?:year|years|months?|time|summer|work(?:s|ed|ing)?|employed|intern(?:ed|ing)?"
            r"|job|career)\s+(?:at|for|with))\s+"
            rf"(?P<ORGANIZATION>{CAPW}(?:[ \t]+{CAPW}){{0,3}})"), validate=not_stop, score=0.7),
        Rule("country", _COUNTRY_RE, "LOCATION", 0.7),
        # "i grew up in portugal": a country in lower case, unless an ordinary word
        # ("turkey", "chad", "jordan").
        Rule("country_lc", rx(
            r"(?<![\w-])(?:" + "|".join(
                re.escape(c.lower()) for c in sorted(COUNTRIES, key=len, reverse=True)
            ) + r")(?![\w-])"), "LOCATION", 0.6,
            validate=lambda w: w not in _AMBIGUOUS_COUNTRIES),
        # "Quorvex is a Dutch multinational insurance company", "X is a small web studio".
        Rule("org_is_a", rx(
            rf"(?:^|(?<=[.!?]\s))(?P<ORGANIZATION>{CAPW}(?:[ \t]+{CAPW}){{0,3}}(?:[ \t]+"
            r"(?:Inc|Ltd|LLC|Corp|GmbH|plc)\.?)?)[ \t]+(?:is|was)[ \t]+(?:an?|the)[ \t]+"
            r"(?:[\w\-]+[ \t]+){0,3}?(?:company|agency|firm|bank|startup|start-up|"
            r"multinational|corporation|business|brand|organi[sz]ation|group|consultancy|"
            r"retailer|manufacturer|provider|platform|brainchild|charity|foundation|"
            r"non-?profit|studio|label|publisher|lender|insurer|airline)\b"),
            validate=lambda w: not_stop(w) and w.split()[0].lower() not in _PRONOUNS_ETC,
            score=0.7),
        Rule("nationality", rx(r"\b[A-Za-z]{3,}\b"), "NRP", 0.6,
            validate=lambda w: w.lower() in NATIONALITIES or w.lower()[: -1] in NATIONALITIES),
        Rule("zip_field", rx(r"(?i:\b(?:zip|postal|post|plz)(?:\s*code)?\s*(?:is|:|#|no\.?|of)?)"
            r"\s*(?P<ZIP_CODE>[A-Za-z0-9]{1,8}(?:[ -][A-Za-z0-9]{2,4})?)\b"), validate=has_digit),
        # A value under a "Date:" label is a date, whatever spaCy makes of it ("Date: May").
        Rule("date_field", rx(
            r"(?i:^[ \t]*(?:date|dated|date of (?:visit|order|purchase|appointment))[ \t]*:)"
            r"[ \t]*(?P<DATE_TIME>[^\n]{1,30}?)[ \t]*$"), validate=has_digit_or_month, score=0.7),
        # A country-prefixed postcode: "DK-2100", "CH-8001", "D-10115".
        Rule("zip_country", rx(
            r"(?<![\w-])(?P<ZIP_CODE>(?:AT|BE|CH|CZ|DE|DK|EE|ES|FI|FR|GR|HR|HU|IS|IT|LT|LU|LV|"
            r"NL|NO|PL|PT|SE|SI|SK)-\d{4,5}|[DF]-\d{5})(?![\w-])")),
        Rule("zip_us", rx(r"\b(?P<LOCATION>[A-Z]{2})[ \t]+(?P<ZIP_CODE>\d{5}(?:-\d{4})?)\b")),
        # Ages.
        Rule("age", rx(
            r"(?i:\b(?:turn(?:s|ed|ing)?|aged?|age\s*(?:is|:|of))\s+)(?P<AGE>\d{1,3})\b|"
            r"\b(?P<AGE__2>\d{1,3})(?=[ -]?(?:years?|yrs?)[ -]old\b|\s?(?:y/o|yo|y\.o\.)(?!\w))"),
            validate=_age_ok),
        # Phones without a region Presidio knows, when the context says so.
        Rule("phone_context", rx(
            r"(?<![\w+])(?P<PHONE_NUMBER>(?:\+\d{1,3}[ \t.-]?)?(?:\(\d{1,4}\)[ \t.-]?)?(?:\d{2,4}"
            r"(?:(?:[ \t.-]\d{2,4}){1,4}|[ \t.-]\d{5,8})|\d{7,12})"
            r"(?:[ \t]?(?:x|ext\.?)[ \t]?\d{1,5})?)(?!\d)"),
            validate=_phone_ok, context=re.compile(
            r"(?i)phone|mobile|cell|\btel\b|telephone|\bcall|\btext|\bfax|office|desk|contact|"
            r"reach|number|answering|messages|\bsms|whatsapp|\bdial"), score=0.72),  # > spaCy's
        Rule("iban", rx(r"(?i)\b[a-z]{2}\d{2}(?:[ ]?[a-z0-9]{4}){2,7}(?:[ ]?[a-z0-9]{1,4})?\b"),
            "IBAN_CODE", 0.95, validate=iban_ok),
        Rule("card_context", rx(
            r"(?i:\bcard\b[^\d\n]{0,20})(?P<CREDIT_CARD>\d(?:[ -]?\d){11,18})\b"), score=0.75),
        # Account, booking, order and payment ids.
        # API keys, tokens and other secrets.
        Rule("secret_token", rx(
            r"\b(?:sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}|(?:AKIA|ASIA)[0-9A-Z]{16}|"
            r"gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}|xox[abposr]-[A-Za-z0-9-]{10,}"
            r"|AIza[0-9A-Za-z_\-]{35}|eyJ[\w-]{10,}\.[\w-]{10,}\.[\w-]{10,}|"
            r"(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|hf_[A-Za-z0-9]{30,}|"
            r"glpat-[A-Za-z0-9_\-]{20})"), "SECRET", 0.95),
        Rule("private_key", rx(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
            "SECRET", 0.95),
        Rule("secret_assignment", rx(
            r"(?i:\b(?:bearer\s+|[\w.-]*(?:api[_-]?key|apikey|secret|token|passw(?:or)?d|"
            r"passwd|pwd|credential|private[_-]?key|access[_-]?key)[\w.-]*[\"']?\s*[:=]\s*"
            r"[\"']?))(?P<SECRET>[A-Za-z0-9_\-+/=.~!@%^*]{8,})"), validate=_secret_ok, score=0.85,
        ),
    ]
    # fmt: on
    return rules + cue_rules(is_common, stop)


def cue_rules(is_common: Callable[[str], bool], stop: frozenset[str]) -> list[Rule]:
    """Names with no NER signal but an unmistakable cue: an organisation's legal suffix,
    office, website, founding or renaming, "Acme engineer Jane Doe"; people by a particle
    ("Jorinde ten Velde"), a job ("X and Y were engineers"), a gendered pronoun that refers
    back to them, dialogue ("said X to Y"); appositive job titles; "lives on Street 12"."""

    def org_named(s: str, single_common: bool = True) -> bool:
        first = s.split()[0]
        return not (
            _CONTRACTION.sub("", first.lower()) in stop  # "The", and "They’ve", "We'll"
            or s in COUNTRIES
            or s.lower().rstrip("s") in NATIONALITIES
            or first.lower() in _ORG_KINDS
            or first.lower() in OCCUPATIONS
            or (single_common and " " not in s and is_common(s))
        )

    def no_word_after(s: str) -> bool:  # "van Dijkhuis", not "ten Euros"
        return rare(s.split()[-1])

    def field_org(s: str) -> bool:  # a value under "Company:", unless a non-answer
        return any(c.isupper() for c in s) and s.lower().strip(". ") not in _NON_ANSWERS

    def lenient(s: str) -> bool:
        return org_named(s, single_common=False)

    def rare(s: str) -> bool:  # not an English word, nor the plural of one
        return not is_common(s) and not (s.endswith("s") and is_common(s[:-1]))

    def person_ok(s: str) -> bool:
        return s.lower() not in stop and not is_common(s)

    be = r"(?:is|was|are|were)"
    job = rf"(?:[a-z\-]*(?:{_OCC})|ceo|cto|cfo|co-?founder|founder|spokes(?:person|man|woman))"
    pronoun = r"(?i:he|him|his|she|her|hers|himself|herself)"
    # A word of a firm's name in lower-case text: not a stop word ("the office of novák s.r.o.").
    lc_word = r"(?!(?i:the|of|a|an|and|at|in|on|for|to|with|by|from|is|was|or)\b)[^\W\d_][\w'’\-]*"
    # fmt: off
    return [
        Rule("org_suffix", rx(rf"(?P<ORGANIZATION>{ORG}[ \t]+{LEGAL}\b\.?)"),
            validate=org_named, score=0.75),
        # Russian, Ukrainian and Kazakh legal forms before the name: "ООО «Ромашка»".
        Rule("org_cyrillic", rx(
            r"(?<![\w\-])(?:ООО|АО|ЗАО|ОАО|ПАО|НАО|ТОВ|ПрАТ|ПАТ|ТОО|ИП|ФОП)[ \t]+"
            r"(?:«[^»\n]{1,60}»|\"[^\"\n]{1,60}\"|„[^“\n]{1,60}“"
            r"|[А-ЯЁІЇЄҐ][\w\-]+(?:[ \t]+[А-ЯЁІЇЄҐ][\w\-]+){0,2})"), "ORGANIZATION", 0.8),
        Rule("org_legal_form", rx(
            rf"(?P<ORGANIZATION>{ORG}(?:,?[ \t]+(?:y|e|i|a|und|en|og|och|ja|és|a)[ \t]+{CAPW})?"
            rf",?[ \t]+(?:&[ \t]+Co\.?[ \t]+)?(?:{_LEGAL_DOTTED}|(?:{_LEGAL_BARE})\b\.?))"
            r"(?![\w])"), validate=org_named, score=0.75),
        # A family firm: "Whitehead and Sons", "Godard et Fils", "Rossi e Figli".
        Rule("org_family", rx(
            rf"(?P<ORGANIZATION>{ORG}[ \t]+(?:and|&|et|e|y|und|en|og|och|i)[ \t]+(?:Sons?|Fils|"
            r"Figli|Hijos|Söhne|Zonen|Sønner?|Synowie|Partners|Cie\.?|Co\.?))(?![\w])"),
            validate=org_named, score=0.7),
        Rule("org_legal_form_lc", rx(
            rf"(?<![\w'’\-])(?P<ORGANIZATION>{lc_word}(?:,?[ \t]+{lc_word}){{0,2}}"
            rf"[ \t]+(?i:{_LEGAL_DOTTED}))(?![\w])"),
            validate=lambda s: s.split()[0].lower() not in stop and not is_common(s.split()[0]),
            score=0.7),
        Rule("org_the_office", rx(
            rf"(?i:\bthe)[ \t]+(?P<ORGANIZATION>{ORG})[ \t]+(?:office|offices|headquarters|HQ|"
            r"website|web site|homepage|CEO|founders?|employees|shareholders)\b"),
            validate=org_named, score=0.7),
        Rule("org_of", rx(
            r"(?i:\b(?:address|headquarters|offices?|website|ceo|cto|cfo|co-?founder|founders?|"
            r"owner|chairman|chairwoman|employees|shareholders)\s+of\s+(?:the\s+)?)"
            rf"(?P<ORGANIZATION>{ORG})"), validate=org_named, score=0.7),
        Rule("org_founded", rx(
            rf"(?P<ORGANIZATION>{ORG})[ \t]+(?:was|were|has[ \t]+been)[ \t]+(?:co-?founded|"
            r"founded|established|incorporated|headquartered)\b"), validate=org_named, score=0.7),
        Rule("org_became", rx(
            r"(?i:\b(?:(?:later|eventually|then|soon|which|subsequently)\s+became|"
            r"(?:renamed|rebranded)(?:\s+(?:to|as))?|acquired\s+by|merged\s+(?:with|into)|"
            r"bought\s+(?:out\s+)?by|taken\s+over\s+by|subsidiary\s+of|spun\s+off\s+from)\s+)"
            rf"(?P<ORGANIZATION>{ORG})"), validate=lenient, score=0.7),
        # A firm by a person's tie to it: hired by, joined, an offer or interview at, a job at,
        # an invoice from, "my bank, X" (personal, unlike news of a public firm). Not a bare
        # "join": an invitation ("Join X groups") or SQL's JOIN.
        Rule("org_tie", rx(
            r"(?i:\b(?:(?:hired|employed|recruited|sponsored|headhunted|poached|laid\s+off|"
            r"fired|promoted|contracted)\s+by|(?-i:[Jj]oin(?:s|ed|ing)|[Rr]ejoin(?:s|ed|ing)?)|"
            r"(?:interview(?:s|ed|ing)?|internship|apprenticeship|placement|(?:job\s+)?offer|"
            r"contract|position|role)\s+"
            rf"(?:at|with|from)|(?:{_OCC}|manager|engineer|analyst|developer|intern|consultant|"
            r"director|employee|staff(?:er)?|boss|supervisor|colleague|co-?worker)s?\s+"
            r"(?:at|with)|recruiters?\s+(?:at|from)|(?:invoice|quote|refund|parcel|"
            r"package|delivery|order|receipt)\s+from|(?:my|our|your|his|her|their)\s+"
            r"(?:supplier|vendor|client|employer|landlord|bank|insurer|insurance|provider|"
            r"carrier|agency|lender)(?:\s+is)?,?)\s+)"
            rf"(?P<ORGANIZATION>{ORG})"), validate=org_named, score=0.7),
        # A firm as a customer meets it: the object of quitting, a subscription, a letter or
        # a parcel ("cancel my plan with X", "a refund from X"), or the subject of what firms
        # do to customers ("X denied my claim", "X is hiring", "X charged me twice").
        Rule("org_customer", rx(
            r"(?i:\b(?:quit|(?:bought|ordered|purchased)\s+(?:[\w'’\-]+\s+){0,3}?(?-i:from)|"
            r"complain(?:t\s+letter)?\s+(?-i:to)|(?:subscription|account|membership|contract|"
            r"policy|order|plan|booking)\s+(?-i:with|at)|discount\s+(?-i:at)|shop(?:ped|ping)?\s+"
            r"(?-i:at)|(?:letter|e-?mail|call|bill|invoice|parcel|package|refund|offer|quote)\s+"
            r"(?-i:from)|(?:customer\s+(?:service|support|care)|support)(?:\s+team)?\s+"
            r"(?-i:at|of))\s+)"
            rf"(?P<ORGANIZATION>{ORG})"
            rf"|(?:^|(?<=[.!?] ))(?P<ORGANIZATION__2>{ORG})[ \t]+(?:denied|rejected|refused|"
            r"declined|cancell?ed|charged|overcharged|billed|refunded|(?:is|was|are)[ \t]+hiring|"
            r"(?:sent|emailed|called|hired|fired|promoted|owes)[ \t]+(?:me|us|my)|"
            r"laid[ \t]+off)\b"),
            validate=org_named, score=0.7),
        # A firm as business news and deals name it: "partnered with X", "a spokesperson for X",
        # "shares of X", "the lawsuit against X", "X acquired ...", "X announced ...".
        Rule("org_business", rx(
            r"(?i:\b(?:partner(?:ed|ing|s)?\s+(?-i:with)|(?:spokes(?:person|man|woman)|"
            r"representatives?)\s+(?-i:for|of|from)|shares\s+(?-i:of|in)|(?:a|the|its|their)\s+"
            r"stake\s+(?-i:in)|(?:merger|partnership|joint\s+venture|lawsuit|litigation|"
            r"settlement|dispute)\s+(?-i:between|with|against)|acquired\s+by|invest(?:ed|ing|"
            r"ment)?\s+(?-i:in))\s+(?:the\s+)?)"
            rf"(?P<ORGANIZATION>{ORG})"
            rf"|(?:^|(?<=[.!?] )|(?<=\b(?:Last|This|Next)[ \t]year[ \t])|(?<=,[ \t]))"
            rf"(?P<ORGANIZATION__2>{ORG})[ \t]+(?:announced|acquired|unveiled|recalled|reported|"
            r"(?:has|have)[ \t]+offices|(?:is|was)[ \t]+headquartered|went[ \t]+public|filed[ \t]+"
            r"for[ \t]+bankruptcy)\b"),
            validate=org_named, score=0.7),
        # The same tie the other way round: "X has been my employer since 2019", "X is our bank".
        Rule("org_is_my", rx(
            rf"(?P<ORGANIZATION>{ORG})[ \t]+(?:is|was|has[ \t]+been|had[ \t]+been)[ \t]+"
            r"(?:my|our|his|her|their)[ \t]+(?:(?:current|former|old|new|previous|first)[ \t]+)?"
            r"(?:employer|supplier|vendor|client|landlord|bank|insurer|lender|carrier|agency)\b"),
            validate=org_named, score=0.7),
        Rule("org_field", rx(
            r"^[ \t>]*(?i:company|employer|organi[sz]ation|firm|business|workplace|vendor|"
            r"supplier|agency|insurer|lender)(?:[ \t]+name)?[ \t]*:[ \t]*"
            r"(?P<ORGANIZATION>[^\n]{2,60}?)[ \t]*$"), validate=field_org, score=0.75),
        Rule("org_job_name", rx(
            rf"(?P<ORGANIZATION>{ORG})[ \t]+{job}[ \t]+(?={CAPW}[ \t]+{CAPW})"),
            validate=org_named, score=0.7),
        Rule("org_possessive", rx(
            rf"\b(?:my|his|her|their|our|your)[ \t]+(?P<ORGANIZATION>[{_UP}][{_LO}]{{2,}})"
            r"[ \t]+(?=[a-z])"), validate=rare, score=0.6),
        Rule("particle_name", rx(
            rf"(?<![\w'’\-])(?P<PERSON>{CAPW}[ \t]+(?:van|von|de|der|den|ten|ter|da|di|del|du|"
            rf"dos|das|le|la|bin|ibn|al)(?:[ \t]+(?:der|den|de|la|le))?[ \t]+{CAPW})"
            r"(?![\w'’\-])"), validate=lambda s: person_ok(s.split()[0]), score=0.65),
        # A Dutch or German surname alone, its particle in lower case ("van Dijkhuis", "von
        # der Lahn", "ten Brinke"): no English sentence writes these words before a name.
        Rule("particle_surname", rx(
            rf"(?<![\w'’\-])(?P<PERSON>(?:van|von|ten|ter)(?:[ \t]+(?:der|den|de|dem))?[ \t]+"
            rf"{CAPW})(?![\w'’\-])"), validate=no_word_after, score=0.65),
        Rule("person_is_job", rx(
            rf"(?<![\w'’\-])(?P<PERSON>{CAPW})(?:[ \t]+and[ \t]+(?P<PERSON__2>{CAPW}))?[ \t]+"
            rf"{be}[ \t]+(?:(?:an?|the)[ \t]+)?(?:[a-z\-]+[ \t]+)?(?:{_OCC_PEOPLE})s?"
            r"(?=[ \t]*(?:[.,;!?]|$)|[ \t]+(?:at|for|in|who|with|and|from|by|of)\b)"),
            validate=person_ok, score=0.7),
        Rule("person_pronoun", rx(
            rf"(?:^|(?<=[.!?] ))(?P<PERSON>{CAPW})[ \t]+(?:is|was|has|had|will|can|always|"
            rf"never)\b[^.!?\n]{{0,80}}[.!?]?[ \t]*[^.!?\n]{{0,60}}?\b{pronoun}\b"),
            validate=person_ok, score=0.65),
        Rule("speech_to", rx(
            r"(?i:\b(?:said|says|whispered|replied|shouted|yelled|explained|wrote|lied|"
            rf"complained|muttered))[ \t]+{NAME}[ \t]+to[ \t]+(?P<PERSON>{NAME})"),
            validate=lambda s: s.split()[0].lower() not in stop, score=0.75),
        Rule("job_appositive", rx(
            rf"{CAPW}[ \t]+{CAPW},[ \t]+(?:the|our|their|a|an)[ \t]+(?P<TITLE>(?:[A-Za-z\-]+"
            rf"[ \t]+){{0,3}}?[A-Za-z\-]*(?i:{_OCC})s?)[ \t]*,"), score=0.7),
    ]
    # fmt: on
