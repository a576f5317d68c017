"""An embedded realism discriminator: which continuation agrees better with its conversation?

No model: it scores each continuation against what the store and the prefix say the world looks
like, and calls the higher-scoring one real.

- **Tool results** (what the tool simulator writes) are checked against the tool's recorded
  results in the store: *format* (JSON of the recorded kind with every key the recorded objects
  share, a number, or free text; an error is free text checked against the store's recorded
  error texts, since ``consistency-2``: a failed simulation reads like no real error)
  and *echo* (an argument that the tool's recorded results nearly always repeat, such as the
  id a lookup is for, must appear in the result: a result about another record, written for
  another conversation, fails it).
- **Assistant texts** (what the candidate writes) are checked against the conversation's own
  words: the share of the text's character 5-grams (case kept) that occur in the prefix. Text
  in another style (capitals, another model's phrasing) or in no order shares fewer.

A continuation's score is the mean of its messages' scores; ``parts="tools"`` scores tool
results only (the simulator's realism, free of the candidate's style). Equal scores, or a side
with nothing to score, decide nothing. The store is only read for tool profiles (formats and
echo rates), never for the logged continuation's own words, so a continuation's presence in
the store does not make it look real.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from deploysim.schema import Conversation, Message, ToolCall, canonical_hash
from deploysim.store import Store
from deploysim.tool_state import is_failure
from deploysim.tools import matches_shape, result_shape

VERSION = "consistency-2"
Parts = Literal["all", "tools"]
NGRAM = 5
ECHO_MIN_RATE = 0.9  # an argument counts as echoed when recorded results repeat it this often
ECHO_MIN_CALLS = 3  # ... over at least this many successful recorded calls
_SHAPE_EXAMPLES = 50  # recorded successful results per tool the format is taken from
_ERRORS = 200  # recorded error texts an error is compared with


@dataclass(frozen=True, slots=True)
class ToolProfile:
    """What a tool's recorded results look like: their format and the arguments they echo."""

    shape: tuple[str, frozenset[str]]
    echoed: frozenset[str]


@dataclass(frozen=True, slots=True)
class Profiles:
    """Tool profiles of a store, and its successful results per tool (for the controls)."""

    tools: dict[str, ToolProfile] = field(default_factory=dict)
    results: dict[str, tuple[tuple[str, Message], ...]] = field(default_factory=dict)
    errors: tuple[str, ...] = ()  # recorded error texts, of every tool (at most _ERRORS)


def _scalars(arguments: object) -> dict[str, str]:
    """Top-level scalar arguments as lower-cased text (at least two characters)."""
    if not isinstance(arguments, dict):
        return {}
    out = {}
    for name, value in arguments.items():
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            text = str(value).strip().lower()
            if len(text) >= 2:
                out[str(name)] = text
    return out


def pairs(messages: Sequence[Message]) -> list[tuple[ToolCall, Message | None]]:
    """Each tool call of ``messages`` with the tool message answering it."""
    if not messages:
        return []
    return list(Conversation(messages=tuple(messages)).tool_results())


def build_profiles(conversations: Iterable[Conversation]) -> Profiles:
    """Per tool: the recorded results' format and the arguments they echo (in at least
    ``ECHO_MIN_RATE`` of at least ``ECHO_MIN_CALLS`` successful calls)."""
    examples: dict[str, list[str]] = defaultdict(list)
    seen: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    results: dict[str, list[tuple[str, Message]]] = defaultdict(list)
    errors: list[str] = []
    for conv in conversations:
        chash = conv.content_hash()
        for call, result in conv.tool_results():
            if result is not None and is_failure(result) and len(errors) < _ERRORS:
                errors.append(result.text or result.error or "")
            if result is None or call.parse_error or is_failure(result):
                continue
            text = result.text
            results[call.function].append((chash, result))
            if len(examples[call.function]) < _SHAPE_EXAMPLES:
                examples[call.function].append(text)
            low = text.lower()
            for name, value in _scalars(call.arguments).items():
                seen[call.function][name].append(value in low)
    tools = {}
    for tool in results:
        echoed = frozenset(
            name
            for name, hits in seen[tool].items()
            if len(hits) >= ECHO_MIN_CALLS and sum(hits) >= ECHO_MIN_RATE * len(hits)
        )
        tools[tool] = ToolProfile(result_shape(examples[tool]), echoed)
    return Profiles(tools, {t: tuple(v) for t, v in results.items()}, tuple(errors))


def store_profiles(store: Store) -> Profiles:
    """:func:`build_profiles` over every stored conversation with tool calls."""
    return build_profiles(store.conversations(with_tool_calls=True))


_TOKEN = re.compile(r"[a-z0-9]+(?:[.@_-][a-z0-9]+)*")
_DECIMAL = re.compile(r"\d+\.\d+")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")


def _tokens(text: str) -> set[str]:
    """Distinctive lower-cased tokens: those with a digit or of four characters or more;
    numbers normalised (``1,200.0`` and ``1200`` are one token; ids keep every digit)."""
    out = set()
    for tok in _TOKEN.findall(_THOUSANDS.sub("", text.lower())):
        if any(c.isdigit() for c in tok):
            if _DECIMAL.fullmatch(tok):
                tok = tok.rstrip("0").rstrip(".")
            out.add(tok)
        elif len(tok) >= 4:
            out.add(tok)
    return out


def _leaves(value: object) -> list[str]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [] if value is None or isinstance(value, bool) else [str(value)]


def _values(text: str) -> set[str]:
    """The distinctive tokens of a result's values (JSON keys left out: every result of a
    tool has them)."""
    try:
        parsed = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return _tokens(text)
    return {t for leaf in _leaves(parsed) for t in _tokens(leaf)}


def _said(m: Message) -> str:
    """A message's text and its calls' arguments."""
    args = " ".join(json.dumps(c.arguments) for c in m.tool_calls)
    return f"{m.text} {args}"


def _ngrams(text: str) -> set[str]:
    words = " ".join(text.split())
    return {words[i : i + NGRAM] for i in range(len(words) - NGRAM + 1)}


def _text_format(text: str, recorded: Sequence[str]) -> float:
    """How much a free-text result looks like the recorded ones (other than itself, which
    the store may hold): empty when they mostly are, else the share of its character
    3-grams they use."""
    # An equal non-empty text may be this very result (the store holds the logs); empty
    # results are all alike and stay.
    others = [r for r in recorded if r != text or not text.strip()]
    others = others[:_SHAPE_EXAMPLES]
    if not others:
        return 0.5
    mostly_empty = sum(not t.strip() for t in others) * 2 >= len(others)
    if not text.strip():
        return 1.0 if mostly_empty else 0.0
    if mostly_empty:
        return 0.0
    return _gram_share(text, others)


def _gram_share(text: str, recorded: Sequence[str]) -> float:
    """The share of a text's character 3-grams that the recorded texts use."""
    seen = {t[i : i + 3] for t in recorded for i in range(len(t) - 2)}
    grams = {text[i : i + 3] for i in range(len(text) - 2)}
    return len(grams & seen) / len(grams) if grams else 0.0


def _tool_score(
    call: ToolCall, result: Message, profiles: Profiles, context: set[str] | None = None
) -> float:
    """Format (0/1), the share of echoed arguments present and the share of the result's
    values the rest of the conversation mentions (``context``), averaged."""
    profile = profiles.tools.get(call.function)
    if is_failure(result):
        # An error reads like the recorded errors ("Error: tool simulator failed" does not);
        # with none recorded, by its lead only (as consistency-1 always did).
        if profiles.errors:
            # Leave out one equal text (this very error, when the store holds it), not its
            # repeats: a real error is often written alike in other conversations.
            others = list(profiles.errors)
            if result.text in others:
                others.remove(result.text)
            return _gram_share(result.text, others)
        return 1.0 if result.text.lstrip().lower().startswith("error") or result.error else 0.0
    if profile is None:
        return 0.5  # a tool the store never saw answered: no evidence either way
    if profile.shape[0] == "text":
        recorded = [r.text for _, r in profiles.results.get(call.function, ())]
        scores = [_text_format(result.text, recorded)]
    else:
        scores = [1.0 if matches_shape(result.text, profile.shape) is not None else 0.0]
    low = result.text.lower()
    args = _scalars(call.arguments)
    echoed = [value in low for name, value in args.items() if name in profile.echoed]
    if echoed:
        scores.append(sum(echoed) / len(echoed))
    values = _values(result.text)
    if context is not None and values:
        scores.append(len(values & context) / len(values))
    return sum(scores) / len(scores)


def score(
    prefix: Sequence[Message], continuation: Sequence[Message], profiles: Profiles, parts: Parts
) -> float | None:
    """Mean agreement of a continuation's messages with the prefix and the tool profiles;
    None when it has nothing to score."""
    scores: list[float] = []
    said = [_tokens(_said(m)) for m in [*prefix, *continuation]]
    everything = [*prefix, *continuation]
    for call, result in pairs(everything)[len(pairs(prefix)) :]:
        if result is not None:
            # What the rest of the conversation says: a real result agrees with it.
            rest = [t for m, t in zip(everything, said, strict=True) if m is not result]
            context = set().union(*rest)
            scores.append(_tool_score(call, result, profiles, context))
    if parts == "all":
        reference: set[str] = set()
        for m in prefix:
            reference |= _ngrams(m.text)
        for m in continuation:
            grams = _ngrams(m.text) if m.role == "assistant" else set()
            if grams:
                scores.append(len(grams & reference) / len(grams))
    return sum(scores) / len(scores) if scores else None


def compare(
    prefix: Sequence[Message],
    logged: Sequence[Message],
    other: Sequence[Message],
    profiles: Profiles,
    parts: Parts,
) -> float | None:
    """P(``other`` is called real): 1 or 0 by the higher score, 0.5 on a tie, None when
    either side has nothing to score."""
    s_logged = score(prefix, logged, profiles, parts)
    s_other = score(prefix, other, profiles, parts)
    if s_logged is None or s_other is None:
        return None
    if abs(s_other - s_logged) < 1e-9:
        return 0.5
    return 1.0 if s_other > s_logged else 0.0


def identity(parts: Parts) -> dict[str, str]:
    """The discriminator's name, version and hash (of everything that decides its answers)."""
    params = [VERSION, parts, NGRAM, ECHO_MIN_RATE, ECHO_MIN_CALLS, _SHAPE_EXAMPLES, _ERRORS]
    name = "consistency" if parts == "all" else "consistency-tools"
    return {"name": name, "version": VERSION, "hash": canonical_hash(params)[:16]}


def other_world(
    messages: Sequence[Message], conversation: str, profiles: Profiles, rng_pick: int
) -> tuple[Message, ...] | None:
    """The continuation with each successful tool result replaced by a successful recorded
    result of the same tool from another conversation (right format, wrong world); None when
    no result could be replaced. ``rng_pick`` seeds which recorded result is taken."""
    out: list[Message] = []
    changed = False
    for i, m in enumerate(messages):
        if m.role == "tool" and m.function and not is_failure(m):
            pool = [
                r
                for chash, r in profiles.results.get(m.function, ())
                if chash != conversation and r.text != m.text
            ]
            if pool:
                pick = pool[int(canonical_hash([rng_pick, i]), 16) % len(pool)]
                out.append(m.model_copy(update={"content": pick.text}))
                changed = True
                continue
        out.append(m)
    return tuple(out) if changed else None


def to_json(profiles: Profiles) -> dict[str, object]:
    """The profiles as JSON (recorded in results: what the discriminator checked against)."""
    return {
        t: {"shape": p.shape[0], "keys": sorted(p.shape[1]), "echoed": sorted(p.echoed)}
        for t, p in sorted(profiles.tools.items())
    }


__all__ = [
    "VERSION",
    "Parts",
    "Profiles",
    "ToolProfile",
    "build_profiles",
    "compare",
    "identity",
    "other_world",
    "score",
    "store_profiles",
    "to_json",
]
