"""The SQLite run store: migrations, WAL, content addressing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from deploysim.errors import StoreError
from deploysim.schema import Conversation, Message, Provenance
from deploysim.store import MIGRATIONS, Store


def _conv(text: str, record: int = 1) -> Conversation:
    return Conversation(
        messages=(Message(role="user", content=text), Message(role="assistant", content="ok")),
        provenance=Provenance(source_format="openai", source_file="f.jsonl", record=record),
    )


def test_new_store_is_wal_and_at_latest_schema(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert "created_by" in store.meta()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(StoreError, match="upgrade deploysim"):
        Store(path)


def test_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_text("hello, I am not SQLite" * 100)
    with pytest.raises(StoreError, match="not a usable deploysim store"):
        Store(path)


def test_messages_are_stored_once(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.begin_input(sha256="x", path="f.jsonl", fmt="openai", size=1, options={})
        with store.transaction():
            new = store.add_conversations("x", [_conv("a", 1), _conv("b", 2), _conv("a", 3)])
        assert new == 2
        assert store.count("messages") == 3  # "a", "b", and the shared "ok"
        assert store.count("sightings") == 3
        got = list(store.conversations())
    assert [c.messages[0].text for c in got] == ["a", "b"]
    assert got[0].provenance is not None and got[0].provenance.record == 1


def test_failed_transaction_rolls_back(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.begin_input(sha256="x", path="f.jsonl", fmt="openai", size=1, options={})
        with pytest.raises(RuntimeError), store.transaction():
            store.add_conversations("x", [_conv("a")])
            raise RuntimeError("boom")
        assert store.count("conversations") == 0
