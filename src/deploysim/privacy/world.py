"""Names and streets of other countries (``deid-8``): rules that know no English cue.

The labelled file's values were seen by earlier sessions, and the detector had learnt them as
much as their shapes; re-filled with fresh values of many countries (``studies/privacy-unseen``)
its recall fell by eight points. These rules find what such values share instead of the values
themselves: a first name of some country (``faker``'s per-locale lists) alone or before a
surname, two capitalised words neither of which is English, a lower-case first name and
surname, a house number and street words after a cue of place.
"""

from __future__ import annotations

import re

from deploysim.privacy.rules import CAPW, LC, LOWER, NAME, PARTICLE, PLACE, UPPER, Rule, rx
from deploysim.privacy.words import (
    COUNTRIES,
    FIRST_NAMES,
    FOREIGN_STOP_WORDS,
    NAME_PARTICLES,
    WORLD_FIRST_NAMES,
    WORLD_SURNAMES,
)

_WORD = r"[^\W\d_][\w'’\-]*"  # a word of a street's name, in any script and case
_HOUSE = r"\d{1,5}[A-Za-z]?(?:/\d{1,4}[A-Za-z]?)?"
# Kinds of street written after the name, in the languages that do so (general knowledge).
_KINDS_AFTER = (
    r"út|utca|u\.|köz|tér|körút|tänav|põik|maantee|puiestee|ulica|ul\.|nábrežie|námestie|"
    r"trieda|cesta|trg|ulice|náměstí|sokağı|sokak|caddesi|cad\.|bulvarı|gatan|vägen|gata|vei|"
    r"veien|vej|katu|kuja|laan|straat|iela|gatvė|prospekt|bulevar|vegur|stræde|třída|nábřeží|"
    r"šetalište|sétány|rakpart"
)
# A street whose kind follows its name as a word of its own, then the house number:
# "Fülemüle út 29", "Sooviku tänav 4", "Martinská ulica 7" ("Kongens gate" is left out: an
# airport's "gate 12" is no street).
_STREET_KIND_AFTER = re.compile(
    rf"(?<![\w'’\-])(?=(?P<STREET_ADDRESS>{_WORD}(?:[ \t]+{_WORD}){{0,2}}[ \t]+"
    rf"(?:{_KINDS_AFTER})[ \t]+{_HOUSE})(?![\w\-]))",
    re.MULTILINE,
)
# Jobs that introduce a name (general knowledge): "player", "actor", "lawyer"...
_JOBS = (
    r"player|actor|actress|singer|writer|author|novelist|poet|director|producer|coach|"
    r"lawyer|attorney|journalist|reporter|teacher|professor|doctor|nurse|chef|artist|"
    r"painter|photographer|designer|architect|engineer|scientist|researcher|manager|"
    r"founder|entrepreneur|investor|athlete|driver|pilot|officer|detective|senator|mayor|"
    r"councillor|councilor|activist|influencer|musician|drummer|guitarist|dancer|model"
)
_THEN = r"(?:by|on|in|for|last|this|next|with|after|before)\b"  # what follows a place
# What follows a place in lower case, where a sentence goes on ("born in X and ...").
_AFTER_PLACE = rf"(?:{_THEN}|and|but|or|so|when|where|because|to|as|at|until)\b"
# What follows a street in a sentence ("send it to X 4 before Friday", "... if you need it").
_AFTER_STREET = (
    r"(?:for|after|before|and|in|on|at|by|until|if|so|when|because|but|or|last|next|this|"
    r"tomorrow|today|tonight|now|please|since|with|every)\b"
)
_END = r"(?![\w\-@/]|['’](?!s\b))"  # a name's end: no more word, but maybe "'s"
_EDGE = r"(?<![\w'’\-.@/])"  # a word's start that is no part of an address, file or code
# Not right after a capitalised word of 2-15 letters (lookbehinds must have a fixed width).
_NOT_AFTER_CAPITAL = "".join(rf"(?<![{UPPER}][{LOWER}]{{{k}}}[ \t])" for k in range(1, 15))


# Any word, as the subject of what only people do: come from a place, spend a year somewhere,
# say or ask, be a kind of person ("Vorhelst is from Ghent", "Quarmby spent a year at ...",
# "Ilvesto is a very patient person"); the rule takes it when it is no word we know.
_PERSON_SUBJECT = rx(
    rf"(?:^|(?<=[.!?] )|(?<=[.!?]  ))(?P<PERSON>{CAPW})(?=[ \t]+(?:"
    r"(?:is|was)[ \t]+(?:originally[ \t]+)?from\b|(?:lives|lived|works|worked|grew[ \t]+up|"
    r"studied)[ \t]+(?:in|on|at|for|near)\b|spent[ \t]+(?:a|an|one|two|three|\d+|the|"
    r"last|his|her|their)\b|(?:said|told|asked|replied|texted|emailed|messaged)\b|"
    r"(?:is|was)[ \t]+(?:a|an)[ \t]+(?:very[ \t]+|really[ \t]+)?(?:[a-z]+[ \t]+)?"
    r"(?:person|man|woman|guy|girl|boy|lady|gentleman|kid|child|colleague|neighbou?r)\b))"
)
# A name after the job that introduces it: "tennis player Ardith Voss", "the lawyer Jonna
# Pelt".
_JOB_NAME = rx(rf"\b(?:{_JOBS})[ \t]+(?P<PERSON>{CAPW}[ \t]+{CAPW})(?![\w\-])")
# Addressed first: "Ilvesto, can you ...", "Marwick, please ...".
_VOCATIVE_START = rx(
    rf"(?:^|(?<=[.!?] ))(?P<PERSON>{CAPW}),[ \t]+(?=(?:can|could|would|will|do|did|"
    r"are|have|please|I|we|you|let's|thanks|thank)\b)"
)


def world_rules(common: frozenset[str], stop: frozenset[str]) -> list[Rule]:
    """The rules, given ordinary English words (``common``) and stop words, as
    :func:`deploysim.privacy.rules.build_rules` takes them."""

    def is_common(word: str) -> bool:
        w = word.lower().strip(".,'’")
        return w in common and w not in FIRST_NAMES

    def english(w: str) -> bool:  # an ordinary word, or one inflected ("appears", "shows")
        low = w.lower()
        return (
            is_common(low)
            or any(
                low.endswith(x) and is_common(low[: -len(x)]) for x in ("s", "es", "ed", "d", "ing")
            )
            or (low.endswith("ies") and is_common(low[:-3] + "y"))  # "technologies"
        )

    def rare_place(s: str) -> bool:  # a place's name: not all of it English words
        return not all(english(w) for w in s.split())

    def rare_place_lc(s: str) -> bool:  # lower case: ends and starts with no English word
        parts = s.split()
        return (
            not english(parts[0])
            and not english(parts[-1])
            and not any(w in stop or w in FOREIGN_STOP_WORDS for w in (parts[0], parts[-1]))
        )

    def surname_alone(w: str) -> bool:
        return w.lower() in WORLD_SURNAMES and not english(w) and not w.isupper()

    def surname_no(w: str) -> bool:
        # Not a surname: a stop word, a country, or English and no known surname ("Harris",
        # "Young" and "Short" are both, and count as surnames after a first name).
        low = w.lower()
        return low in stop or w in COUNTRIES or (english(w) and low not in WORLD_SURNAMES)

    def world_name(s: str) -> bool:
        parts = s.split()
        first, rest = parts[0], [w for w in parts[1:] if len(w.rstrip(".")) > 1]
        return (
            first.lower() in WORLD_FIRST_NAMES
            and not (len(first) > 1 and first.isupper())  # "MAX", "BERT": acronyms, code
            # "Toby Walsh", not a lone "Toby"; "True Self" is no name, a census one may be.
            and (
                not is_common(first)
                or (bool(rest) and first.lower() in FIRST_NAMES)
                or (bool(rest) and all(not english(w) or w.lower() in WORLD_SURNAMES for w in rest))
            )
            and first not in COUNTRIES
            and not any(surname_no(w) for w in rest)
        )

    def could_name(w: str) -> bool:  # no acronym, stop word, country or short word
        return not w.isupper() and w.lower() not in stop and w not in COUNTRIES and len(w) > 2

    def unknown_word(w: str) -> bool:  # a word of no language we know, in no other list
        return could_name(w) and not english(w) and w.lower() not in FOREIGN_STOP_WORDS

    # A verb only people take ("X is from", "X spent a year", "X said"): a word of no language
    # we know, or a known first name or surname even if it is an English word too ("Lucas",
    # "Fleming", "Nadir").
    def known_or_unknown(w: str) -> bool:
        low = w.lower()
        named = low in WORLD_FIRST_NAMES or low in WORLD_SURNAMES
        return unknown_word(w) or (named and could_name(w))

    def job_name(s: str) -> bool:
        parts = s.split()
        return not any(surname_no(w) for w in parts[1:]) and (
            parts[0].lower() in WORLD_FIRST_NAMES or any(not english(w) for w in parts)
        )

    def rare_pair(s: str) -> bool:
        s = re.sub(r"['’]s$", "", s)  # "Ilkka Varjonen's": a name, then the possessive
        parts = [w for w in s.split() if len(w.rstrip(".")) > 1]
        return (
            len(parts) == 2
            and parts[0] != parts[1]
            and not any(
                english(w) or w.isupper() or w in COUNTRIES or w.lower() in stop or len(w) < 3
                for w in parts
            )
            and not any(c in s for c in "'’")  # "Cuz You’re": speech, not a name
            and not parts[0].endswith("ing")  # "Introducing Acme"
        )

    def world_name_lc(s: str) -> bool:
        # Lower case: a first name then a surname, neither of them English nor a word of
        # another language's grammar ("vida humana" has no such word, "una lista" has).
        parts = s.split()
        last = parts[-1].lower()
        return (
            s.islower()  # "val apiKey" is code
            and world_name(s)
            # "crystal clear" is the word, even if a name too; "crystal m. hale" is a name.
            and (parts[0] not in common or (len(parts) == 3 and parts[1].endswith(".")))
            and (last in WORLD_SURNAMES or last not in FOREIGN_STOP_WORDS)
        )

    def street_cued(s: str) -> bool:
        # The words of the name, not a house number's letter ("3a/1").
        named = [w for t in s.split() if not any(c.isdigit() for c in t)
                 for w in re.findall(r"[^\W\d_]+", t)]  # fmt: skip
        return (
            any(len(w) > 2 and not english(w) for w in named)
            and not any(w.lower() in stop and w.lower() not in NAME_PARTICLES for w in named)
            and not any(w.isupper() and len(w) > 1 for w in named)  # "GPT 4", "USB 3"
        )

    # fmt: off
    return [
        # A first name of some country that is no English word, alone or before surnames
        # (zero-width at each word, so a rejected "Dear Ana Lind" still leaves "Ana Lind").
        Rule("world_name", rx(
            rf"{_EDGE}(?=(?P<PERSON>{CAPW}(?:[ \t]+[{UPPER}]\.?)?"
            rf"(?:[ \t]+(?:{PARTICLE})?{CAPW}){{1,2}}){_END})"),
            validate=world_name, score=0.65),
        # Alone, a first name is a person unless it is part of a run of capitalised words
        # ("Santa Monica", "Melvin Capital": a place or a firm, for other rules to find).
        Rule("world_name_alone", rx(
            rf"{_EDGE}{_NOT_AFTER_CAPITAL}(?P<PERSON>{CAPW}){_END}(?![ \t]+{CAPW})"),
            validate=world_name, score=0.65),
        # A surname of some country alone, as the subject of a sentence ("Menard is from
        # Lyon", "Why is Okafor so quiet?"), when it is no English word.
        Rule("surname_subject", rx(
            rf"(?:^|(?<=[.!?] )|(?<=\bWhy is )|(?<=\bwhy is ))(?P<PERSON>{CAPW})"
            r"(?=[ \t]+(?:is|was|has|had|spent|said|says|listed|will|would|can|could|so)\b)"),
            validate=surname_alone, score=0.6),
        Rule("person_subject", _PERSON_SUBJECT, validate=known_or_unknown, score=0.6),
        Rule("job_name", _JOB_NAME, validate=job_name, score=0.65),
        # Addressed by name ("Grant, could you ...", "Okafor, can I ..."): a listed name even
        # when it is an English word too, as after the verbs only people take.
        Rule("vocative_start", _VOCATIVE_START, validate=known_or_unknown, score=0.6),
        Rule("world_name_lc", rx(
            rf"{_EDGE}(?=(?P<PERSON>[^\W\d_A-Z][^\W\d_]{{2,}}(?:[ \t]+[a-z]\.?)?"
            rf"[ \t]+[^\W\d_A-Z][^\W\d_]{{2,}}){_END})"),
            validate=world_name_lc, score=0.6),
        # Two capitalised words that are neither English nor acronyms ("Ilkka Varjonen"): a
        # name of a person, or of a firm or place, all of them personal in a user's text.
        Rule("rare_pair", rx(
            rf"{_EDGE}(?=(?P<PERSON>{CAPW}[ \t]+(?:[{UPPER}]\.?[ \t]+)?{CAPW})"
            rf"{_END})"), validate=rare_pair, score=0.6),
        # A street of any country after a cue of place ("meet me at", "send it to", "it's in",
        # "billing address with"): a house number and one to three words, either order, that
        # are not all English; a number that reads as a year does not lead.
        # The cue alone is consumed (the street is a lookahead), so that "is at X 9" is tried
        # again from "at"; the fewest words that reach a house number or the sentence's end.
        Rule("street_cued", rx(
            r"(?i:\b(?:at|to|with|is|in|on|from)[ \t]+|\b(?:address|user)[ \t]*:[ \t]*)"
            rf"(?=(?P<STREET_ADDRESS>(?:(?:al|ul|pl|bul|av|avda|str)\.[ \t]+)?{_WORD}"
            rf"(?:[ \t]+{_WORD}){{0,2}}?,?[ \t]+{_HOUSE}"
            rf"|(?!(?:1[89]|20)\d\d\b){_HOUSE},?[ \t]+{_WORD}(?:[ \t]+{_WORD}){{0,2}}?)"
            rf"(?=[ \t]*(?:[,;!?]|\.(?!\w)|$)|[ \t]+{_AFTER_STREET}))"),
            validate=street_cued, score=0.7),
        Rule("street_kind_after", _STREET_KIND_AFTER, validate=street_cued, score=0.7),
        # Places and jobs of any name, known by where they stand: "Southern X", "X was fun to
        # visit", "In X, people ...", "returned to x by ..." (lower case); "Jo Lind, the
        # harbour pilot, said" (any job, not only the occupations the word list has).
        Rule("place_cued", rx(
            r"\b(?:Northern|Southern|Eastern|Western|Central|Upper|Lower|Greater)[ \t]+"
            rf"(?P<LOCATION>{PLACE})"
            rf"|(?P<LOCATION__2>{PLACE})[ \t]+(?:was|is|were|are)\b[^.!?\n]{{0,30}}\bto\s+visit\b"
            rf"|(?:^|(?<=[.!?] ))In[ \t]+(?P<LOCATION__3>{PLACE})(?=,|[ \t]+(?:they|we|people|you|"
            r"there|locals|everyone)\b)"), validate=rare_place, score=0.65),
        # In lower case, after the verbs of a person's own moves ("went back to lihula",
        # "born in turzovka and ...", "drove from breiðdalsvík to ..."), not "comes from numpy".
        Rule("place_went_lc", rx(
            r"\b(?:(?:returned|went|moved|flew|drove|travell?ed|relocated|came)\s+(?:back\s+)?to|"
            r"(?:born|raised|living|lives|lived|stationed|gr[eo]w\s+up)\s+(?:in|near)|"
            r"(?:moved|flew|drove|travell?ed|relocated|came)\s+(?:here\s+)?from|been\s+to)\s+"
            rf"(?P<LOCATION>{LC}{{2,}}(?:[ \t]+(?!{_AFTER_PLACE}){LC}*){{0,2}})"
            rf"(?=[ \t]*(?:[.,;!?\n]|$)|[ \t]+{_AFTER_PLACE})"),
            validate=rare_place_lc, score=0.6),
        Rule("title_appositive", rx(
            rf"{NAME},[ \t]+the[ \t]+(?P<TITLE>[^\n,\d]{{2,60}}?),[ \t]+(?:said|says|told|added|"
            r"explained|wrote|noted|confirmed|stated|replied)\b"), score=0.65),
    ]
    # fmt: on
