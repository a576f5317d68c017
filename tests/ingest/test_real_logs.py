"""Ingest of the real public logs in ../shared/data: counts, structure, idempotence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploysim.errors import InputError
from deploysim.ingest import ingest_file
from deploysim.schema import Conversation
from deploysim.store import Store
from tests.conftest import HH, INSPECT_DIR, OASST, TAU


def _ingest(store: Store, path: Path) -> list[Conversation]:
    report = ingest_file(path, store)
    assert report.skipped == 0, report.skips
    return [
        c for c in store.conversations() if c.provenance and c.provenance.source_file == str(path)
    ]


def test_hh_rlhf_has_20_conversations_with_rejected_references(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        report = ingest_file(HH, store)
        convs = list(store.conversations())
    assert (report.format, report.records, report.kept, report.conversations) == (
        "hh-rlhf",
        20,
        20,
        20,
    )
    for c in convs:
        roles = [m.role for m in c.messages]
        assert roles == ["user", "assistant"] * (len(roles) // 2)
        assert [r.label for r in c.references] == ["rejected"]
        assert c.references[0].message.role == "assistant"
    assert convs[0].messages[0].text == "what are some pranks with a pen i can do?"


def test_oasst_gives_54_root_to_leaf_paths_sharing_prefix_messages(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        report = ingest_file(OASST, store)
        convs = list(store.conversations())
        stored_messages = store.count("messages")
    assert (report.format, report.records, report.conversations) == ("oasst", 10, 54)
    assert len(convs) == 54
    total = sum(len(c.messages) for c in convs)
    # Shared prefixes are stored once: far fewer rows than messages across all paths.
    assert stored_messages < total
    assert all(m.id for c in convs for m in c.messages)
    # Paths of one tree share the root message id.
    roots = {
        c.provenance.metadata["message_tree_id"]: c.messages[0].id for c in convs if c.provenance
    }
    assert len(roots) == 10
    # Alternative assistant replies of a leaf are kept as references.
    assert any(c.references for c in convs)


def test_tau_bench_has_100_trajectories_with_linked_tool_calls(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        report = ingest_file(TAU, store)
        convs = list(store.conversations())
    assert (report.format, report.records, report.conversations) == ("tau-bench", 100, 100)
    assert len(convs) == 100
    pairs = [pair for c in convs for pair in c.tool_results()]
    assert len(pairs) > 500
    for call, result in pairs:
        assert result is not None, f"unanswered call {call.id}"
        assert result.role == "tool" and result.function == call.function
        assert call.parse_error is None and isinstance(call.arguments, dict)
    first = convs[0]
    assert first.messages[0].role == "system"
    assert first.provenance is not None and first.provenance.metadata["simulated_user"] is True


def test_tool_results_follow_reused_call_ids(tmp_path: Path) -> None:
    # tau-bench task 0 reuses one call id for two different searches.
    with Store(tmp_path / "s.db") as store:
        ingest_file(TAU, store)
        first = next(store.conversations())
    calls = [(c.function, r.function if r else None) for c, r in first.tool_results()]
    assert ("search_direct_flight", "search_direct_flight") in calls
    assert ("search_onestop_flight", "search_onestop_flight") in calls


def test_inspect_logs_json_and_eval(tmp_path: Path) -> None:
    logs = sorted(p for p in INSPECT_DIR.iterdir() if p.suffix in (".json", ".eval"))
    with Store(tmp_path / "s.db") as store:
        reports = [ingest_file(p, store) for p in logs]
        convs = list(store.conversations())
    assert [(r.format, r.conversations) for r in reports] == [
        ("inspect", 10),
        ("inspect", 1),
        ("inspect", 3),
    ]
    browser = [c for c in convs if c.tools]
    assert browser and any(t.name == "web_browser_go" for t in browser[0].tools)
    assert any(c.n_tool_calls for c in convs)


def test_not_a_log_file_is_an_input_error(tmp_path: Path) -> None:
    from deploysim.errors import InputError

    with Store(tmp_path / "s.db") as store, pytest.raises(InputError, match="LICENSE"):
        ingest_file(INSPECT_DIR / "LICENSE", store)


def test_ingesting_again_adds_no_rows(tmp_path: Path) -> None:
    files = [HH, OASST, TAU, *sorted(INSPECT_DIR.glob("*.json")), *INSPECT_DIR.glob("*.eval")]
    with Store(tmp_path / "s.db") as store:
        for f in files:
            ingest_file(f, store)
        before = store.table_counts()
        again = [ingest_file(f, store) for f in files]
        after = store.table_counts()
    assert before == after
    assert before["conversations"] == 20 + 54 + 100 + 14
    assert {r.status for r in again} == {"already ingested"}


def test_same_content_in_another_file_is_stored_once(tmp_path: Path) -> None:
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(HH.read_bytes() + b"\n")  # different file hash, same conversations
    with Store(tmp_path / "s.db") as store:
        ingest_file(HH, store)
        report = ingest_file(copy, store)
        assert store.count("conversations") == 20
        assert store.count("sightings") == 40
    assert report.status == "ingested" and report.new_conversations == 0


def test_gzip_variant_gives_the_same_conversations(tmp_path: Path) -> None:
    import gzip

    gz = tmp_path / "oasst.jsonl.gz"
    gz.write_bytes(gzip.compress(OASST.read_bytes()))
    with Store(tmp_path / "a.db") as a, Store(tmp_path / "b.db") as b:
        ingest_file(OASST, a)
        ingest_file(gz, b)
        hashes_a = {c.content_hash() for c in a.conversations()}
        hashes_b = {c.content_hash() for c in b.conversations()}
    assert hashes_a == hashes_b and len(hashes_a) == 54


def test_source_ids_are_keyed_pseudonyms(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        ingest_file(TAU, store)
        ids = [c.provenance.source_id for c in store.conversations() if c.provenance]
        raw = store.db.execute("SELECT group_concat(source_id) FROM sightings").fetchone()[0]
    assert all(i and i.startswith("c_") for i in ids)
    assert "task0/trial" not in raw


def test_limit_reads_a_slice_and_a_larger_limit_extends_it(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        first = ingest_file(TAU, store, limit=10)
        assert (first.records, first.conversations) == (10, 10)
        assert ingest_file(TAU, store, limit=5).status == "already ingested"
        more = ingest_file(TAU, store, limit=30)
        assert more.status == "ingested" and more.new_conversations == 20
        assert ingest_file(TAU, store).new_conversations == 70
        assert ingest_file(TAU, store, limit=3).status == "already ingested"
        assert store.count("conversations") == 100


def test_hh_rlhf_keeps_two_turns_of_one_speaker_as_logged(tmp_path: Path) -> None:
    # Written here: a transcript whose assistant answers twice in a row (as a few real ones do).
    record = {
        "chosen": "\n\nHuman: Can you name a red fruit?\n\nAssistant: A strawberry."
        "\n\nAssistant: Or a cherry.\n\nHuman: Thanks!\n\nAssistant: You're welcome.",
        "rejected": "\n\nHuman: Can you name a red fruit?\n\nAssistant: A strawberry."
        "\n\nAssistant: Or a cherry.\n\nHuman: Thanks!\n\nAssistant: Bye.",
    }
    path = tmp_path / "hh.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with Store(tmp_path / "s.db") as st:
        report = ingest_file(path, st, fmt="hh-rlhf")
        assert (report.kept, report.skipped) == (1, 0)
        (conv,) = list(st.conversations())
    assert [m.role for m in conv.messages] == [
        "user",
        "assistant",
        "assistant",
        "user",
        "assistant",
    ]
    assert conv.references[0].message.text == "Bye."
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"chosen": "\n\nAssistant: Hello."}) + "\n")
    with Store(tmp_path / "t.db") as st:
        assert ingest_file(bad, st, fmt="hh-rlhf").skipped == 1


def test_a_json_document_no_reader_knows_is_refused(tmp_path: Path) -> None:
    # One JSON document whose top-level keys no reader knows (written here).
    doc = {"results": [{"score": 1}], "config": {"seed": 0}}
    path = tmp_path / "run.json"
    path.write_text(json.dumps(doc, indent=2))
    with Store(tmp_path / "s.db") as st, pytest.raises(InputError, match="not ingested"):
        ingest_file(path, st)
