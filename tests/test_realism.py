"""The realism check on tau-bench replays with simulated tools."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

import pytest

from deploysim.ingest import ingest_file
from deploysim.models import GenerateConfig, Generation, Model, ModelSpec
from deploysim.realism import run_realism
from deploysim.realism.discriminators import _choice
from deploysim.replay import ReplaySpec, create_sample, run_replay
from deploysim.sampling import SamplingSpec
from deploysim.schema import Message, ToolDef
from deploysim.store import Store
from deploysim.tools import ToolPolicy
from tests.conftest import TAU, tau_user


def test_choice_reads_logprobs_then_text() -> None:
    import math

    assert _choice({" A": math.log(0.6), "B": math.log(0.2)}, "") == pytest.approx(0.75)
    assert _choice(None, "B") == 0.0 and _choice(None, "A.") == 1.0
    assert _choice(None, "maybe") is None


def test_realism_on_50_tau_prefixes(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as st:
        ingest_file(TAU, st)
        create_sample(st, "default", SamplingSpec(size=60, seed=1, mode="turn"))
        args = quote(json.dumps({"user_id": tau_user()[0]}))
        model = f"scripted/call?tool=get_user_details&args={args}"
        run_replay(st, ReplaySpec(model=model, tools=ToolPolicy(mode="replay")))
        # A judge that always answers "A": it calls the replay real exactly when the replay
        # was shown first, which the seeded order makes about half the time.
        result = run_realism(st, judge="scripted/constant?text=A", model=model)
    o = result["overall"]
    assert o["n"] >= 50 and result["unjudgeable"] == 0
    assert o["ci"][0] <= o["win_rate"] <= o["ci"][1] and 0.3 < o["win_rate"] < 0.7
    assert set(result["per_tool"]) == {"get_user_details"}


def test_broken_copies_change_what_their_kind_names() -> None:
    import random

    from deploysim.realism import NO_FORMAT, broken
    from deploysim.schema import Message, ToolCall

    logged = (
        Message(
            role="assistant",
            content="Let me check the basket first.",
            tool_calls=(ToolCall(id="1", function="basket", arguments={}),),
        ),
        Message(role="tool", tool_call_id="1", function="basket", content='{"items": 2}'),
        Message(role="assistant", content="You have two items."),
    )
    rng = random.Random(0)
    shuffled = broken(logged, "shuffled", rng)
    assert shuffled is not None and sorted(shuffled[0].text.split()) == sorted(
        logged[0].text.split()
    )
    no_format = broken(logged, "no_format", rng)
    assert no_format is not None and no_format[1].text == NO_FORMAT
    assert no_format[0] == logged[0] and no_format[1].tool_call_id == "1"
    shouting = broken(logged, "shouting", rng)
    assert shouting is not None and "YOU HAVE TWO ITEMS." in shouting[2].text
    assert broken(logged[2:], "no_format", rng) is None  # no tool result to break


class _SpotsBroken(Model):
    """A judge that answers the option without the controls' marks (plumbing, not a model)."""

    def __init__(self) -> None:
        super().__init__(ModelSpec.parse("scripted/constant"))

    async def generate(
        self, messages: Sequence[Message], tools: Sequence[ToolDef], config: GenerateConfig
    ) -> Generation:
        from deploysim.realism import NO_FORMAT

        prompt = messages[-1].text
        a = prompt[prompt.index("<A>") : prompt.index("</A>")]
        bad = NO_FORMAT in a or "OMG!!!" in a
        return Generation(text="B" if bad else "A", finish_reason="stop")


def _tau_store(tmp_path: Path, size: int) -> Store:
    st = Store(tmp_path / "s.db")
    ingest_file(TAU, st)
    create_sample(st, "default", SamplingSpec(size=size, seed=1, mode="turn"))
    return st


def test_controls_count_catches_of_broken_continuations(tmp_path: Path) -> None:
    from deploysim.realism import RealismSettings, run_controls

    with _tau_store(tmp_path, 12) as st:
        blind = run_controls(st, judge="scripted/constant?text=A", kinds=("no_format",))
        # A judge that always says "A" catches a broken copy only when it is shown second.
        assert 0 < blind["overall"]["catch_rate"] < 1 and not blind["validated"]
        # Asked both orders, a position-only judge decides nothing.
        both = RealismSettings(both_orders=True)
        even = run_controls(st, judge="scripted/constant?text=A", settings=both)
        assert even["overall"]["n"] == 0 and even["undecided"] > 0
        # Shown whole (a clipped continuation may hide the break), the marks are always seen.
        whole = RealismSettings(max_chars=50_000)
        sharp = run_controls(
            st, judge="x", judge_model=_SpotsBroken(), kinds=("shouting",), settings=whole
        )
    assert sharp["per_kind"]["shouting"]["n"] >= 5 and sharp["validated"]
    assert sharp["overall"]["catch_rate"] >= 0.9


def test_realism_reads_one_replay_spec(tmp_path: Path) -> None:
    with _tau_store(tmp_path, 8) as st:
        args = quote(json.dumps({"user_id": tau_user()[0]}))
        model = f"scripted/call?tool=get_user_details&args={args}"
        seeing = ReplaySpec(model=model, tools=ToolPolicy(mode="replay"))
        blind = ReplaySpec(model=model, tools=ToolPolicy(mode="replay", show_continuation=False))
        run_replay(st, seeing)
        run_replay(st, blind)
        both = run_realism(st, judge="scripted/constant?text=A", model=model)
        one = run_realism(st, judge="scripted/constant?text=A", model=model, spec=blind.hash[:12])
    assert both["replays"] == 2 * one["replays"] > 0 and one["spec"] == blind.hash[:12]


def test_cli_says_when_no_replay_could_be_judged(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from deploysim.cli import app
    from deploysim.errors import UsageError

    _tau_store(tmp_path, 5).close()  # a sample, and no replay of the model
    args = ["realism", "-s", str(tmp_path / "s.db"), "-m", "scripted/constant"]
    got = CliRunner().invoke(app, [*args, "--judge", "scripted/constant?text=A"])
    assert isinstance(got.exception, UsageError)
    assert "no replay could be judged" in str(got.exception)
