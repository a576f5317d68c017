"""The production-stack readers: each detected and read from a fixture shaped like the real
export (tests/ingest/fixtures.py names each structure's source), and the no-empty-success rule."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deploysim.cli import app
from deploysim.errors import InputError
from deploysim.ingest import ingest_file
from deploysim.schema import Conversation, ReasoningPart
from deploysim.store import Store
from tests.conftest import HH, INSPECT_DIR, OASST, TAU
from tests.ingest import fixtures as fx


def _ingest(tmp_path: Path, path: Path) -> tuple[str, list[Conversation]]:
    with Store(tmp_path / "s.db") as store:
        report = ingest_file(path, store)
        assert report.skipped == 0, report.skips
        assert report.warnings == ()
        return report.format, list(store.conversations())


def _roles(conv: Conversation) -> list[str]:
    return [m.role for m in conv.messages]


def test_openai_responses_items_pair_calls_by_call_id(tmp_path: Path) -> None:
    fmt, (conv,) = _ingest(tmp_path, fx.jsonl(tmp_path / "r.jsonl", [fx.RESPONSES]))
    assert fmt == "openai-responses"
    assert _roles(conv) == ["system", "user", "assistant", "tool", "assistant"]
    call_turn = conv.messages[2]
    assert isinstance(call_turn.content[0], ReasoningPart)  # type: ignore[index]
    assert call_turn.tool_calls[0].arguments == {"city": "Oslo"}
    assert conv.messages[3].tool_call_id == "call_a" and conv.messages[3].function == "get_weather"
    assert conv.messages[4].text == "Yes, light rain in Oslo."
    assert [t.name for t in conv.tools] == ["get_weather"]


def test_openai_responses_orphan_output_is_a_reported_bad_record(tmp_path: Path) -> None:
    orphan = {"input": [{"type": "function_call_output", "call_id": "nope", "output": "x"}]}
    path = fx.jsonl(tmp_path / "r.jsonl", [fx.RESPONSES, orphan])
    with Store(tmp_path / "s.db") as store:
        report = ingest_file(path, store)
    assert (report.format, report.kept, report.skipped) == ("openai-responses", 1, 1)
    assert "which no call made" in report.skips[0].reason and report.skips[0].line == 2


def test_anthropic_blocks_map_to_tool_messages_and_reasoning(tmp_path: Path) -> None:
    plain = {
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    }
    # A plain first record does not hide the Anthropic blocks of the next (detection samples).
    fmt, convs = _ingest(tmp_path, fx.jsonl(tmp_path / "a.jsonl", [plain, fx.ANTHROPIC]))
    assert fmt == "anthropic"
    conv = next(c for c in convs if len(c.messages) > 2)
    assert _roles(conv) == ["system", "user", "assistant", "tool", "user", "assistant"]
    thinking = conv.messages[2].content[0]  # type: ignore[index]
    assert isinstance(thinking, ReasoningPart) and thinking.signature == "sig1"
    assert conv.messages[2].tool_calls[0].arguments == {"cmd": "ls"}
    assert conv.messages[3].tool_call_id == "toolu_1" and conv.messages[3].text == "a.txt b.txt"
    assert conv.messages[5].text == "I cannot tell without sizes."
    assert conv.tools[0].name == "run"


def test_otel_genai_spans_assemble_one_conversation_per_id_from_each_layout(
    tmp_path: Path,
) -> None:
    fmt, convs = _ingest(tmp_path, fx.document(tmp_path / "traces.json", fx.otel_export()))
    assert fmt == "otel-genai"
    by_len = sorted(convs, key=lambda c: len(c.messages))
    old, new = by_len
    assert [m.text for m in old.messages] == ["What is 2+2?", "4"]  # gen_ai.prompt.N layout
    # Two traces of one gen_ai.conversation.id, content on the attributes then on the event.
    assert _roles(new) == ["system", "user", "assistant", "tool", "assistant"]
    assert new.messages[2].tool_calls[0].arguments == {"n": 2}
    assert new.messages[3].tool_call_id == "c1"
    assert new.messages[4].text == "Booked."
    assert new.tools[0].name == "book"


def test_otel_jsonl_export_lines_read_the_same(tmp_path: Path) -> None:
    path = fx.jsonl(tmp_path / "otlp.jsonl", [fx.otel_export()])
    fmt, convs = _ingest(tmp_path, path)
    assert fmt == "otel-genai" and len(convs) == 2


def test_openinference_llm_spans_merge_calls_of_a_session(tmp_path: Path) -> None:
    fmt, (conv,) = _ingest(tmp_path, fx.jsonl(tmp_path / "p.jsonl", fx.openinference_spans()))
    assert fmt == "openinference"
    assert _roles(conv) == ["system", "user", "assistant", "tool", "assistant"]
    assert conv.messages[2].tool_calls[0].arguments == {"mi": 3}
    assert conv.messages[4].text == "About 4.8 km."


def test_openinference_nested_attributes_read_like_dotted(tmp_path: Path) -> None:
    span = fx.openinference_spans()[0]
    span["attributes"] = {
        "openinference": {"span": {"kind": "LLM"}},
        "llm": {
            "input_messages": [{"message": {"role": "user", "content": "Hi"}}],
            "output_messages": [{"message": {"role": "assistant", "content": "Hello"}}],
        },
    }
    fmt, (conv,) = _ingest(tmp_path, fx.jsonl(tmp_path / "p.jsonl", [span]))
    assert fmt == "openinference" and [m.text for m in conv.messages] == ["Hi", "Hello"]


def test_swe_agent_traj_reads_its_history(tmp_path: Path) -> None:
    fmt, (conv,) = _ingest(tmp_path, fx.document(tmp_path / "x.traj", fx.SWE_AGENT))
    assert fmt == "swe-agent"
    assert _roles(conv) == ["system", "user", "assistant", "tool"]
    assert conv.messages[2].tool_calls[0].function == "bash"
    assert conv.messages[3].tool_call_id == "call_1"


def test_openhands_history_events_become_calls_and_results(tmp_path: Path) -> None:
    fmt, (conv,) = _ingest(tmp_path, fx.jsonl(tmp_path / "output.jsonl", [fx.OPENHANDS]))
    assert fmt == "openhands"
    assert _roles(conv) == ["system", "user", "assistant", "tool"]
    call = conv.messages[2].tool_calls[0]
    assert (call.id, call.function, call.arguments) == (
        "toolu_9",
        "execute_bash",
        {"command": "pytest"},
    )
    assert conv.messages[3].text == "1 passed"
    # The UI's export, a bare event list, is the same conversation.
    sub = tmp_path / "ui"
    sub.mkdir()
    fmt2, (conv2,) = _ingest(sub, fx.document(sub / "ev.json", fx.OPENHANDS["history"]))
    assert fmt2 == "openhands" and conv2.messages == conv.messages


def test_atif_steps_and_observations(tmp_path: Path) -> None:
    fmt, (conv,) = _ingest(tmp_path, fx.document(tmp_path / "t.json", fx.ATIF))
    assert fmt == "atif"
    assert _roles(conv) == ["user", "assistant", "tool", "assistant"]
    assert conv.messages[1].reasoning == "wc will do."
    assert conv.messages[2].tool_call_id == "t1"


def test_toolbench_answer_file_is_read(tmp_path: Path) -> None:
    fmt, (conv,) = _ingest(tmp_path, fx.document(tmp_path / "10_DFS.json", fx.TOOLBENCH))
    assert fmt == "toolbench"
    assert _roles(conv) == ["system", "user", "assistant", "tool", "assistant"]
    assert conv.messages[3].tool_call_id == conv.messages[2].tool_calls[0].id
    assert conv.tools[0].name == "lookup_zip"


def test_bfcl_file_is_not_ingested_with_the_reason(tmp_path: Path) -> None:
    path = fx.jsonl(tmp_path / "BFCL_v3_simple.json", [fx.BFCL])
    with Store(tmp_path / "s.db") as store, pytest.raises(InputError, match="not ingested: a BFCL"):
        ingest_file(path, store)


def test_langfuse_trace_with_observations(tmp_path: Path) -> None:
    fmt, (conv,) = _ingest(tmp_path, fx.document(tmp_path / "lf.json", {"data": [fx.LANGFUSE]}))
    assert fmt == "langfuse"
    assert [m.text for m in conv.messages] == [
        "You translate to French.",
        "Translate 'cat'.",
        "chat",
    ]


def test_langsmith_llm_runs(tmp_path: Path) -> None:
    fmt, (conv,) = _ingest(tmp_path, fx.jsonl(tmp_path / "runs.jsonl", [fx.LANGSMITH]))
    assert fmt == "langsmith"
    assert _roles(conv) == ["system", "user", "assistant"] and conv.messages[2].text == "Lima."


def test_a_file_with_no_records_is_not_ingested(tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    path.write_text("[]")
    with Store(tmp_path / "s.db") as store:
        with pytest.raises(InputError, match="holds no records"):
            ingest_file(path, store, fmt="sharegpt")
        assert store.inputs() == []


def test_an_accepted_file_with_no_conversation_warns_with_counts(tmp_path: Path) -> None:
    path = fx.document(tmp_path / "empty.traj", {**fx.SWE_AGENT, "history": []})
    with Store(tmp_path / "s.db") as store:
        report = ingest_file(path, store)
    assert (report.format, report.conversations) == ("swe-agent", 0)
    assert report.warnings and "1 records" in report.warnings[0] and "1 empty" in report.warnings[0]


def test_ingest_of_a_directory_mixing_every_format(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    expected = {
        "responses.jsonl": "openai-responses",
        "anthropic.jsonl": "anthropic",
        "otel.json": "otel-genai",
        "phoenix.jsonl": "openinference",
        "run.traj": "swe-agent",
        "openhands.jsonl": "openhands",
        "atif.json": "atif",
        "toolbench.json": "toolbench",
        "langfuse.json": "langfuse",
        "langsmith.jsonl": "langsmith",
        "hh.jsonl": "hh-rlhf",
        "oasst.jsonl": "oasst",
        "tau.json": "tau-bench",
        "openai.jsonl.gz": "openai",
        "sharegpt.json": "sharegpt",
        "inspect.eval": "inspect",
    }
    fx.jsonl(logs / "responses.jsonl", [fx.RESPONSES])
    fx.jsonl(logs / "anthropic.jsonl", [fx.ANTHROPIC])
    fx.document(logs / "otel.json", fx.otel_export())
    fx.jsonl(logs / "phoenix.jsonl", fx.openinference_spans())
    fx.document(logs / "run.traj", fx.SWE_AGENT)
    fx.jsonl(logs / "openhands.jsonl", [fx.OPENHANDS])
    fx.document(logs / "atif.json", fx.ATIF)
    fx.document(logs / "toolbench.json", fx.TOOLBENCH)
    fx.document(logs / "langfuse.json", [fx.LANGFUSE])
    fx.jsonl(logs / "langsmith.jsonl", [fx.LANGSMITH])
    shutil.copy(HH, logs / "hh.jsonl")
    shutil.copy(OASST, logs / "oasst.jsonl")
    shutil.copy(TAU, logs / "tau.json")
    shutil.copy(next(INSPECT_DIR.glob("*.eval")), logs / "inspect.eval")
    chat = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    (logs / "openai.jsonl.gz").write_bytes(gzip.compress(json.dumps(chat).encode() + b"\n"))
    sg = [{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}]
    fx.document(logs / "sharegpt.json", sg)
    store = str(tmp_path / "s.db")
    result = CliRunner().invoke(
        app, ["ingest", str(logs), "--store", store, "--json", "--no-deidentify"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["unreadable"] == []
    got = {Path(f["path"]).name: f["format"] for f in out["files"]}
    assert got == expected
    assert all(f["conversations"] > 0 and not f["warnings"] for f in out["files"]), out["files"]
    # The table shows the same counts to a person.
    table = CliRunner().invoke(
        app, ["ingest", str(logs), "--store", str(tmp_path / "t.db"), "--no-deidentify"]
    )
    assert (
        table.exit_code == 0
        and "openai-responses" in table.stdout
        and "not ingested" not in table.output
    )
