"""Shared fixtures: the real public data in ../shared/data, and an isolated secret key; the
optional extras' markers (``tests/extras.py``)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from tests import extras

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DATA = SHARED / "data"
HH = DATA / "chat" / "hh-rlhf-harmless-test.sample20.jsonl"
OASST = DATA / "chat" / "oasst-en-trees.sample10.jsonl"
TAU = DATA / "agentic" / "tau-bench-airline-gpt4o.tasks00-24.json"


@cache
def tau_user() -> tuple[str, str]:
    """The first user id the tau-bench records look up, and that user's first name.

    Read from the shared file at run time: tests that need a call the records answer must not
    copy ids or names out of the shared data.
    """
    for task in json.loads(TAU.read_text(encoding="utf-8")):
        traj = task["traj"]
        for i, m in enumerate(traj):
            for call in m.get("tool_calls") or []:
                if call["function"]["name"] == "get_user_details":
                    user = json.loads(call["function"]["arguments"])["user_id"]
                    result = next(r for r in traj[i + 1 :] if r.get("role") == "tool")
                    return user, json.loads(result["content"])["name"]["first_name"]
    raise LookupError(f"{TAU}: no get_user_details call")


INSPECT_DIR = DATA / "agentic" / "inspect-logs"
PII = DATA / "pii" / "presidio-synth-v2.first750.json"


@pytest.fixture(autouse=True)
def _secret_key(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests never touch the user's key file: a fixed key comes from the environment."""
    monkeypatch.setenv("DEPLOYSIM_SECRET_KEY", "test-secret-key")
    monkeypatch.setenv("DEPLOYSIM_KEY_FILE", str(tmp_path_factory.getbasetemp() / "secret.key"))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a test whose extras are missing, or fail it under DEPLOYSIM_REQUIRE_EXTRAS=1."""
    extras.check(item)
