"""Prefix sampling: modes, eligibility, inclusion probabilities, uniformity, determinism."""

from __future__ import annotations

import tracemalloc
from collections import Counter
from collections.abc import Iterator

import pytest
from scipy.stats import chisquare

from deploysim.sampling import SamplingSpec, Unit, candidates, sample


def _units() -> list[Unit]:
    # Conversations with 1..6 user turns; some end on a user turn, one is multimodal.
    units = []
    for i in range(30):
        turns = 1 + i % 6
        roles = "s" + "ua" * turns + ("u" if i % 5 == 0 else "")
        units.append(Unit(f"c{i:02d}", roles, "openai" if i % 2 else "sharegpt", "f", 0, i == 7))
    return units


def test_turn_mode_cuts_after_each_user_turn_with_logged_reference() -> None:
    unit = Unit("c", "suautu", "openai", "f", 0, False)
    assert list(candidates(unit, "turn")) == [(2, 2), (4, None), (6, None)]
    assert list(candidates(Unit("c", "suaua", "openai", "f", 0, False), "final")) == [(4, 4)]
    assert list(candidates(Unit("c", "suau", "openai", "f", 0, False), "final")) == [(4, None)]


def test_same_seed_same_sample_and_inclusion_probabilities() -> None:
    spec = SamplingSpec(mode="turn", size=20, seed=7)
    a, population = sample(_units(), spec)
    b, _ = sample(list(reversed(_units())), spec)
    assert a == b and len(a) == 20
    assert all(p.inclusion_prob == pytest.approx(20 / population) for p in a)
    assert sample(_units(), spec.model_copy(update={"seed": 8}))[0] != a


def test_eligibility_filters() -> None:
    units = _units()
    prefixes, population = sample(units, SamplingSpec(size=1000, formats=("openai",)))
    convs = {u.conversation_hash: u for u in units}
    assert all(convs[p.conversation_hash].source_format == "openai" for p in prefixes)
    assert len(prefixes) == population  # everything eligible is taken when size exceeds it
    assert "c07" not in {p.conversation_hash for p in prefixes}  # multimodal excluded
    few, _ = sample(units, SamplingSpec(size=1000, max_user_turns=2))
    assert {convs[p.conversation_hash].roles.count("u") for p in few} <= {1, 2}


def test_stratified_sample_uses_proportional_allocation() -> None:
    prefixes, _ = sample(_units(), SamplingSpec(size=30, stratify="source_format"))
    by = Counter(p.stratum for p in prefixes)
    assert sum(by.values()) == 30 and set(by) == {"openai", "sharegpt"}
    for p in prefixes:
        assert 0 < p.inclusion_prob <= 1


@pytest.mark.parametrize("mode", ["turn", "final"])
def test_chi_square_uniform_over_units(mode: str) -> None:
    units = _units()
    spec = SamplingSpec(mode=mode, size=5)
    counts: Counter[str] = Counter()
    draws = 2000
    for seed in range(draws):
        prefixes, population = sample(units, spec.model_copy(update={"seed": seed}))
        counts.update(p.conversation_hash if mode == "final" else p.key for p in prefixes)
    # Every eligible unit must appear; turn mode counts user turns, final mode conversations.
    assert len(counts) == population
    observed = list(counts.values())
    result = chisquare(observed)
    print(f"{mode}: {population} units, chi2={result.statistic:.1f}, p={result.pvalue:.3f}")
    assert result.pvalue > 0.001
    # Long conversations are not over-represented in final mode (one unit each).
    if mode == "final":
        assert population == len([u for u in units if not u.multimodal])


def test_max_prefix_chars_bounds_the_prompt() -> None:
    unit = Unit("c", "suaua", "openai", "f", 0, False, [10, 50, 400, 30, 20])
    spec = SamplingSpec(mode="turn", size=10, max_prefix_chars=100)
    prefixes, population = sample([unit], spec)
    # Cut after the first user turn: 60 chars; after the second: 490 > 100.
    assert population == 1 and [p.cut for p in prefixes] == [2]
    unknown = Unit("d", "suaua", "openai", "f", 0, False, None)
    assert sample([unknown], spec)[1] == 2  # unknown lengths are not filtered


def _stream(n: int) -> Iterator[Unit]:
    # Made-up conversations in hash order, created one at a time and dropped after use.
    for i in range(n):
        yield Unit(f"h{i:08d}", "uaua", "openai", "f", 0, False)


def test_a_population_function_gives_the_same_sample_as_the_list() -> None:
    units = sorted(_units(), key=lambda u: u.conversation_hash)
    for spec in (
        SamplingSpec(size=12, seed=3),
        SamplingSpec(size=9, seed=4, stratify="user_turns"),
        SamplingSpec(size=5, mode="final", stratify="source_format"),
    ):
        assert sample(lambda: iter(units), spec) == sample(list(reversed(units)), spec)


def test_a_population_function_must_stream_in_hash_order() -> None:
    units = sorted(_units(), key=lambda u: u.conversation_hash, reverse=True)
    with pytest.raises(ValueError, match="hash order"):
        sample(lambda: iter(units), SamplingSpec(size=3))


def test_sampling_a_streamed_population_does_not_hold_it() -> None:
    # 40,000 conversations offer 80,000 candidate prefixes: holding them (a tuple each in a
    # list) takes over 8 MB; streamed, memory holds the 20 drawn prefixes and a few counters.
    tracemalloc.start()
    try:
        prefixes, population = sample(lambda: _stream(40_000), SamplingSpec(size=20))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert population == 80_000 and len(prefixes) == 20
    assert peak < 2_000_000
