"""De-identification of conversations: detectors -> typed placeholders -> consistent surrogates.

:class:`Deidentifier` finds personal information in every text field of a conversation (messages,
system prompts, reasoning, tool-call arguments as JSON values, tool results, logged reference
responses, provenance metadata) with :class:`~deploysim.privacy_recognizers.Detector`, groups the
mentions into entities (``PERSON_1``, ``EMAIL_ADDRESS_2``...) and replaces every mention of an
entity with one synthetic surrogate that keeps the format (an e-mail stays an e-mail, a card
number passes Luhn, dates keep their order). The generator sees only the entity type, its index,
a format descriptor of the mention and a keyed seed ``HMAC(key, conversation salt | type | index)``,
never the original value. Account identifiers are dropped from metadata, the source id becomes a
keyed pseudonym, and a residual audit re-runs detection around every replacement
(``strict=True`` drops conversations where it still finds something).

Canonicalisation (what counts as "the same entity"): e-mails, URLs and ids compare
case-insensitively (ids also without separators); names compare case-, accent-form- and
title-insensitively, and a one-word mention ("Mia", "Li") joins the unique multi-word name of the
conversation that has it as first or last word ("Mia Li"); full dates compare as calendar dates
(``2024-05-20`` = ``May 20, 2024``), and a date without year joins the unique full date with the
same month and day.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict

from deploysim.keys import load_secret_key, pseudonym
from deploysim.privacy_recognizers import (
    COUNTRIES,
    NATIONALITIES,
    RELIGIONS,
    Detection,
    Detector,
    words,
)
from deploysim.schema import (
    Conversation,
    JSONValue,
    Message,
    OtherPart,
    Provenance,
    ReasoningPart,
    Reference,
    TextPart,
    ToolCall,
)

DEID_VERSION = "deid-1"
"""Version of the de-identification behaviour; bumped whenever its output can change."""

DEFAULT_KEEP: frozenset[str] = frozenset()
"""Types detected but kept by default: none. Nationalities and religions (``NRP``) are replaced
by another of their kind, so a remark about a group stays one; a language named as a language
("answer in English") is not a detection at all (see :func:`_renamed`)."""

_ACCOUNT_KEY = re.compile(
    r"(?:^|_)(?:user|account|acct|org|organi[sz]ation|customer|member|device|client|tenant|"
    r"session|visitor|subscriber|owner|employee)(?:_?(?:id|hash|name|email|key))?$|e_?mail|"
    r"(?:^|_)ip(?:_|$)|ip_?(?:address|hash)|user_?agent|(?:^|_)phone|^headers?$|^cookies?$|"
    r"^(?:name|username|login|author|sender|recipient)$"
)
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
_HONORIFIC = re.compile(r"(?i)^(?:mr|mrs|ms|miss|mx|dr|prof|sir|dame|rev|fr|hon)\.?\s+")
_SEP = re.compile(r"[^0-9A-Za-z]")
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
# Walking every text field of a conversation
# ---------------------------------------------------------------------------------------------

TextFn = Callable[[str, str | None], str]


def _norm_key(key: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", key.lower()).strip("_")


def _walk_json(value: JSONValue, fn: TextFn, key_fn: Callable[[str], str], hint: str | None) -> Any:
    if isinstance(value, dict):
        return {key_fn(k): _walk_json(v, fn, key_fn, _norm_key(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk_json(v, fn, key_fn, hint) for v in value]
    if isinstance(value, str):
        return fn(value, hint)
    return value


def _json_text(text: str) -> tuple[Any, dict[str, Any]] | None:
    """The JSON value in ``text`` and the ``json.dumps`` options that reproduce it exactly."""
    if text[:1] not in "{[":
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    for opts in (
        {},
        {"separators": (",", ":")},
        {"ensure_ascii": False},
        {"separators": (",", ":"), "ensure_ascii": False},
    ):
        if json.dumps(value, **opts) == text:
            return value, opts
    return None


@dataclass
class _Walker:
    """Applies ``fn`` to every text of a conversation (``key_fn`` to JSON object keys)."""

    fn: TextFn
    key_fn: Callable[[str], str]
    drop_keys: bool = False
    dropped: int = 0

    def json_text(self, text: str, hint: str | None = None) -> str:
        parsed = _json_text(text)
        if parsed is None:
            return self.fn(text, hint)
        value, opts = parsed
        return json.dumps(_walk_json(value, self.fn, self.key_fn, hint), **opts)

    def metadata(self, meta: dict[str, JSONValue]) -> dict[str, JSONValue]:
        kept = {k: v for k, v in meta.items() if not _ACCOUNT_KEY.search(_norm_key(k))}
        self.dropped += len(meta) - len(kept)
        return dict(_walk_json(kept, self.fn, self.key_fn, None))

    def call(self, call: ToolCall) -> ToolCall:
        args = _walk_json(call.arguments, self.fn, self.key_fn, None)
        raw = call.raw_arguments
        if raw is not None:
            parsed = _json_text(raw)
            if parsed is not None and parsed[0] == call.arguments:
                raw = json.dumps(args, **parsed[1])
            else:
                raw = self.fn(raw, None)
        return call.model_copy(update={"arguments": args, "raw_arguments": raw})

    def message(self, m: Message) -> Message:
        update: dict[str, Any] = {}
        if isinstance(m.content, str):
            update["content"] = (
                self.json_text(m.content) if m.role == "tool" else self.fn(m.content, None)
            )
        else:
            update["content"] = tuple(self.part(p) for p in m.content)
        update["tool_calls"] = tuple(self.call(c) for c in m.tool_calls)
        if m.error is not None:
            update["error"] = self.fn(m.error, None)
        if m.name is not None:
            update["name"] = self.fn(m.name, "full_name" if m.role == "user" else None)
        update["metadata"] = self.metadata(m.metadata)
        return m.model_copy(update=update)

    def part(self, p: Any) -> Any:
        if isinstance(p, TextPart):
            return p.model_copy(update={"text": self.fn(p.text, None)})
        if isinstance(p, ReasoningPart):
            summary = None if p.summary is None else self.fn(p.summary, None)
            return p.model_copy(
                update={"reasoning": self.fn(p.reasoning, None), "summary": summary}
            )
        if isinstance(p, OtherPart):
            return p.model_copy(update={"data": _walk_json(p.data, self.fn, self.key_fn, None)})
        return p

    def conversation(self, conv: Conversation) -> Conversation:
        messages = tuple(self.message(m) for m in conv.messages)
        refs = tuple(
            Reference(label=r.label, message=self.message(r.message)) for r in conv.references
        )
        return conv.model_copy(update={"messages": messages, "references": refs})


# ---------------------------------------------------------------------------------------------
# Surrogates: type + index + keyed seed + the mention's format, never the original value
# ---------------------------------------------------------------------------------------------

_FIRST = words(
    """
    Avery Blake Casey Dana Ellis Finley Gale Harper Indigo Jules Kai Lane Morgan Noel Oakley
    Parker Quinn Reese Sage Tatum Val Wren Rowan Emery Hayden Kendall Marlow Nico Peyton
    Remy Shay Skyler Teagan Arden Brook Carey Devon Eden Frankie Greer
    """
)
_LAST = words(
    """
    Abbott Barrow Calloway Dunmore Ellery Fairbanks Garrow Hollins Ingram Jessup Kilbride
    Langford Merriman Norwood Oakes Pendry Quarles Radley Sallow Thorne Underhill Vance
    Whitlock Yardley Ashby Corwin Everly Fenwick Gilmore Hartwell Keene Lowell Mercer
    Prescott Rusk Stroud Tolliver Wexley Brannock Delacroix
    """
)
_TOWNS = words(
    """
    Ashford Brindle Carver Dunmore Eastvale Fairhaven Glenrock Harrowgate Ivybridge Juniper
    Kestrel Larkspur Millbrook Northfield Oakridge Pinecrest Queensbury Riverton Stonebridge
    Thornbury Underwood Valemont Westbury Yarrow Elmstead Foxholm
    """
)
_COUNTRIES = words(
    """
    Norway Portugal Chile Ireland Austria Uruguay Finland Canada Japan Estonia Malta Iceland
    Belgium Kenya Peru Denmark
    """
)
_ORGS = """Northwind Traders|Contoso|Fabrikam|Tailspin Toys|Wingtip Partners|Adventure Works|
    Litware|
    Proseware|Lucerne Publishing|Woodgrove Bank|Alpine Ski House|Blue Yonder Airlines|Coho Winery|
    Fourth Coffee|Trey Research|Wide World Importers|Southridge Video|Humongous Insurance|
    Margie's Travel|Graphic Design Institute""".replace("\n    ", "").split("|")
_NATIONS = words(
    """
    Norwegian Portuguese Chilean Irish Austrian Uruguayan Finnish Canadian Japanese Estonian
    Maltese Icelandic Belgian Kenyan Peruvian Danish
    """
)
_FAITHS = words("Buddhist Hindu Sikh Jain Quaker Taoist Anglican Methodist")
_STREETS = words(
    """
    Maple Oak Cedar Elm Willow Birch Aspen Juniper Hawthorn Chestnut Linden Poplar Spruce
    Laurel Magnolia Sycamore Alder Hazel Rowan Cypress
    """
)
_JOBS = [
    "analyst",
    "coordinator",
    "technician",
    "consultant",
    "administrator",
    "designer",
    "planner",
    "specialist",
    "advisor",
    "supervisor",
]
_HONORIFICS = ("Mr", "Ms", "Mx", "Dr")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december")  # fmt: skip
_KEEP_ADDRESS_WORDS = frozenset(
    words(
        """
    street st road rd avenue ave av lane ln drive dr boulevard blvd court ct place pl way
    terrace apt apartment suite ste unit flat floor room box po p.o. psc apo fpo dpo the
    corner of and ul via rue calle rua avda avenida strada piazza u
    """
    )
)
_KEEP_ID_WORDS = frozenset(
    words(
        """
    credit card gift certificate paypal debit bank account user order acct id res booking
    voucher member sk proj ant ghp gho xoxb xoxp hf pk rk live test glpat
    """
    )
)
_MON_RE = (
    r"(?P<mon>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_SFX = r"(?P<sfx>st|nd|rd|th)?"
_DATE_PATTERNS = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\b(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})",
        r"\b(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4}|\d{2})\b",
        r"\b(?P<d>\d{1,2})\.(?P<m>\d{1,2})\.(?P<y>\d{4})\b",
        rf"\b{_MON_RE}\s+(?P<d>\d{{1,2}}){_SFX}\b(?:,?\s+(?P<y>\d{{4}}))?",
        rf"\b(?P<d>\d{{1,2}}){_SFX}\s+(?:of\s+)?{_MON_RE}(?:,?\s+(?P<y>\d{{4}}))?",
        rf"\b{_MON_RE}\s+(?P<y>\d{{4}})\b",
        r"\b(?P<y>(?:1[89]|20)\d{2})\b",
    )
]
_FIRST_DAY, _LAST_DAY = date(1945, 1, 1).toordinal(), date(2035, 12, 31).toordinal()


def _case_like(value: str, like: str) -> str:
    if like.isupper() and any(c.isalpha() for c in like) and len(like) > 1:
        return value.upper()
    if like.islower():
        return value.lower()
    return value


def _luhn_digit(digits: str) -> str:
    total = 0
    for i, c in enumerate(reversed(digits)):
        n = int(c) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return str((10 - total % 10) % 10)


def _iban_check(country: str, bban: str) -> str:
    digits = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{98 - int(digits) % 97:02d}"


def _canonical(etype: str, value: str) -> str:
    value = unicodedata.normalize("NFKC", value).casefold().strip(" .,;:")
    if etype in ("EMAIL_ADDRESS", "URL", "DOMAIN_NAME"):
        return value.rstrip("/")
    if etype in ("PERSON", "LOCATION", "ORGANIZATION", "STREET_ADDRESS", "TITLE"):
        return " ".join(re.findall(r"[\w'’]+", value))
    return _SEP.sub("", value) or value


@dataclass
class _Date:
    y: int | None
    m: int | None
    d: int | None
    match: re.Match[str]


def _parse_date(value: str) -> _Date | None:
    for pat in _DATE_PATTERNS:
        mt = pat.search(value)
        if mt is None:
            continue
        g = mt.groupdict()
        y = int(g["y"]) if g.get("y") else None
        if y is not None and y < 100:
            y += 1900 if y > 30 else 2000
        mon = g.get("mon")
        m = (
            int(g["m"])
            if g.get("m")
            else (
                next(i for i, n in enumerate(_MONTHS, 1) if n.startswith(mon.lower()[:3]))
                if mon
                else None
            )
        )
        d = int(g["d"]) if g.get("d") else None
        try:
            if m is not None and d is not None:
                date(y or 2000, m, d)
        except ValueError:
            continue
        return _Date(y, m, d, mt)
    return None


@dataclass
class _Entity:
    etype: str
    index: int
    key: tuple[Any, ...]
    content: Any = None
    day: date | None = None
    attempt: int = 0
    mentions: list[str] = field(default_factory=list)


@dataclass
class _Table:
    """The entities of one conversation and their surrogates."""

    key: bytes
    salt: str
    entities: dict[tuple[Any, ...], _Entity] = field(default_factory=dict)
    mention_key: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)
    last_names: set[str] = field(default_factory=set)
    firsts: dict[str, str] = field(default_factory=dict)
    lasts: dict[str, str] = field(default_factory=dict)
    cache: dict[tuple[str, str], str] = field(default_factory=dict)
    originals: set[str] = field(default_factory=set)

    def rng(self, etype: str, index: int, attempt: int = 0) -> random.Random:
        msg = f"{self.salt}|{etype}|{index}|{attempt}".encode()
        seed = hmac.new(self.key, msg, hashlib.sha256).digest()
        return random.Random(int.from_bytes(seed[:16], "big"))

    # -- grouping mentions into entities ------------------------------------------------------

    def add(self, mentions: Sequence[tuple[str, str, str | None]]) -> None:
        """Group ``(type, text, json key)`` mentions into indexed entities, in order."""
        keys: list[tuple[str, str, tuple[Any, ...]]] = []
        fulls: dict[str, set[tuple[Any, ...]]] = {}
        dates: dict[tuple[int, int], set[tuple[Any, ...]]] = {}
        firsts: dict[str, None] = {}
        lasts: dict[str, None] = {}
        singles: list[str] = []
        for etype, text, hint in mentions:
            if etype == "PERSON":
                toks = _person_tokens(text)
                if len(toks) >= 2:
                    key: tuple[Any, ...] = ("PERSON", toks[0], toks[-1])
                    fulls.setdefault(toks[0], set()).add(key)
                    fulls.setdefault(toks[-1], set()).add(key)
                    firsts[toks[0]] = lasts[toks[-1]] = None
                elif toks and hint in ("last_name", "lastname", "surname", "family_name"):
                    self.last_names.add(text)
                    lasts[toks[0]] = None
                elif toks:
                    singles.append(toks[0])
            elif etype in ("DATE_TIME", "DATE_OF_BIRTH"):
                pd = _parse_date(text)
                if pd is not None and pd.y and pd.m and pd.d:
                    dates.setdefault((pd.m, pd.d), set()).add(("DATE", pd.y, pd.m, pd.d))
        firsts.update((t, None) for t in singles if t not in lasts)
        # Names map word by word (a family shares its surrogate surname), injectively.
        self.originals = {text.strip().casefold() for _, text, _ in mentions}
        self.originals |= {w for name in (*firsts, *lasts) for w in name.split()}
        self.firsts = self._names(list(firsts), _FIRST, "PERSON_FIRST")
        self.lasts = self._names(list(lasts), _LAST, "PERSON_LAST")
        for etype, text, _ in mentions:
            keys.append((etype, text, self._key(etype, text, fulls, dates)))
        counts: Counter[str] = Counter(e.etype for e in self.entities.values())
        for etype, text, key in keys:
            self.mention_key[(etype, text)] = key
            if key not in self.entities:
                counts[etype] += 1
                self.entities[key] = _Entity(etype, counts[etype], key)
            if text not in self.entities[key].mentions:
                self.entities[key].mentions.append(text)
        self._contents()

    def _names(self, tokens: list[str], pool: list[str], kind: str) -> dict[str, str]:
        out: dict[str, str] = {}
        used: set[str] = set()
        for i, tok in enumerate(tokens, 1):
            for attempt in range(50):
                name = self.rng(kind, i, attempt).choice(pool)
                if name not in used and name.casefold() not in self.originals:
                    break
            else:  # more distinct names than the pool holds
                name = f"{name}-{self.rng(kind, i, 99).choice(pool)}"
            used.add(name)
            out[tok] = name
        return out

    @staticmethod
    def _key(
        etype: str,
        text: str,
        fulls: dict[str, set[tuple[Any, ...]]],
        dates: dict[tuple[int, int], set[tuple[Any, ...]]],
    ) -> tuple[Any, ...]:
        if etype == "PERSON":
            toks = _person_tokens(text)
            if len(toks) >= 2:
                return ("PERSON", toks[0], toks[-1])
            if toks and len(fulls.get(toks[0], ())) == 1:
                return next(iter(fulls[toks[0]]))
            return ("PERSON", *toks)
        if etype in ("DATE_TIME", "DATE_OF_BIRTH"):
            pd = _parse_date(text)
            if pd is None:
                low = text.strip().casefold()
                return (
                    ("WEEKDAY", low)
                    if low in _WEEKDAYS
                    else ("DATE_OTHER", _canonical(etype, text))
                )
            if pd.y is None and pd.m and pd.d and len(dates.get((pd.m, pd.d), ())) == 1:
                return next(iter(dates[(pd.m, pd.d)]))
            return ("DATE", pd.y, pd.m, pd.d)
        return (etype, _canonical(etype, text))

    def _contents(self) -> None:
        # Distinct entities get distinct surrogates, and no surrogate equals a value of the
        # conversation: both checked here, outside the generator, by drawing the next attempt.
        used: dict[str, set[str]] = {}
        for ent in self.entities.values():
            if ent.content is not None or ent.key[0] in ("DATE", "PERSON"):
                continue
            taken = used.setdefault(ent.etype, set())
            for attempt in range(50):
                ent.content = _content(ent, self.rng(ent.etype, ent.index, attempt))
                ent.attempt = attempt
                label = str(ent.content).casefold()
                # ... nor any other original value of the conversation.
                same = any(
                    self._render(ent, m).strip().casefold() in self.originals for m in ent.mentions
                )
                if not same and label not in taken:
                    break
            taken.add(label)
        self._date_order()

    def _date_order(self) -> None:
        # Dates keep their order: the n dated entities get n sorted random days, by rank.
        dated = sorted(
            (e for e in self.entities.values() if e.key[0] == "DATE" and e.key[1] is not None),
            key=lambda e: (e.key[1], e.key[2] or 0, e.key[3] or 0),
        )
        for attempt in range(20):
            rng = self.rng("DATE_ORDER", 0, attempt)
            days = sorted(rng.sample(range(_FIRST_DAY, _LAST_DAY), len(dated)))
            for ent, day in zip(dated, days, strict=True):
                ent.day = date.fromordinal(day)
            if all(e.day is not None and e.day.year != e.key[1] for e in dated):
                break
        for ent in self.entities.values():
            if ent.key[0] == "DATE" and ent.key[1] is None:
                rng = self.rng(ent.etype, ent.index)
                ent.day = date.fromordinal(rng.randrange(_FIRST_DAY, _LAST_DAY))

    # -- rendering ----------------------------------------------------------------------------

    def surrogate(self, etype: str, text: str) -> str:
        """The surrogate of one mention (same entity, same surrogate; the mention's format)."""
        hit = self.cache.get((etype, text))
        if hit is None:
            hit = self._render(self.entities[self.mention_key[(etype, text)]], text)
            self.cache[(etype, text)] = hit
        return hit

    def _render(self, ent: _Entity, text: str) -> str:
        if ent.etype == "PERSON":
            toks = _person_tokens(text)
            if not toks:
                return text
            if len(toks) >= 2:
                value = f"{self.firsts[toks[0]]} {self.lasts[toks[-1]]}"
            elif toks[0] in self.lasts and (toks[0] not in self.firsts or text in self.last_names):
                value = self.lasts[toks[0]]
            else:
                value = self.firsts[toks[0]]
            pre, post = _HONORIFIC.match(text), re.search(r"['’]s$", text)
            return "".join(
                (pre.group() if pre else "", _case_like(value, text), post.group() if post else "")
            )
        rng = self.rng(ent.etype, ent.index, 100 + ent.attempt)
        return _render(ent, text, rng)

    def placeholder(self, etype: str, text: str) -> str:
        """The typed, indexed placeholder of a mention (``PERSON_1``)."""
        ent = self.entities[self.mention_key[(etype, text)]]
        return f"{ent.etype}_{ent.index}"


def _person_tokens(text: str) -> list[str]:
    text = _HONORIFIC.sub("", unicodedata.normalize("NFKC", text).strip())
    text = re.sub(r"['’]s$", "", text)
    toks = [t.casefold() for t in re.findall(r"[^\W\d_][\w'’\-]*", text)]
    return [t for t in toks if len(t) > 1] or toks


def _content(ent: _Entity, rng: random.Random) -> Any:
    t = ent.etype
    if t == "EMAIL_ADDRESS":
        tld = rng.choice(("com", "org", "net"))
        return (
            f"{rng.choice(_FIRST)}.{rng.choice(_LAST)}{rng.randrange(10, 99)}@example.{tld}".lower()
        )
    if t in ("LOCATION", "ORGANIZATION", "TITLE", "NRP"):
        pools = {"LOCATION": (_TOWNS, _COUNTRIES), "ORGANIZATION": (_ORGS, _ORGS),
                 "TITLE": (_JOBS, _HONORIFICS), "NRP": (_NATIONS, _FAITHS)}[t]  # fmt: skip
        return (rng.choice(pools[0]), rng.choice(pools[1]))
    if t == "AGE":
        return rng.randrange(0, 10)
    if ent.key[0] in ("WEEKDAY", "DATE_OTHER"):
        return rng.randrange(0, 7)
    return rng.getrandbits(64)


def _shape(value: str, rng: random.Random, keep_words: frozenset[str] = frozenset()) -> str:
    """Each digit/letter replaced by a random one of its class; separators and known words kept."""
    out = []
    for tok in re.split(r"([^0-9A-Za-z]+)", value):
        if tok.casefold() in keep_words or not tok or not tok[0].isalnum():
            out.append(tok)
            continue
        for c in tok:
            if c.isdigit():
                out.append(str(rng.randrange(10)))
            elif c.isalpha():
                ch = chr(rng.randrange(26) + 97)
                out.append(ch.upper() if c.isupper() else ch)
            else:
                out.append(c)
    return "".join(out)


def _render(ent: _Entity, text: str, rng: random.Random) -> str:
    t, c = ent.etype, ent.content
    if t == "EMAIL_ADDRESS":
        return str(c)
    if t == "LOCATION":
        is_country = text.strip().casefold() in _COUNTRY_NAMES
        return _case_like(c[1] if is_country else c[0], text)
    if t == "ORGANIZATION":
        sfx = re.search(r"(?i)[ ,]+(?:inc|ltd|llc|corp|co|gmbh|plc|group)\.?$", text)
        return _case_like(c[0], text) + (sfx.group() if sfx else "")
    if t == "TITLE":
        if re.fullmatch(r"(?i)(?:mr|mrs|ms|miss|mx|dr|prof|sir|dame|rev|fr|hon)\.?", text.strip()):
            return str(c[1]) + ("." if text.strip().endswith(".") else "")
        return _case_like(c[0], text)
    if t == "NRP":
        # A religion for a religion, a nationality for anything else; a plural stays plural.
        word = text.strip()
        value = str(c[1] if word.casefold().rstrip("s") in RELIGIONS else c[0])
        return _case_like(value + ("s" if word.endswith("s") and len(word) > 4 else ""), text)
    if t == "AGE":
        n = int(text) if text.isdigit() else 30
        return str(max(1, n // 10 * 10 + (c if c != n % 10 else (c + 1) % 10)))
    if t in ("DATE_TIME", "DATE_OF_BIRTH"):
        return _render_date(ent, text, rng)
    if t == "URL":
        return _render_url(text, rng)
    if t == "STREET_ADDRESS":
        return re.sub(r"[^\W\d_][\w'’\-]*\.?|\d+", lambda m: _address_word(m.group(), rng), text)
    if t == "IP_ADDRESS":
        if ":" in text:
            return "2001:db8::" + ":".join(f"{rng.getrandbits(16):x}" for _ in range(3))
        prefix = rng.choice(("192.0.2", "198.51.100", "203.0.113"))
        return f"{prefix}.{rng.randrange(1, 255)}"
    rng = random.Random(c)  # the same characters for every mention of this entity
    if t == "CREDIT_CARD":
        n = sum(ch.isdigit() for ch in text)
        body = "4" + "".join(str(rng.randrange(10)) for _ in range(max(0, n - 2)))
        digits = iter(body + _luhn_digit(body))
        return "".join(next(digits) if ch.isdigit() else ch for ch in text)
    if t == "IBAN_CODE":
        raw = _SEP.sub("", text).upper()
        bban = _shape(raw[4:], rng).upper()
        new = iter(raw[:2] + _iban_check(raw[:2], bban) + bban)
        return "".join(_case_like(next(new), ch) if ch.isalnum() else ch for ch in text)
    return _shape(text, rng, _KEEP_ID_WORDS)


_COUNTRY_NAMES = frozenset(c.casefold() for c in COUNTRIES)


def _address_word(word: str, rng: random.Random) -> str:
    if word.isdigit():
        return str(rng.randrange(1, 9)) + "".join(str(rng.randrange(10)) for _ in word[1:])
    if word.casefold().rstrip(".") in _KEEP_ADDRESS_WORDS or word.casefold() in _KEEP_ADDRESS_WORDS:
        return word
    return _case_like(rng.choice(_STREETS if word[:1].isupper() else _TOWNS), word)


def _render_url(text: str, rng: random.Random) -> str:
    m = re.match(r"(?i)(?:(?P<scheme>[a-z][a-z0-9+.-]*://)|(?P<www>www\.))?", text)
    scheme = (m.group("scheme") or "") if m else ""
    rest = text[len(scheme) :]
    www = "www." if rest.lower().startswith("www.") else ""
    host = f"{www}{rng.choice(_TOWNS).lower()}{rng.randrange(10, 99)}.example"
    path = re.sub(r"^[^/?#]*", "", rest)
    segs = [s for s in re.split(r"[?#]", path)[0].split("/") if s]
    new = "".join("/" + rng.choice(_STREETS).lower() for _ in segs)
    if path.split("?")[0].endswith("/") or (not segs and path.startswith("/")):
        new += "/"
    if "?" in path:
        new += f"?id={rng.randrange(10**5, 10**6)}"
    return scheme + host + new


def _render_date(ent: _Entity, text: str, rng: random.Random) -> str:
    if ent.key[0] == "WEEKDAY":
        day = (_WEEKDAYS.index(ent.key[1]) + 1 + ent.content % 6) % 7
        return _case_like(_WEEKDAYS[day].title(), text)
    pd = _parse_date(text)
    day = ent.day
    out, pos = [], 0
    if pd is not None and day is not None:
        found = pd.match.groupdict()
        spans = [(pd.match.start(g), pd.match.end(g), g) for g in found if found[g]]
        for s, e, g in sorted(spans):
            old = text[s:e]
            new = {
                "y": str(day.year)[-len(old) :],
                "m": str(day.month).zfill(len(old)),
                "d": str(day.day).zfill(len(old)),
                "sfx": {1: "st", 2: "nd", 3: "rd"}.get(
                    day.day % 10 if day.day // 10 != 1 else 0, "th"
                ),
                "mon": _MONTHS[day.month - 1][: len(old.rstrip(".")) if len(old) <= 4 else None],
            }[g]
            out += [text[pos:s], _case_like(new.title() if g == "mon" else new, old)]
            pos = e
    out.append(text[pos:])
    rest = "".join(out)
    rest = re.sub(
        r"\b(\d{1,2}):(\d{2})(?::(\d{2}))?",
        lambda m: (
            f"{rng.randrange(24):0{len(m.group(1))}d}:{rng.randrange(60):02d}"
            + (f":{rng.randrange(60):02d}" if m.group(3) else "")
        ),
        rest,
    )
    if pd is None:
        rest = re.sub(r"\d", lambda _: str(rng.randrange(10)), rest)
        if rest == text:  # nothing date-like to vary: a whole new date in a plain format
            rest = f"{_MONTHS[rng.randrange(12)].title()} {rng.randrange(1, 29)}"
    return rest


# ---------------------------------------------------------------------------------------------
# The de-identifier
# ---------------------------------------------------------------------------------------------

_AUDIT_MARGIN = 40  # characters re-checked each side of a surrogate (> spaCy's receptive field)


@dataclass
class _Plan:
    conv: Conversation
    table: _Table
    texts: list[tuple[str, str | None]] = field(default_factory=list)
    sweep: re.Pattern[str] | None = None
    sweep_types: dict[str, str] = field(default_factory=dict)
    type_of: dict[str, str] = field(default_factory=dict)
    windows: list[tuple[str, list[tuple[int, int]]]] = field(default_factory=list)
    mentions: Counter[str] = field(default_factory=Counter)
    residual: Counter[str] = field(default_factory=Counter)
    dropped_keys: int = 0


class Deidentifier:
    """Replaces personal information in conversations with consistent synthetic surrogates.

    Build once (it loads the NLP model) and reuse; :meth:`deidentify_many` batches detection
    across conversations. ``key`` is the secret behind surrogate seeds and source-id pseudonyms
    (default: :func:`deploysim.keys.load_secret_key`). ``keep`` lists entity types that are
    detected but left in place; ``strict`` drops a conversation whose residual audit still
    finds something; ``audit=False`` skips the audit.
    """

    def __init__(
        self,
        *,
        key: bytes | None = None,
        strict: bool = False,
        keep: Iterable[str] = DEFAULT_KEEP,
        audit: bool = True,
        detector: Detector | None = None,
    ) -> None:
        self.key = load_secret_key() if key is None else key
        self.strict = strict
        self.keep = frozenset(keep)
        self.audit = audit
        self.detector = detector if detector is not None else Detector()

    def deidentify(self, conv: Conversation) -> DeidResult:
        """De-identify one conversation."""
        return self.deidentify_many([conv])[0]

    def deidentify_many(self, convs: Sequence[Conversation]) -> list[DeidResult]:
        """De-identify conversations, detecting in one batch across all of them."""
        plans = [self._collect(c) for c in convs]
        todo = list(dict.fromkeys(t for p in plans for t, h in p.texts if _hint_type(h) is None))
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
        # Times of day are not identifying, and replacing them breaks agentic tool results.
        return not (etype == "DATE_TIME" and _RELATIVE_TIME.fullmatch(value.strip()))

    def _spans(
        self, text: str, hint: str | None, dets: Mapping[str, Sequence[Detection]]
    ) -> list[Detection]:
        etype = _hint_type(hint)
        if etype is not None:
            s, e = len(text) - len(text.lstrip()), len(text.rstrip())
            found = [Detection(s, e, etype, 1.0, "json_key")] if e > s else []
        else:
            found = [r for d in dets.get(text, ()) if (r := _renamed(d, text)) is not None]
        return [d for d in found if self._replaceable(d.entity_type, text[d.start : d.end])]

    def _collect(self, conv: Conversation) -> _Plan:
        plan = _Plan(conv, _Table(self.key, conv.content_hash()))

        def record(text: str, hint: str | None) -> str:
            plan.texts.append((text, hint))
            return text

        walker = _Walker(record, lambda k: k)
        walker.conversation(conv)
        if conv.provenance is not None:
            walker.metadata(conv.provenance.metadata)
        return plan

    def _resolve(self, plan: _Plan, dets: Mapping[str, Sequence[Detection]]) -> None:
        mentions: list[tuple[str, str, str | None]] = []
        for text, hint in plan.texts:
            if _hint_type(hint) is not None:  # a JSON key names the type: it wins
                plan.type_of[text.strip()] = _hint_type(hint) or ""
        spans = [(text, hint, self._spans(text, hint, dets)) for text, hint in plan.texts]
        # A word of a person's name is that person even where NER typed it otherwise.
        name_words = {
            w
            for text, _, found in spans
            for d in found
            if d.entity_type == "PERSON" and len(_person_tokens(text[d.start : d.end])) > 1
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
        walker = _Walker(
            lambda t, h: self._replace(plan, t, self._spans(t, h, dets)),
            lambda k: self._replace(plan, k, [], audit=False),
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

    def _replace(self, plan: _Plan, text: str, spans: list[Detection], audit: bool = True) -> str:
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
                plan.windows.extend(_windows(new, sur))
        return new

    def _audit(self, plans: Sequence[_Plan]) -> None:
        jobs = [(plan, text, spans) for plan in plans for text, spans in plan.windows]
        found = self.detector.detect_many([text for _, text, _ in jobs])
        for (plan, text, spans), dets in zip(jobs, found, strict=True):
            for d in dets:
                if not self._replaceable(d.entity_type, text[d.start : d.end]):
                    continue
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

    spaCy's NORP also tags names ("Nautilytics"): only a known nationality, religion or language
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
