"""De-identification of conversations: detectors -> typed placeholders -> consistent surrogates.

:class:`Deidentifier` finds personal information in every text field of a conversation (messages,
system prompts, reasoning, tool-call arguments as JSON values, tool results, logged reference
responses, provenance metadata) with :class:`~deploysim.privacy.detector.Detector`, groups the
mentions into entities (``PERSON_1``, ``EMAIL_ADDRESS_2``...) and replaces every mention of an
entity with one synthetic surrogate that keeps the format (an e-mail stays an e-mail, a card
number passes Luhn, dates keep their order). The generator sees only the entity type, its index,
a format descriptor of the mention and a keyed seed ``HMAC(key, conversation salt | type | index)``,
never the original value. Account identifiers are dropped from metadata, the source id becomes a
keyed pseudonym, and a residual audit re-runs detection around every replacement
(``strict=True`` drops conversations where it still finds something).

Canonicalisation (what counts as "the same entity"): e-mails, URLs and ids compare
case-insensitively (ids also without separators); names compare case-, accent-form- and
title-insensitively, and a one-word mention ("Tessa", "Okafor") joins the unique multi-word name
of the conversation that has it as first or last word ("Tessa Okafor"); full dates compare as
calendar dates (``2024-05-20`` = ``May 20, 2024``), and a date without year joins the unique full
date with the same month and day.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict

from deploysim.keys import load_secret_key, pseudonym
from deploysim.privacy.detector import Detector
from deploysim.privacy.rules import Detection
from deploysim.privacy.surrogates import EntityTable, person_tokens
from deploysim.privacy.walk import Walker
from deploysim.privacy.words import NATIONALITIES, words
from deploysim.schema import (
    Conversation,
    Provenance,
)

DEID_VERSION = "deid-13"
"""Version of the de-identification behaviour; bumped whenever its output can change."""

DEFAULT_KEEP: frozenset[str] = frozenset()
"""Types detected but kept by default: none. Nationalities and religions (``NRP``) are replaced
by another of their kind, so a remark about a group stays one; a language named as a language
("answer in English") is not a detection at all (see :func:`_renamed`)."""

INTRODUCED_TYPES: frozenset[str] = frozenset(
    {"PERSON", "ORGANIZATION", "LOCATION", "NRP", "DATE_TIME", "TITLE", "URL"}
)
"""Types of which a mention the logged model introduced is kept (``keep_introduced``).

Personal data enters a conversation through its inputs (the user's turns, the system prompt,
tool results, metadata). A name, place, organisation, date, title or link that appears only in
the assistant's turns, sharing no distinctive word with any input, is the model's own statement
about the world (a film's directors, a list of manufacturers, a documentation link), and
replacing it turns a true answer into a false one under the graders. Contacts, ids, addresses
and numbers are replaced wherever they appear."""

PEOPLE_ANSWER: frozenset[str] = frozenset({"oasst"})
"""Log formats whose assistant turns people wrote (OpenAssistant's volunteers): what such a
turn says about its author is personal, so ``keep_introduced`` does not apply to them."""

_KEY_TYPES = {
    key: etype
    for etype, keys in (
        ("PERSON", "first_name firstname given_name last_name lastname family_name surname "
         "full_name fullname passenger_name customer_name user_name username contact_name"),
        ("EMAIL_ADDRESS", "email email_address e_mail mail"),
        ("PHONE_NUMBER", "phone phone_number mobile telephone tel fax"),
        ("STREET_ADDRESS", "address address1 address2 address_line1 address_line2 street "
         "street_address"),
        ("LOCATION", "city town province state country region"),
        ("ZIP_CODE", "zip zipcode zip_code postal_code postcode"),
        ("DATE_OF_BIRTH", "dob date_of_birth birthdate birth_date birthday"),
        ("ACCOUNT_ID", "user_id account_id customer_id member_id reservation_id reservations "
         "booking_id order_id orders confirmation confirmation_code payment_id "
         "payment_method_id card_id last_four last4 ticket_id case_id"),
        ("CREDIT_CARD", "card_number credit_card_number"),
        ("IBAN_CODE", "iban"),
        ("US_SSN", "ssn"),
        ("IP_ADDRESS", "ip ip_address"),
        ("SECRET", "password api_key apikey token secret access_token refresh_token "
         "client_secret"),
    )
    for key in keys.split()
}  # fmt: skip
_RELATIVE_TIME = re.compile(
    r"(?i)(?:\d{1,2}(?::\d{2}){1,2}\s*(?:[ap]\.?m\.?)?|\d{1,2}\s*[ap]\.?m\.?)(?:\s*[A-Z]{2,4})?|"
    r"noon|midnight|"
    r"(?:in\s+the\s+)?(?:morning|afternoon|evening|night)"
)


class DeidResult(BaseModel):
    """The outcome of de-identifying one conversation: counts only, never a raw value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    conversation: Conversation | None
    """The de-identified conversation; ``None`` when ``strict`` dropped it."""
    entities: dict[str, int]
    """Distinct entities replaced, per type."""
    mentions: dict[str, int]
    """Mentions replaced, per type."""
    residual: int
    """Detections the audit still found in the de-identified text."""
    residual_types: dict[str, int]
    dropped_metadata_keys: int
    dropped: bool = False
    version: str = DEID_VERSION


# ---------------------------------------------------------------------------------------------
# The de-identifier
# ---------------------------------------------------------------------------------------------

_AUDIT_MARGIN = 40  # characters re-checked each side of a surrogate (> spaCy's receptive field)


@dataclass
class _Plan:
    conv: Conversation
    table: EntityTable
    texts: list[tuple[str, str | None, bool]] = field(default_factory=list)
    """Every text with its JSON-key hint and whether the logged model wrote it."""
    heard: frozenset[str] = frozenset()
    """The words of the conversation's inputs (casefolded)."""
    heard_text: str = ""
    """The inputs' words, casefolded, one text per line."""
    sweep: re.Pattern[str] | None = None
    sweep_types: dict[str, str] = field(default_factory=dict)
    type_of: dict[str, str] = field(default_factory=dict)
    windows: list[tuple[str, list[tuple[int, int]], bool]] = field(default_factory=list)
    mentions: Counter[str] = field(default_factory=Counter)
    residual: Counter[str] = field(default_factory=Counter)
    dropped_keys: int = 0


class Deidentifier:
    """Replaces personal information in conversations with consistent synthetic surrogates.

    Build once (it loads the NLP model) and reuse; :meth:`deidentify_many` batches detection
    across conversations. ``key`` is the secret behind surrogate seeds and source-id pseudonyms
    (default: :func:`deploysim.keys.load_secret_key`). ``keep`` lists entity types that are
    detected but left in place; ``strict`` drops a conversation whose residual audit still
    finds something; ``audit=False`` skips the audit. ``keep_introduced`` (default) leaves in
    place what only the logged model said: mentions of :data:`INTRODUCED_TYPES` in assistant
    turns that share no distinctive word with the conversation's inputs.
    """

    def __init__(
        self,
        *,
        key: bytes | None = None,
        strict: bool = False,
        keep: Iterable[str] = DEFAULT_KEEP,
        audit: bool = True,
        detector: Detector | None = None,
        keep_introduced: bool = True,
    ) -> None:
        self.key = load_secret_key() if key is None else key
        self.strict = strict
        self.keep = frozenset(keep)
        self.audit = audit
        self.keep_introduced = keep_introduced
        self.detector = detector if detector is not None else Detector()

    def deidentify(self, conv: Conversation) -> DeidResult:
        """De-identify one conversation."""
        return self.deidentify_many([conv])[0]

    def deidentify_many(self, convs: Sequence[Conversation]) -> list[DeidResult]:
        """De-identify conversations, detecting in one batch across all of them."""
        plans = [self._collect(c) for c in convs]
        todo = list(dict.fromkeys(t for p in plans for t, h, _ in p.texts if _hint_type(h) is None))
        dets = dict(zip(todo, self.detector.detect_many(todo), strict=True))
        for plan in plans:
            self._resolve(plan, dets)
        new = [self._rewrite(plan, dets) for plan in plans]
        if self.audit:
            self._audit(plans)
        return [self._result(plan, conv) for plan, conv in zip(plans, new, strict=True)]

    # -- steps ----------------------------------------------------------------------------------

    def _replaceable(self, etype: str, value: str) -> bool:
        if etype in self.keep or not any(c.isalnum() for c in value):
            return False
        # Times of day and durations are not identifying; replacing times of day breaks
        # agentic tool results, and durations change what an answer says.
        return not (etype == "DATE_TIME" and not _is_date(value))

    def _introduced(self, plan: _Plan, etype: str, value: str, model: bool) -> bool:
        """Whether a mention is the logged model's own: kept, see :data:`INTRODUCED_TYPES`."""
        if not (model and self.keep_introduced and etype in INTRODUCED_TYPES):
            return False
        tokens = [w for w in _WORDS.findall(value.casefold()) if len(w) > 2 or w.isdigit()]
        distinctive = [w for w in tokens if w.isdigit() or not self.detector.is_common(w)]
        if distinctive:
            return not any(w in plan.heard for w in distinctive)
        # Only ordinary words ("The Big Sleep"): introduced unless the inputs hold the phrase.
        return not tokens or f" {' '.join(tokens)} " not in plan.heard_text

    def _spans(
        self,
        plan: _Plan,
        text: str,
        hint: str | None,
        dets: Mapping[str, Sequence[Detection]],
        model: bool,
    ) -> list[Detection]:
        etype = _hint_type(hint)
        if etype is not None:
            s, e = len(text) - len(text.lstrip()), len(text.rstrip())
            found = [Detection(s, e, etype, 1.0, "json_key")] if e > s else []
            return [d for d in found if self._replaceable(d.entity_type, text[d.start : d.end])]
        found = [r for d in dets.get(text, ()) if (r := _renamed(d, text)) is not None]
        return [
            d
            for d in found
            if self._replaceable(d.entity_type, value := text[d.start : d.end])
            and not self._introduced(plan, d.entity_type, value, model)
        ]

    def _collect(self, conv: Conversation) -> _Plan:
        plan = _Plan(conv, EntityTable(self.key, conv.content_hash()))

        def record(text: str, hint: str | None) -> str:
            plan.texts.append((text, hint, walker.model))
            return text

        walker = Walker(record, lambda k: k, model_answers=_model_answers(conv))
        walker.conversation(conv)
        if conv.provenance is not None:
            walker.metadata(conv.provenance.metadata)
        heard = [_WORDS.findall(text.casefold()) for text, _, model in plan.texts if not model]
        plan.heard = frozenset(w for tokens in heard for w in tokens)
        # Padded words, so "the big sleep" matches "The Big Sleep!" but not "the big sleepover".
        plan.heard_text = "\n".join(f" {' '.join(tokens)} " for tokens in heard)
        return plan

    def _resolve(self, plan: _Plan, dets: Mapping[str, Sequence[Detection]]) -> None:
        mentions: list[tuple[str, str, str | None]] = []
        for text, hint, _ in plan.texts:
            if _hint_type(hint) is not None:  # a JSON key names the type: it wins
                plan.type_of[text.strip()] = _hint_type(hint) or ""
        spans = [
            (text, hint, self._spans(plan, text, hint, dets, model))
            for text, hint, model in plan.texts
        ]
        # A word of a person's name is that person even where NER typed it otherwise.
        name_words = {
            w
            for text, _, found in spans
            for d in found
            if d.entity_type == "PERSON" and len(person_tokens(text[d.start : d.end])) > 1
            for w in text[d.start : d.end].split()
        }
        prev: tuple[str, str | None] = ("", None)
        for text, hint, found in spans:
            for d in found:
                value = text[d.start : d.end]
                etype = "PERSON" if value.strip() in name_words else d.entity_type
                etype = plan.type_of.setdefault(value.strip(), etype)
                mentions.append((etype, value, hint))
            if hint in ("last_name", "lastname", "surname") and prev[1] in (
                "first_name",
                "firstname",
            ):
                mentions.append(("PERSON", f"{prev[0].strip()} {text.strip()}", None))
            prev = (text, hint)
        # Each word of a full name is swept on its own too: "Hello Marisol!" in a reply to
        # "I'm Marisol Quintero" is the same person even where NER misses the lone word.
        mentions += [
            ("PERSON", w, None)
            for w in sorted(name_words)
            if len(w) > 2 and w[0].isupper() and w.isalpha() and not self.detector.is_common(w)
        ]
        plan.table.add(mentions)
        known: dict[str, str] = {}
        for etype, text in plan.table.mention_key:
            value = text.strip()
            # An ordinary word ("Will", "May") is swept only as a surname ("Smith").
            common = len(value.split()) == 1 and self.detector.is_common(value)
            surname = etype == "PERSON" and value.casefold() in plan.table.lasts
            if len(value) >= 3 and (not common or surname):
                known.setdefault(value, etype)
        if known:
            alt = "|".join(re.escape(w) for w in sorted(known, key=len, reverse=True))
            plan.sweep = re.compile(rf"(?<![\w@.])(?:{alt})(?![\w@])")
            plan.sweep_types = known

    def _rewrite(self, plan: _Plan, dets: Mapping[str, Sequence[Detection]]) -> Conversation:
        def fn(text: str, hint: str | None) -> str:
            spans = self._spans(plan, text, hint, dets, walker.model)
            return self._replace(plan, text, spans, model=walker.model)

        walker = Walker(
            fn,
            lambda k: self._replace(plan, k, [], audit=False),
            model_answers=_model_answers(plan.conv),
        )
        conv = walker.conversation(plan.conv)
        prov = conv.provenance
        if prov is not None:
            source_id = None if prov.source_id is None else pseudonym(prov.source_id, self.key)
            prov = Provenance(
                source_format=prov.source_format,
                source_file=prov.source_file,
                record=prov.record,
                source_id=source_id,
                metadata=walker.metadata(prov.metadata),
            )
            conv = conv.model_copy(update={"provenance": prov})
        plan.dropped_keys = walker.dropped
        return conv

    def _replace(
        self,
        plan: _Plan,
        text: str,
        spans: list[Detection],
        audit: bool = True,
        model: bool = False,
    ) -> str:
        out: list[str] = []
        sur: list[tuple[int, int]] = []
        size = 0

        def emit(piece: str, etype: str | None = None, value: str = "") -> None:
            nonlocal size
            if etype is not None:
                etype = plan.type_of.get(value.strip(), etype)
                piece = plan.table.surrogate(etype, value)
                plan.mentions[etype] += 1
                sur.append((size, size + len(piece)))
            out.append(piece)
            size += len(piece)

        def segment(s: int, e: int) -> None:
            pos = s
            if plan.sweep is not None:
                for m in plan.sweep.finditer(text, s, e):
                    emit(text[pos : m.start()])
                    emit("", plan.sweep_types[m.group()], m.group())
                    pos = m.end()
            emit(text[pos:e])

        pos = 0
        for d in spans:
            segment(pos, d.start)
            emit("", d.entity_type, text[d.start : d.end])
            pos = d.end
        segment(pos, len(text))
        new = "".join(out)
        if sur and audit and self.audit:
            covered = sum(e - s for s, e in sur)
            if covered < len(new.strip()):  # a text that is all surrogate has nothing left
                plan.windows.extend((t, s, model) for t, s in _windows(new, sur))
        return new

    def _audit(self, plans: Sequence[_Plan]) -> None:
        jobs = [(plan, *window) for plan in plans for window in plan.windows]
        found = self.detector.detect_many([text for _, text, _, _ in jobs])
        for (plan, text, spans, model), dets in zip(jobs, found, strict=True):
            for d in dets:
                value = text[d.start : d.end]
                if not self._replaceable(d.entity_type, value):
                    continue
                if self._introduced(plan, d.entity_type, value, model):
                    continue  # left in place on purpose, not missed
                if not any(s < d.end and d.start < e for s, e in spans):
                    plan.residual[d.entity_type] += 1

    def _result(self, plan: _Plan, conv: Conversation) -> DeidResult:
        residual = sum(plan.residual.values())
        dropped = self.strict and residual > 0
        entities = Counter(e.etype for e in plan.table.entities.values())
        return DeidResult(
            conversation=None if dropped else conv,
            entities=dict(sorted(entities.items())),
            mentions=dict(sorted(plan.mentions.items())),
            residual=residual,
            residual_types=dict(sorted(plan.residual.items())),
            dropped_metadata_keys=plan.dropped_keys,
            dropped=dropped,
        )


def _renamed(d: Detection, text: str) -> Detection | None:
    """A detection as replaced: a language named as a language is dropped, other NRP kept.

    spaCy's NORP also tags names ("Zentrivo"): only a known nationality, religion or language
    word stays NRP; anything else is handled as an organisation. "Answer in English" must stay
    English for a faithful replay, so a language word in a language context is no detection.
    """
    if d.entity_type != "NRP":
        return d
    value = text[d.start : d.end].strip().lower()
    if value not in NATIONALITIES and value[:-1] not in NATIONALITIES:
        return Detection(d.start, d.end, "ORGANIZATION", d.score, d.source)
    before = _LANGUAGE_BEFORE.search(text, max(0, d.start - 40), d.start)
    if before or _LANGUAGE_AFTER.match(text, d.end):
        return None
    return d


# "in English", "translate it into French", "speak German", "Spanish translation"...
_LANGUAGE_BEFORE = re.compile(
    r"(?i)\b(?:in|into|to|from|speak|speaks|speaking|spoke|write|writes|writing|learn|learning|"
    r"study|studying|teach|teaching|read|understand|understands|know|knows|translate|"
    r"translated|translating|fluent|native|using|reply|respond|answer)\s+(?:plain\s+|simple\s+"
    r"|good\s+|proper\s+|only\s+)?$"
)
_LANGUAGE_AFTER = re.compile(
    r"(?i)\s+(?:language|languages|translation|translations|version|speakers?|text|word|words|"
    r"grammar|spelling|subtitles?|vocabulary|sentence|sentences|phrase|phrases|lessons?|"
    r"course|teacher|tutor|dictionary|keyboard|accent|locale)\b"
)


_WORDS = re.compile(r"\w+")
_MONTH = re.compile(
    r"(?i)\b(?:jan|feb|mar|apr|jun|jul|aug|sept?|oct|nov|dec)[a-z]*\.?(?![a-z])|\bMay\b|"
    r"\b(?:mon|tues?|wed(?:nes)?|thu(?:rs)?|fri|sat(?:ur)?|sun)(?:day)?\b"
)
_DURATION = re.compile(
    r"(?i)\d+(?:[.,]\d+)?(?:\s*-\s*\d+)?[\s-]*(?:(?:full|whole|working|business|calendar)\s+)?"
    r"(?:seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?|yrs?|decades?|"
    r"centuries|century)\b"
)

_TIME_WORDS = frozenset(
    words(
        """a an the of in on at for by to and or per each every this that these those next last
    past previous coming following first second third fourth final early mid late earlier later
    ago before after since until about around over under nearly almost roughly approximately
    more less than few several many some couple half whole full entire all one two three four
    five six seven eight nine ten eleven twelve fifteen twenty thirty forty fifty hundred dozen
    today tonight tomorrow yesterday now then currently recently soon once twice daily weekly
    monthly quarterly yearly annually annual biweekly fortnightly hourly nightly overnight
    second seconds minute minutes hour hours day days week weeks weekend weekends fortnight
    month months quarter quarters year years decade decades century centuries season seasons
    spring summer autumn fall winter holiday holidays morning mornings afternoon evening night
    nights noon midnight dawn dusk time times period term semester our your my their his her
    its current same other"""
    )
)


def _is_date(value: str) -> bool:
    """Whether a DATE_TIME detection can date something: it has a month, a weekday or a number
    that is not a duration. A time of day, a duration ("4 full days", "six months"), a season,
    "quarterly" or "your day" identifies no one, and replacing them changes meaning. (Weekdays
    are replaced, as labelled PII sets count them.)"""
    text = value.strip()
    if _RELATIVE_TIME.fullmatch(text):
        return False
    if _MONTH.search(text):
        return True
    # Every word must be time vocabulary: "Weeks-Rivas" (a firm spaCy dated) stays a date.
    tokens = re.findall(r"[^\W\d_]+|\d+", _DURATION.sub(" ", text).casefold())
    return not all(w in _TIME_WORDS for w in tokens)


def _model_answers(conv: Conversation) -> bool:
    """Whether a model wrote the conversation's assistant turns (see :data:`PEOPLE_ANSWER`)."""
    return conv.provenance is None or conv.provenance.source_format not in PEOPLE_ANSWER


def _hint_type(hint: str | None) -> str | None:
    return None if hint is None else _KEY_TYPES.get(hint)


def _windows(text: str, spans: list[tuple[int, int]]) -> list[tuple[str, list[tuple[int, int]]]]:
    """Stretches of ``text`` around surrogates (cut at whitespace), with the surrogates in each."""
    merged: list[list[int]] = []
    for s, e in spans:
        ws = max(0, s - _AUDIT_MARGIN)
        while ws > 0 and not text[ws - 1].isspace():
            ws -= 1
        we = min(len(text), e + _AUDIT_MARGIN)
        while we < len(text) and not text[we].isspace():
            we += 1
        if merged and ws <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], we)
        else:
            merged.append([ws, we])
    return [
        (text[ws:we], [(s - ws, e - ws) for s, e in spans if ws <= s and e <= we])
        for ws, we in merged
    ]
