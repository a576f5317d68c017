"""ingest -> store -> export --format openai -> ingest gives identical conversations."""

from __future__ import annotations

import json
from pathlib import Path

from deploysim.export import export_openai
from deploysim.ingest import ingest_file
from deploysim.schema import Conversation
from deploysim.store import Store
from tests.conftest import HH, INSPECT_DIR, OASST, TAU


def _roundtrip(tmp_path: Path, source: Path) -> tuple[list[Conversation], list[Conversation]]:
    out = tmp_path / f"{source.stem}.export.jsonl"
    with Store(tmp_path / "first.db") as first:
        ingest_file(source, first)
        before = list(first.conversations())
        assert export_openai(first, out) == len(before)
    with Store(tmp_path / "second.db") as second:
        report = ingest_file(out, second)
        after = list(second.conversations())
    assert report.format == "openai" and report.skipped == 0
    return before, after


def _content(convs: list[Conversation]) -> list[Conversation]:
    return [c.model_copy(update={"provenance": None}) for c in convs]


def test_tau_bench_roundtrip_is_identical_with_tool_calls_and_results(tmp_path: Path) -> None:
    before, after = _roundtrip(tmp_path, TAU)
    assert len(before) == 100
    assert _content(before) == _content(after)
    assert [c.content_hash() for c in before] == [c.content_hash() for c in after]
    calls = sum(c.n_tool_calls for c in after)
    results = sum(1 for c in after for m in c.messages if m.role == "tool")
    assert calls == results > 500
    # The raw JSON-string arguments survive byte for byte.
    raw_before = [tc.raw_arguments for c in before for m in c.messages for tc in m.tool_calls]
    raw_after = [tc.raw_arguments for c in after for m in c.messages for tc in m.tool_calls]
    assert raw_before == raw_after


def test_roundtrip_keeps_references_ids_parts_and_tools(tmp_path: Path) -> None:
    for source in (HH, OASST, next(INSPECT_DIR.glob("*browser.json"))):
        before, after = _roundtrip(tmp_path / source.stem, source)
        assert _content(before) == _content(after), source


def test_export_is_standard_openai_chat_jsonl(tmp_path: Path) -> None:
    out = tmp_path / "tau.jsonl"
    with Store(tmp_path / "s.db") as store:
        ingest_file(TAU, store)
        export_openai(store, out)
    first = json.loads(out.read_text().splitlines()[0])
    call = next(m for m in first["messages"] if m.get("tool_calls"))
    assert call["content"] is None
    assert call["tool_calls"][0]["type"] == "function"
    assert isinstance(call["tool_calls"][0]["function"]["arguments"], str)
    result = next(m for m in first["messages"] if m["role"] == "tool")
    assert set(result) >= {"role", "tool_call_id", "content", "name"}
