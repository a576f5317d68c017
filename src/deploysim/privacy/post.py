"""Post-processing of one text's raw detections: relative dates dropped, dates of birth, address
blocks, affiliations, coordinated lists, lists of names after a colon, name propagation within
the text, and the merge into non-overlapping spans (:func:`merge`). :class:`PostProcess` runs
them in that order for :class:`deploysim.privacy.detector.Detector`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from spacy.lang.en.stop_words import STOP_WORDS as _STOP

from deploysim.privacy.rules import (
    CAP,
    CAPW,
    LEGAL,
    NAME,
    ORG,
    PLACE,
    Detection,
    digits,
)
from deploysim.privacy.streets import STREET_WORDS, YEAR
from deploysim.privacy.words import COUNTRIES, NAME_PARTICLES, words

# ---------------------------------------------------------------------------------------------
# Post-processing: relative dates, dates of birth, address blocks, lists, propagation, merging
# ---------------------------------------------------------------------------------------------

# Names that may end in a possessive the text adds ("Acme's", "Oslo's", "Mia's").
_NAMED = frozenset({"PERSON", "ORGANIZATION", "LOCATION", "GPE", "NRP"})

_UPPER = re.compile(r"[A-Z]")
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
_FIRM_WORDS = words(
    """
    inc ltd llc corp corporation group partners technologies holdings gmbh ag plc co company
    markets systems solutions labs services data
    """
)  # last words that make a one-line name in an address block a firm's
_ORG_SUFFIX = re.compile(rf"(?i)\b(?:{'|'.join(_FIRM_WORDS)})\.?$")
_CONNECTOR = r"(?:,[ \t]*and[ \t]+|,[ \t]*|[ \t]+and[ \t]+|[ \t]*&[ \t]*)"
_ITEM = {
    "PERSON": NAME,
    "ORGANIZATION": rf"{CAPW}(?:[ \t]+{CAPW}){{0,3}}",
    "LOCATION": PLACE,
    "ACCOUNT_ID": r"#?[A-Za-z0-9][\w-]{3,}[A-Za-z0-9]",
}
_RIGHT = {k: re.compile(rf"{_CONNECTOR}({v})(?![\w])") for k, v in _ITEM.items()}
_LIST_TAIL = {
    k: re.compile(rf"(?:,[ \t]*{v})*,?[ \t]+(?:and|&)[ \t]+{v}(?![\w])") for k, v in _ITEM.items()
}
_FIRM = re.compile(r"[^\W\d_]{2,}(?:(?:-|[ \t]*&[ \t]*|,[ \t]*|,?[ \t]+and[ \t]+)[^\W\d_]{2,})+")
_AFTER_PERSON = re.compile(rf"[ \t]+(?:from|of|at)[ \t]+({ORG})")
_AFTER_NAME = re.compile(rf"[ \t]+from[ \t]+({ORG})")
_IN_PLACE = re.compile(rf"[ \t]+in[ \t]+({PLACE})(?![\w'’\-])")
_ORG_BEFORE = re.compile(
    rf"\b(?:at|for|with|support|join|joined|joining)[ \t]+({ORG})[ \t]+in[ \t]+$"
)
_LIST_ITEM = rf"(?:{CAP})(?:[ \t]+(?:{CAP})){{0,3}}"
_LIST_ITEM_RE = re.compile(_LIST_ITEM)
_ABBREVIATED = re.compile(rf"(?:{LEGAL}|[A-Z])\.")  # "Ltd.", "J.": a dot of the name
_NAME_LIST = re.compile(
    rf":[ \t]+({_LIST_ITEM}(?:,[ \t]*{_LIST_ITEM})+,?[ \t]+(?:and|&)[ \t]+{_LIST_ITEM})(?![\w'’\-])"
)
_LEFT = {k: re.compile(rf"(?<![\w])({v}){_CONNECTOR}$") for k, v in _ITEM.items()}
# A line that is a street and a house number, in either order ("Kivikuja 7b", "12 Rue Vert",
# "ul. Lipowa 4/2"): a street of any country, known by where it stands (see contact_streets).
_HOUSE = r"\d{1,5}[A-Za-z]?(?:[/-]\d{1,4}[A-Za-z]?)?"
_STREET_WORD = r"[^\W\d_][\w'’.\-]*"
_STREET_LINE = re.compile(
    rf"(?:{_STREET_WORD}[ \t]+){{0,3}}{_STREET_WORD},?[ \t]+{_HOUSE}\.?"
    rf"|(?:{_HOUSE}[ \t]+)?{_HOUSE},?[ \t]+(?:{_STREET_WORD}[ \t]+){{0,3}}{_STREET_WORD}"
)
_CARD_LINE = re.compile(r"[^\W\d_][\w'’&.,/\- ]{0,58}[\w.]")  # words, no digits or labels
_CARD_CONTACTS = frozenset({"PHONE_NUMBER", "EMAIL_ADDRESS", "URL", "STREET_ADDRESS"})
_CONTACT_LABEL = re.compile(
    r"(?i)[ \t>?]*(?:personal info|contact|phone|mobile|tel|e-?mail|website|address|fax|desk)"
    r"[ \t]*:"
)
_POSTCODE_TOWN = re.compile(
    r"(?:[A-Z]{1,2}-)?\d{2,5}(?:[ -]?\d{2,3})?(?:[ \t]?[A-Za-z]{2})?,?[ \t]+"
    r"[^\W\d_][\w'’.\- ]{1,40}"
)  # "9524 QX Oudeland", "73-429 Iława", "H-3363 Dunakeszi"
# A postcode's shapes: "32200", "40577-250", "DK-2100", "114 51", "51-164", "SW1A 1AA",
# "1012 AB"; beside a place or street it is the place's postcode.
_POSTCODE = (
    r"(?:[A-Z]{1,3}-)?\d{4,5}(?:-\d{3,4})?|\d{3}[ \t]\d{2}|\d{2}-\d{3}"
    r"|[A-Z]{1,2}\d[A-Z\d]?[ \t]\d[A-Z]{2}|\d{4}[ \t]?[A-Z]{2}"
)
_ZIP_AFTER = re.compile(rf",?[ \t]+({_POSTCODE})(?![\w-])")
_ZIP_BEFORE = re.compile(rf"(?<![\w-])({_POSTCODE}),?[ \t]+$")
_STREET_END = re.compile(rf"(?i:\b(?:{STREET_WORDS})\.?)$")
_LEADING_NUMBERS = re.compile(r"[ \t>?]*((?:\d{1,6}[A-Za-z]?\.?(?:/\d{1,4})?[ \t]+)+)")
_BLOCK_KINDS = ("PERSON", "TITLE", "ORGANIZATION")  # the lines of a postal block, in order
_STREET_PARTICLES = NAME_PARTICLES | {"via"}  # "Via Roma 12": a street word, not a stop word
_CONTACT = frozenset({"PERSON", "PHONE_NUMBER", "EMAIL_ADDRESS", "ORGANIZATION", "TITLE", "URL"})
_ADDRESS_LABEL = re.compile(r"(?i)\b(?:address|adresse|addr\.?)[ \t]*:?[ \t]*$")


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


class PostProcess:
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
        self.contact_streets()
        self.postal_blocks()
        self.cards()
        self.address_blocks()
        self.house_numbers()
        self.affiliations()
        self.place_postcodes()
        self.coordinated()
        self.name_lists()
        self.propagate()
        return merge(self.dets)

    def trim_people(self) -> None:
        # "Sorry Mia Li", "Thanks John": greetings and stop words are not part of the name; nor
        # is a possessive ("Mia Li's car": the surrogate keeps the "'s").
        out = []
        for d in self.dets:
            if d.entity_type == "PERSON":
                m = _GREETING.match(self.text, d.start, d.end)
                if m and m.end() < d.end:
                    d = Detection(m.end(), d.end, d.entity_type, d.score, d.source)
            possessive = self.text[d.start : d.end].endswith(("'s", "’s"))
            if d.entity_type in _NAMED and possessive and d.end - 2 > d.start:
                d = Detection(d.start, d.end - 2, d.entity_type, d.score, d.source)
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

    def contact_streets(self) -> None:
        # A line that is only a street and a house number is an address when it sits in a
        # contact block (a person, phone, e-mail, firm or title within three lines) or under an
        # "Address:" label; what it says is not English ("Step 2", "Chapter 11" are not).
        lines = _line_spans(self.text)
        for n, (ls, le) in enumerate(lines):
            s, e = _strip_span(self.text, ls, le)
            line = self.text[s:e]
            if not _STREET_LINE.fullmatch(line) or any(
                d.entity_type == "STREET_ADDRESS" and d.start < e and s < d.end for d in self.dets
            ):
                continue
            every = re.findall(r"[^\W\d_]+", line)
            named = [w for w in every if len(w) > 2]
            if not named or all(self.is_common(w) or w.lower() in _STOP for w in named):
                continue
            if any(w.lower() in _STOP and w.lower() not in _STREET_PARTICLES for w in every):
                continue  # "Blais in 2018" is a sentence, not a street
            lo, hi = lines[max(0, n - 3)][0], lines[min(len(lines) - 1, n + 3)][1]
            near = any(
                d.entity_type in _CONTACT and lo <= d.start < hi and not (s <= d.start < e)
                for d in self.dets
            )
            label = n > 0 and _ADDRESS_LABEL.search(self.text[lines[n - 1][0] : lines[n - 1][1]])
            if near or label:
                self.dets = [d for d in self.dets if not (s <= d.start and d.end <= e)]
                self.add(s, e, "STREET_ADDRESS", 0.7, "contact_street")

    def postal_blocks(self) -> None:
        # A postal address written as a block ("ilse vos\nbuyer\nkvarn trä\nlindvägen 7"):
        # one to three short lines of words, then a street line, alone between blank lines
        # (or the text's ends). The street is found by its shape, the lines above by place.
        lines = _line_spans(self.text)
        blank = [not self.text[ls:le].strip(" \t>?") for ls, le in lines]
        for n, (ls, le) in enumerate(lines):
            s, e = _strip_span(self.text, ls, le)
            if n == 0 or not _STREET_LINE.fullmatch(self.text[s:e]):
                continue
            if not self._free(s, e) and not any(
                d.entity_type == "STREET_ADDRESS" and d.start <= s and e <= d.end for d in self.dets
            ):
                continue
            if n + 1 < len(lines) and not blank[n + 1] and not self._postcode_line(*lines[n + 1]):
                continue
            top = n
            while top > 0 and n - top < 3 and not blank[top - 1]:
                top -= 1
            if top == n or (top > 0 and not blank[top - 1]):
                continue  # no lines above, or more than three: not a block
            above = [_strip_span(self.text, *lines[k]) for k in range(top, n)]
            texts = [self.text[a:b] for a, b in above]
            if not all(_CARD_LINE.fullmatch(t) and len(t.split()) <= 5 for t in texts):
                continue
            named = [w for t in [*texts, self.text[s:e]] for w in re.findall(r"[^\W\d_]{3,}", t)]
            if sum(not self.is_common(w) for w in named) < 2:
                continue  # a list of ordinary things, not a person's address
            self.add(s, e, "STREET_ADDRESS", 0.65, "postal_block")
            kinds = ("PERSON", "ORGANIZATION") if len(above) == 2 else _BLOCK_KINDS
            for (a, b), kind in zip(above, kinds, strict=False):
                if self._free(a, b):
                    self.add(a, b, kind, 0.6, "postal_block")

    def _postcode_line(self, ls: int, le: int) -> bool:
        return bool(_POSTCODE_TOWN.fullmatch(self.text, *_strip_span(self.text, ls, le)))

    def house_numbers(self) -> None:
        # "517 Via Roma 12": a house or building number before a street on its line is part
        # of the address.
        out = []
        for d in self.dets:
            if d.entity_type == "STREET_ADDRESS":
                start = self.text.rfind("\n", 0, d.start) + 1
                m = _LEADING_NUMBERS.fullmatch(self.text, start, d.start)
                if m:
                    d = Detection(m.start(1), d.end, d.entity_type, d.score, d.source)
            out.append(d)
        self.dets = out

    def cards(self) -> None:
        # A card or a CV's head: a line that is a person's name, then short lines of words (a
        # job title, a firm) before the contact lines ("Phone:", an e-mail, a street). Those
        # lines are the person's title and employer, whatever words they use.
        lines = _line_spans(self.text)
        people = {(d.start, d.end) for d in self.dets if d.entity_type == "PERSON"}
        for n, span in enumerate(lines):
            if _strip_span(self.text, *span) not in people:
                continue
            below = [x for x in lines[n + 1 : n + 9] if self.text[x[0] : x[1]].strip(" \t>?")]
            if not any(self._contact_line(ls, le) for ls, le in below):
                continue
            kind = "TITLE"
            for ls, le in below[:3]:
                s, e = _strip_span(self.text, ls, le)
                line = self.text[s:e]
                if self._contact_line(ls, le) or not _CARD_LINE.fullmatch(line):
                    break
                if self._free(s, e):
                    self.add(s, e, kind, 0.6, "card")
                kind = "ORGANIZATION"

    def _contact_line(self, ls: int, le: int) -> bool:
        return bool(_CONTACT_LABEL.match(self.text, ls, le)) or any(
            d.entity_type in _CARD_CONTACTS and ls <= d.start < le for d in self.dets
        )

    def _short_line(self, s: int, e: int) -> str | None:
        s, e = _strip_span(self.text, s, e)
        line = self.text[s:e]
        if not line or len(line) > 60 or len(line.split()) > 6 or digits(line) > 6:
            return None
        if any(c in line for c in ":@/") or line.endswith(("?", "!")):
            return None
        return line

    def address_blocks(self) -> None:
        lines = _line_spans(self.text)
        anchors = [d for d in self.dets if d.entity_type == "STREET_ADDRESS"]
        titles = [d for d in self.dets if d.source == "job_line"]
        countries = [d for d in self.dets if d.source == "country"]
        people = {(d.start, d.end) for d in self.dets if d.entity_type == "PERSON"}
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
            if n + 1 < len(lines) and any(_strip_span(self.text, ls, le) == p for p in people):
                # A card: the line after a name line, shaped like a firm ("hale-morrow").
                s, e = _strip_span(self.text, *lines[n + 1])
                if self._firm(self.text[s:e]):
                    self.add(s, e, "ORGANIZATION", 0.65, "address_block")

    def _firm(self, line: str, *, anchored: bool = False) -> bool:
        """Whether a line is shaped like a firm's name: names joined by "-", "&", "and" (not
        all ordinary words, unless the line sits in an address block)."""
        parts = re.split(r"[ \t]*(?:,?[ \t]*\band\b|-|&|,)[ \t]*", line)
        return (
            _FIRM.fullmatch(line) is not None
            and all(len(p) > 1 and p.lower() not in _STOP for p in parts)
            and (anchored or not all(self.is_common(p) for p in parts))
        )

    def _continuation(self, pos: int, le: int) -> None:
        m = re.compile(rf"[ \t,]+({PLACE})(?:[ \t,]+(\d{{3,5}}))?(?=[.?!]?(?:\s|$))").match(
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
            elif lower and self._firm(line, anchored=True):
                etype = "ORGANIZATION"
            elif re.fullmatch(rf"{CAPW}(?:[ \t,\-]+(?:{CAP}|and|&|de|del|la|van|von|ten))*", line):
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

    def _free(self, s: int, e: int) -> bool:
        return not any(x.start < e and s < x.end for x in self.dets)

    def _named(self, value: str) -> bool:
        return value not in COUNTRIES and not (" " not in value and self.is_common(value))

    def affiliations(self) -> None:
        # "Ola Berg from Vantor Capital": an organisation; "Quillmark in Ostvik", "support
        # Brightloom in Lisbon": a place after an organisation, an organisation before a place.
        for d in list(self.dets):
            if d.entity_type in ("PERSON", "ORGANIZATION"):
                # spaCy often calls a person an organisation: "from" follows either.
                after = _AFTER_PERSON if d.entity_type == "PERSON" else _AFTER_NAME
                m = after.match(self.text, d.end)
                if m and self._free(*m.span(1)) and self._named(m.group(1)):
                    self.add(*m.span(1), "ORGANIZATION", 0.65, "affiliation")
            if d.entity_type in ("ORGANIZATION", "LOCATION"):
                m = _IN_PLACE.match(self.text, d.end)
                if m and self._free(*m.span(1)) and not self.is_common(m.group(1).split()[0]):
                    self.add(*m.span(1), "LOCATION", 0.65, "affiliation")
                m = _ORG_BEFORE.search(self.text, max(0, d.start - 80), d.start)
                if m and self._free(*m.span(1)) and self._named(m.group(1)):
                    self.add(*m.span(1), "ORGANIZATION", 0.65, "affiliation")

    def place_postcodes(self) -> None:
        # "Loimaa 32200", "40577-250 Acerra", "Storgatan 3, 114 51": a postcode beside a place,
        # or after a street (a year is no postcode: "Paris 2024"; a number before a street is
        # its house number: "1200 Pine Island Road").
        for d in list(self.dets):
            if d.entity_type not in ("LOCATION", "STREET_ADDRESS"):
                continue
            after = _ZIP_AFTER.match(self.text, d.end)
            street = d.entity_type == "STREET_ADDRESS" or _STREET_END.search(
                self.text, d.start, d.end
            )
            before = (
                None if street else _ZIP_BEFORE.search(self.text, max(0, d.start - 14), d.start)
            )
            for m in (after, before):
                if not m or YEAR.fullmatch(m.group(1)):
                    continue
                s, e = m.span(1)
                # spaCy calls a bare number a date: beside a place, it is the postcode.
                self.dets = [
                    x
                    for x in self.dets
                    if not (x.entity_type == "DATE_TIME" and s <= x.start and x.end <= e)
                ]
                if self._free(s, e):
                    self.add(s, e, "ZIP_CODE", 0.65, "place_postcode")

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

    def name_lists(self) -> None:
        # "Our suppliers: Quarkbyte, Velmora Hext and T Osgrove Price": three or more
        # capitalised items after a colon, each with a word that is not ordinary English
        # ("Teal, Mauve and Ochre" are ordinary words) are names of one kind: the kind of those
        # the model found if they agree, else organisations (the small model often finds none).
        for m in _NAME_LIST.finditer(self.text):
            base = m.start(1)
            items = [(base + x.start(), base + x.end()) for x in _LIST_ITEM_RE.finditer(m[1])]
            if len(items) < 3 or not all(self._unusual(self.text[s:e]) for s, e in items):
                continue
            kinds = {
                d.entity_type for d in self.dets for s, e in items if d.start < e and s < d.end
            }
            if not kinds <= {"PERSON", "ORGANIZATION", "LOCATION"}:
                continue
            etype = kinds.pop() if len(kinds) == 1 else "ORGANIZATION"
            for s, e in items:
                last = self.text[s:e].split()[-1]
                if last.endswith(".") and not _ABBREVIATED.fullmatch(last):
                    e -= 1  # "... and T Osgrove Price." ends the sentence, not the name
                if self._free(s, e):
                    self.add(s, e, etype, 0.6, "name_list")

    def _unusual(self, name: str) -> bool:
        return any(len(w) > 1 and not self.is_common(w) for w in name.split())

    def propagate(self) -> None:
        seeds: dict[str, str] = {}
        for d in self.dets:
            value = self.text[d.start : d.end]
            if len(value) >= 4 and d.entity_type not in ("DATE_TIME", "AGE", "NRP", "TITLE"):
                seeds.setdefault(value, d.entity_type)
            if d.entity_type == "PERSON" and len(value.split()) <= 4:
                for part in re.findall(r"[^\W\d_][\w'’\-]+", value):
                    if (
                        len(part) >= (3 if part[0].isupper() else 4)
                        and (part[0].isupper() or not _UPPER.search(self.text))
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
