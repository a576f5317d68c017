"""Identifiers of people's accounts, bookings and orders: after their cue ("reservation ID:
**H7K2QZ**", "customer number 12345", "under ID X"), in a list under such a cue, or in shapes
of their own ("jane_doe_1234", "#A123456"). Split from :mod:`deploysim.privacy.rules`
(``deid-11``), which also gained the cue through markdown and quotes, codes of capitals alone
and the lists, from the development part of ``studies/privacy-tau`` (tau-bench's reservation
codes).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from deploysim.privacy.rules import Detection, Rule, digits, rx

__all__ = ["IdList", "id_rules"]

_ID_CONTEXT = (
    r"user(?:name)?|account|acct|customer|member(?:ship)?|client|order|booking|reservations?|"
    r"confirmation|ticket|case|invoice|tracking|policy|reference|ref|pnr|record\s+locator|"
    r"payment(?:\s+method)?|loyalty|frequent\s+flyer|employee|student|patient|claim|subscriber|"
    r"login|customer\s+number"
)
# A code of capitals and digits ("3FRNFB", "HXDUBJ"): the shape of booking references.
_CODE = r"[A-Z0-9]{5,10}"


def id_rules(is_common: Callable[[str], bool]) -> list[Rule | IdList]:
    """The identifier rules, given what counts as an ordinary English word."""

    def has_digit(s: str) -> bool:
        return digits(s) > 0

    def code(s: str) -> bool:  # "NONE", "PENDING" and "PYTHON" are words, not codes
        return has_digit(s) or not is_common(s)

    # fmt: off
    return [
        Rule("id_context", rx(
            rf"(?i:\b(?:{_ID_CONTEXT})(?:\s+(?:id|no\.?|number|num|code|#))?\s*(?:is|:|=|#|was)?"
            r"\s*)(?:\*\*|[\"“'(])?(?P<ACCOUNT_ID>#?[A-Za-z0-9][\w-]{3,}[A-Za-z0-9])\b"),
            validate=has_digit, score=0.75),
        # The cue names an id, maybe a few words before it ("reservation with the ID X",
        # "reservation (ID: X)", "Reservation ID:** X"); the code in capitals, letters alone too.
        Rule("id_code", rx(
            rf"(?i:\b(?:{_ID_CONTEXT})\b[^\n]{{0,24}}?\b(?:id|code|number|no\.|locator)s?\b)"
            r"[ \t]*(?:\*\*)?[ \t]*(?:(?i:is|was|:)[ \t]*)?(?:\*\*|[\"“'(])?[ \t]*"
            rf"(?P<ACCOUNT_ID>{_CODE})(?![\w-])"), validate=code, score=0.75),
        Rule("snake_id", rx(r"\b[a-z]+(?:_[a-z]+)*_\d{4,}\b|\b[a-z]+(?:_[a-z]+)+_\d{3,}\b"),
            "ACCOUNT_ID", 0.75),
        Rule("hash_id", rx(r"(?<![\w#&])#[A-Z]{0,3}\d{5,}\b"), "ACCOUNT_ID", 0.75),
        IdList(code),
    ]
    # fmt: on


# A line that announces ids ("Here are your reservation IDs:", "Reservations to be
# downgraded**: A, B"), and what follows its colon on the line.
_HEADER = re.compile(
    rf"(?i:\b(?:{_ID_CONTEXT}|reservations|bookings|orders)\b)[^\n:]{{0,40}}:(?:\*\*)?(?P<rest>[^\n]*)$",
    re.MULTILINE,
)
_ITEM = re.compile(rf"(?<![\w-])(?:\*\*)?(?P<code>{_CODE})(?:\*\*)?(?![\w-])")
_ITEMS_ONLY = re.compile(rf"(?:[ \t,]|{_ITEM.pattern})*")
_LIST_LINE = re.compile(rf"[ \t]*(?:[-*•]|\d{{1,2}}[.)])?[ \t]*(?:\*\*)?{_CODE}(?:\*\*)?[ \t]*,?$")


class IdList:
    """A rule (same ``name``/``find`` as :class:`~deploysim.privacy.rules.Rule`) for codes
    listed under a line that announces ids: on that line after its colon, comma-separated, or
    one to a line below it (bullets, numbers), up to the first line that is no such item."""

    name = "id_list"

    def __init__(self, code: Callable[[str], bool], score: float = 0.7) -> None:
        self.code, self.score = code, score

    def find(self, text: str) -> Iterable[Detection]:
        """The listed codes in ``text``."""
        for head in _HEADER.finditer(text):
            rest = head.group("rest")
            if _ITEMS_ONLY.fullmatch(rest):
                yield from self._items(head.start("rest"), rest)
            pos = head.end() + 1
            for line in text[pos:].split("\n"):
                if not line.strip() and pos == head.end() + 1:
                    pos += 1  # a blank line between the header and its list
                    continue
                if not _LIST_LINE.fullmatch(line):
                    break
                yield from self._items(pos, line)
                pos += len(line) + 1

    def _items(self, offset: int, line: str) -> Iterable[Detection]:
        for m in _ITEM.finditer(line):
            if self.code(m.group("code")):
                s = offset + m.start("code")
                yield Detection(s, s + len(m.group("code")), "ACCOUNT_ID", self.score, self.name)
