"""The simulator alone on logged tau-bench calls, blind and seeing the log (the ablation)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from deploysim.errors import UsageError
from deploysim.ingest import ingest_file
from deploysim.models import GenerateConfig, Generation, Model, ModelSpec
from deploysim.prefixes import load_prefix, render_continuation
from deploysim.realism import RealismSettings
from deploysim.realism.simulated import first_call, run_simulated
from deploysim.replay import create_sample
from deploysim.sampling import SamplingSpec
from deploysim.schema import Message, ToolCall, ToolDef
from deploysim.store import Store
from tests.conftest import TAU


class _Copier(Model):
    """A simulator that copies (plumbing, not a model): the logged result when its prompt
    shows the log's continuation, else the first recorded example of the tool."""

    def __init__(self) -> None:
        super().__init__(ModelSpec.parse("scripted/constant"))
        self.prompts: list[str] = []

    async def generate(
        self, messages: Sequence[Message], tools: Sequence[ToolDef], config: GenerateConfig
    ) -> Generation:
        prompt = messages[-1].text
        self.prompts.append(prompt)
        name = prompt.split("\n", 1)[0].removeprefix("Tool: ")
        seen = prompt.split("original session (for the state of the world):\n", 1)[1]
        for line in seen.splitlines():
            if line.startswith(f"TOOL {name}: "):
                return Generation(text=line.split(": ", 1)[1], finish_reason="stop")
        example = prompt.split("for the format:\n- ", 1)[1].split("\n", 1)[0]
        return Generation(text=example, finish_reason="stop")


class _Refuses(Model):
    """A simulator that must not be asked (the answers come from the cache)."""

    def __init__(self) -> None:
        super().__init__(ModelSpec.parse("scripted/constant"))

    async def generate(
        self, messages: Sequence[Message], tools: Sequence[ToolDef], config: GenerateConfig
    ) -> Generation:
        raise AssertionError("the simulator was called although every answer is cached")


def _store(tmp_path: Path, size: int) -> Store:
    st = Store(tmp_path / "s.db")
    ingest_file(TAU, st)
    create_sample(st, "default", SamplingSpec(size=size, seed=1, mode="turn"))
    return st


def test_first_call_finds_the_result_and_its_caller() -> None:
    call = ToolCall(id="c1", function="lookup", arguments={"id": "k9"})
    msgs = (
        Message(role="assistant", content="Checking.", tool_calls=(call,)),
        Message(role="tool", tool_call_id="c1", function="lookup", content='{"ok": true}'),
        Message(role="assistant", content="Done."),
    )
    assert first_call(msgs) == (1, 0)
    assert first_call(msgs[2:]) is None
    orphan = Message(role="tool", tool_call_id="zz", function="lookup", content="{}")
    assert first_call((orphan,)) is None


def test_both_arms_on_logged_calls_and_the_cache_resumes(tmp_path: Path) -> None:
    cache = tmp_path / "sim.jsonl"
    copier = _Copier()
    with _store(tmp_path, 30) as st:
        res = run_simulated(
            st,
            simulator=copier,
            discriminator="consistency-tools",
            settings=RealismSettings(limit=6),
            cache=cache,
        )
        n = res["prefixes"]
        assert n == 6 and set(res["arms"]) == {"blind", "sees-log"}
        assert len(cache.read_text().splitlines()) == 2 * n
        # Blind prompts never show the logged continuation (a failed answer is asked again).
        marker = "original session (for the state of the world):\n"
        blind_prompts = [p for p in copier.prompts if marker + "(nothing)" in p]
        assert len(blind_prompts) == n and len(copier.prompts) >= 2 * n
        for row in map(json.loads, cache.read_text().splitlines()):
            if row["arm"] == "sees-log":
                shown = render_continuation(load_prefix(st, row["prefix_id"]).continuation)
                assert any(marker + shown[:200] in p for p in copier.prompts)
        see, blind = res["arms"]["sees-log"], res["arms"]["blind"]
        # Copies of the logged result cannot be told apart: undecided, half a win each.
        assert see["equal_to_logged"] >= 1 and see["undecided"] >= see["equal_to_logged"]
        for arm in (see, blind):
            assert arm["overall"]["n"] + arm["undecided"] + arm["unjudgeable"] == n
            assert arm["ties_as_half"] is not None and 0 <= arm["ties_as_half"] <= 1
        assert blind["simulator_failures"] == 0  # recorded examples fit their own format
        assert blind["answered_only"]["overall"] == blind["overall"]
        assert res["discriminator"]["name"] == "consistency-tools"
        # A second run reads every answer from the cache and judges them the same.
        again = run_simulated(
            st,
            simulator=_Refuses(),
            discriminator="consistency-tools",
            settings=RealismSettings(limit=6),
            cache=cache,
        )
    assert again["arms"]["blind"]["overall"] == blind["overall"]
    assert again["arms"]["sees-log"]["undecided"] == see["undecided"]


def test_cli_runs_one_arm_and_wants_one_mode(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from deploysim.cli import app

    _store(tmp_path, 20).close()
    db = str(tmp_path / "s.db")
    runner = CliRunner()
    args = ["realism", "-s", db, "--simulator", "scripted/constant?text=x", "--arm", "blind"]
    args += ["--discriminator", "consistency-tools", "--limit", "3", "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert set(out["arms"]) == {"blind"} and out["prefixes"] == 3
    # "x" fits no recorded JSON format: every answer is a simulator failure, and says so.
    assert out["arms"]["blind"]["simulator_failures"] >= 1
    both = runner.invoke(app, [*args[:5], "-m", "scripted/constant", "--json"])
    assert isinstance(both.exception, UsageError) and "one of --model" in str(both.exception)


@pytest.mark.local
@pytest.mark.smollm2
def test_a_real_local_simulator_answers_logged_calls(tmp_path: Path) -> None:
    with _store(tmp_path, 12) as st:
        res = run_simulated(
            st,
            simulator="llamacpp/smollm2-135m?n_threads=1",
            arms=("blind",),
            discriminator="consistency-tools",
            settings=RealismSettings(limit=2),
        )
    blind = res["arms"]["blind"]
    assert res["prefixes"] == 2 and res["simulator"].startswith("llamacpp/smollm2-135m")
    assert blind["overall"]["n"] + blind["undecided"] + blind["unjudgeable"] == 2
    assert blind["seconds_per_call"] > 0
