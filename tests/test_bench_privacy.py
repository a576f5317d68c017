"""benchmarks/privacy.py's judge-flip bookkeeping: the graded unit and the flip table.

The judged run itself needs the local judge and the ShareGPT package (docs/design/privacy.md
has its figures); these check the parts that decide what is counted as a flip.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from deploysim.schema import Conversation, Message

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "privacy.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("privacy_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _conv(*roles: str) -> Conversation:
    return Conversation(messages=[Message(role=r, content=f"{r} {i}") for i, r in enumerate(roles)])


def test_last_reply_is_the_last_answer_to_a_user(bench: ModuleType) -> None:
    assert bench.last_reply(_conv("user", "assistant", "user", "assistant")) == 3
    assert bench.last_reply(_conv("system", "user", "assistant", "user")) == 2
    assert bench.last_reply(_conv("assistant", "assistant")) is None
    assert bench.last_reply(_conv("user")) is None


def _row(same: list[bool], scores: list[list[Any]]) -> dict[str, Any]:
    return {"same": same, "scores": scores}


def test_flip_table_counts_flips_over_every_reply(bench: ModuleType) -> None:
    judges = [SimpleNamespace(threshold=0.5), SimpleNamespace(threshold=0.2)]
    rows = [
        _row([True, True], [[], []]),  # identical transcripts: cannot flip
        _row([False, False], [[0.9, 0.1], [0.3, 0.25]]),  # flips the first only
        _row([False, False], [[0.6, 0.7], [None, 0.9]]),  # flagged twice; ungradable
        _row([False, True], [[0.4, 0.45], []]),
    ]
    table = bench.flip_table(rows, judges, ["judge/A?x=1", "judge/B"]).splitlines()
    first = [c.strip() for c in table[2].split("|")[1:-1]]
    second = [c.strip() for c in table[3].split("|")[1:-1]]
    # grader, replies, judged pairs, ungradable, flagged raw, flagged de-id., flips, rate
    assert first[:7] == ["`judge/A`", "4", "3", "0", "2", "1", "1"]
    assert first[7].startswith("25.00% [")
    assert second[:7] == ["`judge/B`", "4", "2", "1", "1", "1", "0"]
    assert second[7].startswith("0.00% [0.00%, ")
