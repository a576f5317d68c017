"""De-identification across worker processes: the same output as in one process."""

from __future__ import annotations

import pytest

from deploysim.errors import UsageError
from deploysim.privacy import Deidentifier
from deploysim.privacy.parallel import ParallelDeidentifier
from deploysim.schema import Conversation, Message

KEY = b"parallel-test-key"


def _conversations() -> list[Conversation]:
    texts = [
        "Hi, I'm Oskar Lindqvist, reach me at oskar.l@example.org or +44 20 7946 0958.",
        "Please ship it to 48 Harrow Lane, Leeds. My card is 4111 1111 1111 1111.",
        "What is the capital of France?",
        "My daughter Amira starts school in Bergen next week.",
        "",
    ]
    return [
        Conversation(
            messages=(
                Message(role="user", content=t),
                Message(role="assistant", content=f"Noted, {i}."),
            )
        )
        for i, t in enumerate(texts * 3)
    ]


def test_two_workers_give_what_one_process_gives() -> None:
    convs = _conversations()
    expected = Deidentifier(key=KEY).deidentify_many(convs)
    with ParallelDeidentifier(2, key=KEY) as deid:
        deid.start()
        assert deid.started_workers == 2
        got = deid.deidentify_many(convs)
        assert deid.deidentify_many([]) == [] and deid.worker_cpu_seconds > 0
    assert got == expected
    assert "Lindqvist" not in got[0].model_dump_json()


def test_one_worker_runs_here_and_zero_is_refused() -> None:
    convs = _conversations()[:2]
    local = ParallelDeidentifier(1, key=KEY)
    assert local.deidentify_many(convs) == Deidentifier(key=KEY).deidentify_many(convs)
    local.close()
    with pytest.raises(UsageError):
        ParallelDeidentifier(0, key=KEY)
