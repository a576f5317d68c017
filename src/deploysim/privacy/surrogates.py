"""Surrogates: one synthetic value per entity, derived from its type, index and a keyed seed.

The generator never sees the original value, only the entity's type, its index within the
conversation, the conversation's keyed seed and the *format* of each mention (an e-mail stays
an e-mail, a card number passes Luhn, dates keep their order). :class:`EntityTable` holds the
entities of one conversation; :mod:`deploysim.privacy` decides what is an entity and rewrites
the text (:mod:`deploysim.privacy.deid` uses them).
"""

from __future__ import annotations

import hashlib
import hmac
import random
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from deploysim.privacy.words import COUNTRIES, RELIGIONS, words

_HONORIFIC = re.compile(r"(?i)^(?:mr|mrs|ms|miss|mx|dr|prof|sir|dame|rev|fr|hon)\.?\s+")
_SEP = re.compile(r"[^0-9A-Za-z]")

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
NATIONS = words(
    """
    Norwegian Portuguese Chilean Irish Austrian Uruguayan Finnish Canadian Japanese Estonian
    Maltese Icelandic Belgian Kenyan Peruvian Danish
    """
)
FAITHS = words("Buddhist Hindu Sikh Jain Quaker Taoist Anglican Methodist")
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


def _month_as(month: str, old: str) -> str:
    """``month`` written as ``old`` was: in full ("June" -> "september", never cut to the old
    name's four letters), or abbreviated ("Jun" -> "oct", "Sept." -> "sept" or "oct")."""
    o = old.rstrip(".").lower()
    if o in _MONTHS:
        return month
    return month[:4] if month == "september" and len(o) == 4 else month[:3]


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


def luhn_digit(digits: str) -> str:
    total = 0
    for i, c in enumerate(reversed(digits)):
        n = int(c) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return str((10 - total % 10) % 10)


def iban_check(country: str, bban: str) -> str:
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
class EntityTable:
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
                toks = person_tokens(text)
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
            toks = person_tokens(text)
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
            toks = person_tokens(text)
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


def person_tokens(text: str) -> list[str]:
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
                 "TITLE": (_JOBS, _HONORIFICS), "NRP": (NATIONS, FAITHS)}[t]  # fmt: skip
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
        digits = iter(body + luhn_digit(body))
        return "".join(next(digits) if ch.isdigit() else ch for ch in text)
    if t == "IBAN_CODE":
        raw = _SEP.sub("", text).upper()
        bban = _shape(raw[4:], rng).upper()
        new = iter(raw[:2] + iban_check(raw[:2], bban) + bban)
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
                "mon": _month_as(_MONTHS[day.month - 1], old),
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
