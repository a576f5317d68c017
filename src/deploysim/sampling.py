"""Prefix sampling: which logged conversation prefixes the candidate will continue.

Two modes (method.md §1):

- ``turn``: uniform over eligible *user turns*; the prefix keeps everything up to and including
  that user message, and the logged next assistant message (if any) is the reference response.
- ``final``: uniform over eligible *conversations*; the final assistant turn is regenerated, so
  the prefix is everything before it and that turn is the reference.

Sampling is simple random sampling without replacement, optionally stratified with proportional
allocation; each prefix records its inclusion probability (n_h / N_h) so estimates can be
Hajek-weighted. The same units, spec and seed always give the same sample.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from deploysim.errors import UsageError
from deploysim.schema import canonical_hash

Mode = Literal["turn", "final"]
STRATA = ("source_format", "source_file", "has_tools", "user_turns")


class SamplingSpec(BaseModel):
    """What to sample: mode, size, seed, eligibility filters and an optional stratum key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Mode = "turn"
    size: int = Field(100, ge=1)
    seed: int = 0
    formats: tuple[str, ...] = ()
    min_user_turns: int = 1
    max_user_turns: int | None = None
    has_tools: bool | None = None
    include_multimodal: bool = False
    max_prefix_chars: int | None = None  # bound the prompt (small local models, long pastes)
    stratify: str | None = None
    # Input files (SHA-256) whose conversations form the population; empty: the whole store.
    inputs: tuple[str, ...] = ()

    def hash(self) -> str:
        """SHA-256 of the spec (``inputs`` omitted when empty, so older samples keep theirs)."""
        return canonical_hash(
            self.model_dump(mode="json", exclude={"inputs"} if not self.inputs else None)
        )


@dataclass(frozen=True, slots=True)
class Unit:
    """What sampling needs to know of one stored conversation (no message content)."""

    conversation_hash: str
    roles: str  # one letter per message, see store.ROLE_CODES
    source_format: str
    source_file: str
    n_tools: int
    multimodal: bool
    lengths: list[int] | None = None  # text length of each message, when known


@dataclass(frozen=True, slots=True)
class Prefix:
    """A sampled prefix: ``messages[:cut]`` of a conversation, with its logged next turn."""

    conversation_hash: str
    cut: int
    reference_index: int | None  # index of the logged next assistant message, if any
    stratum: str
    inclusion_prob: float

    @property
    def key(self) -> str:
        """Identity of the prefix within a sample (conversation + cut)."""
        return f"{self.conversation_hash}:{self.cut}"


def candidates(unit: Unit, mode: Mode) -> Iterator[tuple[int, int | None]]:
    """The (cut, reference index) pairs a conversation offers in ``mode``."""
    roles = unit.roles
    if mode == "turn":
        for i, r in enumerate(roles):
            if r == "u":
                ref = i + 1 if i + 1 < len(roles) and roles[i + 1] == "a" else None
                yield i + 1, ref
        return
    # The conversation's final turn: an unanswered last user message is regenerated as is;
    # otherwise the final assistant message is, with the logged one as reference.
    last_assistant = roles.rfind("a")
    if roles.endswith("u"):
        yield len(roles), None
    elif last_assistant > 0 and "u" in roles[:last_assistant]:
        yield last_assistant, last_assistant


def eligible(unit: Unit, spec: SamplingSpec) -> bool:
    """Whether a conversation passes the spec's filters."""
    user_turns = unit.roles.count("u")
    return (
        (not spec.formats or unit.source_format in spec.formats)
        and user_turns >= spec.min_user_turns
        and (spec.max_user_turns is None or user_turns <= spec.max_user_turns)
        and (spec.has_tools is None or (unit.n_tools > 0 or "t" in unit.roles) == spec.has_tools)
        and (spec.include_multimodal or not unit.multimodal)
    )


def stratum_of(unit: Unit, key: str | None) -> str:
    """The stratum label of a conversation under ``key``."""
    if key is None:
        return "all"
    if key == "source_format":
        return unit.source_format
    if key == "source_file":
        return unit.source_file
    if key == "has_tools":
        return str(unit.n_tools > 0 or "t" in unit.roles).lower()
    if key == "user_turns":
        n = unit.roles.count("u")
        return "1" if n == 1 else "2-3" if n <= 3 else "4-7" if n <= 7 else "8+"
    raise UsageError(f"unknown stratification key {key!r}; choose one of: {', '.join(STRATA)}")


def sample(
    units: Iterable[Unit] | Callable[[], Iterable[Unit]], spec: SamplingSpec
) -> tuple[list[Prefix], int]:
    """Draw the sample. Returns the prefixes (in a stable order) and the population size.

    ``units`` is the population, or a function that streams it afresh in conversation-hash
    order (as :meth:`deploysim.store.Store.units` does). A function is read twice, once to
    count each stratum and once to pick the drawn positions, so memory holds the sample and
    never the population (several million candidate prefixes at a million conversations).
    Both forms give the same sample for the same units, spec and seed.
    """
    stream = units if callable(units) else _rereadable(units)
    sizes: dict[str, int] = defaultdict(int)
    for stratum, _, _, _ in _population(stream(), spec):
        sizes[stratum] += 1
    total = sum(sizes.values())
    if total == 0:
        return [], 0
    allocation = _allocate(min(spec.size, total), sizes)
    rng = random.Random(spec.seed)
    # rng.sample picks positions from the population's length alone, so drawing positions in
    # range(N_h) draws what sampling each stratum's (hash, cut)-sorted list would.
    chosen = {h: set(rng.sample(range(sizes[h]), allocation[h])) for h in sorted(sizes)}
    seen: dict[str, int] = defaultdict(int)
    prefixes: list[Prefix] = []
    for stratum, conv, cut, ref in _population(stream(), spec):
        position = seen[stratum]
        seen[stratum] += 1
        if position in chosen[stratum]:
            prob = allocation[stratum] / sizes[stratum]
            prefixes.append(Prefix(conv, cut, ref, stratum, prob))
    if seen != sizes:
        raise UsageError("the sampling population changed between its two readings; sample again")
    prefixes.sort(key=lambda p: (p.conversation_hash, p.cut))
    return prefixes, total


def _rereadable(units: Iterable[Unit]) -> Callable[[], Iterable[Unit]]:
    """An in-memory population, sorted, as a function that reads it again."""
    ordered = sorted(units, key=lambda u: u.conversation_hash)
    return lambda: ordered


def _population(
    units: Iterable[Unit], spec: SamplingSpec
) -> Iterator[tuple[str, str, int, int | None]]:
    """Every eligible (stratum, conversation, cut, reference index), in (hash, cut) order."""
    last = ""
    for unit in units:
        if unit.conversation_hash <= last:
            raise ValueError("units must come in increasing conversation-hash order")
        last = unit.conversation_hash
        if not eligible(unit, spec):
            continue
        stratum = stratum_of(unit, spec.stratify)
        for cut, ref in candidates(unit, spec.mode):
            if not _too_long(unit, cut, spec.max_prefix_chars):
                yield stratum, unit.conversation_hash, cut, ref


def _too_long(unit: Unit, cut: int, limit: int | None) -> bool:
    return limit is not None and unit.lengths is not None and sum(unit.lengths[:cut]) > limit


def _allocate(n: int, sizes: dict[str, int]) -> dict[str, int]:
    """Proportional allocation of ``n`` over strata (largest remainder), capped by size."""
    total = sum(sizes.values())
    exact = {k: n * s / total for k, s in sizes.items()}
    alloc = {k: min(sizes[k], int(v)) for k, v in exact.items()}
    leftover = n - sum(alloc.values())
    for k in sorted(exact, key=lambda k: (-(exact[k] - int(exact[k])), k)):
        if leftover == 0:
            break
        if alloc[k] < sizes[k]:
            alloc[k] += 1
            leftover -= 1
    return alloc
