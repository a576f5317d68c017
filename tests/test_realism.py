"""The realism check on tau-bench replays with simulated tools."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest

from deploysim.ingest import ingest_file
from deploysim.realism import _choice, run_realism
from deploysim.replay import ReplaySpec, create_sample, run_replay
from deploysim.sampling import SamplingSpec
from deploysim.store import Store
from deploysim.tools import ToolPolicy
from tests.conftest import TAU


def test_choice_reads_logprobs_then_text() -> None:
    import math

    assert _choice({" A": math.log(0.6), "B": math.log(0.2)}, "") == pytest.approx(0.75)
    assert _choice(None, "B") == 0.0 and _choice(None, "A.") == 1.0
    assert _choice(None, "maybe") is None


def test_realism_on_50_tau_prefixes(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as st:
        ingest_file(TAU, st)
        create_sample(st, "default", SamplingSpec(size=60, seed=1, mode="turn"))
        args = quote(json.dumps({"user_id": "mia_li_3668"}))
        model = f"scripted/call?tool=get_user_details&args={args}"
        run_replay(st, ReplaySpec(model=model, tools=ToolPolicy(mode="replay")))
        # A judge that always answers "A": it calls the replay real exactly when the replay
        # was shown first, which the seeded order makes about half the time.
        result = run_realism(st, judge="scripted/constant?text=A", model=model)
    o = result["overall"]
    assert o["n"] >= 50 and result["unjudgeable"] == 0
    assert o["ci"][0] <= o["win_rate"] <= o["ci"][1] and 0.3 < o["win_rate"] < 0.7
    assert set(result["per_tool"]) == {"get_user_details"}
