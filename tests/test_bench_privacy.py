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


def _row(same: list[bool], scores: list[list[Any]], pending: bool = False) -> dict[str, Any]:
    return {"same": same, "scores": scores, "pending": pending}


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.split("|")[1:-1]]


def test_flip_table_counts_flips_over_every_reply(bench: ModuleType) -> None:
    judges = [SimpleNamespace(threshold=0.5), SimpleNamespace(threshold=0.2)]
    rows = [
        _row([True, True], [[], []]),  # identical transcripts: cannot flip
        _row([False, False], [[0.9, 0.1], [0.3, 0.25]]),  # flips the first only
        _row([False, False], [[0.6, 0.7], [None, 0.9]]),  # flagged twice; ungradable
        _row([False, True], [[0.4, 0.45], []]),
    ]
    table = bench.flip_table(rows, judges, ["judge/A?x=1", "judge/B"]).splitlines()
    first, second = _cells(table[2]), _cells(table[3])
    # grader, replies, identical, differing, judged, ungradable, flagged raw and de-id., flips
    assert first[:9] == ["`judge/A`", "4", "1", "3", "3", "0", "2", "1", "1"]
    assert first[9].startswith("25.00% [")
    assert second[:9] == ["`judge/B`", "4", "2", "2", "2", "1", "1", "1", "0"]
    assert second[9].startswith("0.00% [0.00%, ")


def test_a_stopped_run_scales_the_judged_rate_by_the_share_that_differs(
    bench: ModuleType,
) -> None:
    judges = [SimpleNamespace(threshold=0.5)]
    rows = [_row([True], [[]]) for _ in range(6)]
    rows += [_row([False], [[0.9, 0.1]]), _row([False], [[0.1, 0.2]])]
    rows += [_row([False], [[]], pending=True) for _ in range(2)]
    cells = _cells(bench.flip_table(rows, judges, ["judge/A"]).splitlines()[2])
    assert cells[1:5] == ["10", "6", "4", "2"]
    # 4 of 10 differ; 1 flip in 2 judged: 0.4 * 0.5
    assert cells[9].startswith("20.00% [")


def test_reused_raw_scores_are_those_of_the_same_judge_before_calibration(
    bench: ModuleType,
) -> None:
    assert bench.uncalibrated("judge/FAB?max_chars=900&calibration=v1") == "judge/FAB?max_chars=900"
    assert bench.uncalibrated("judge/X?calibration=v1") == "judge/X"
    assert bench.uncalibrated("judge/X?a=1&calibration=v&b=2") == "judge/X?a=1&b=2"
    specs = bench.demo_judges()
    assert specs and all(s.startswith("judge/") for s in specs)


def test_reused_scores_by_conversation_and_transcript_hash(bench: ModuleType) -> None:
    import json

    def row(j: int, graders: list[str], scores: list[list[float]], **kw: Any) -> str:
        base = {"conversation": j, "graders": graders, "raw_sha": f"r{j}", "deid_sha": f"d{j}"}
        return json.dumps({**base, "scores": scores, **kw})

    lines = [
        row(0, ["h1", "h2"], [[0.1, 0.2], [0.3, 0.4]]),
        row(1, ["p1", "h2"], [[0.5, 0.6], []]),  # calibrated and plain mixed; one identical
        row(2, ["x1", "h2"], [[0.7, 0.8], [0.9, 0.1]]),  # another judge: not reused
        row(3, ["h1", "h2"], [[], []], pending=True),  # not judged yet
    ]
    raw, deid = bench.reused_scores(lines, ["h1", "h2"], ["p1", "p2"])
    assert raw == {(0, "r0"): [0.1, 0.3], (1, "r1"): [0.5, None]}
    # A de-identified score is reused only where every judge has one.
    assert deid == {(0, "d0"): [0.2, 0.4]}


def test_the_control_side_differs_from_the_benchmark_only_in_its_surrogates(
    bench: ModuleType,
) -> None:
    from deploysim.privacy import Deidentifier

    text = "Hi, I'm Maren Lindqvist and my email is maren.lindqvist@example.org."
    raw = Conversation(messages=[Message(role="user", content=text)])
    ours = Deidentifier(key=b"flip-benchmark").deidentify_many([raw])[0].conversation
    (other,) = bench.other_side([raw], "another-key")
    assert ours is not None
    a, b = ours.messages[0].content, other.messages[0].content
    assert "Lindqvist" not in a and "Lindqvist" not in b  # both replace the same name ...
    assert a != b  # ... by surrogates drawn under different keys
    assert a.startswith("Hi, I'm ") and b.startswith("Hi, I'm ")
