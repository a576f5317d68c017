"""The run store: one SQLite file (WAL) that every stage reads from and writes to.

Conversations and messages are content-addressed: a message is stored once however many
conversations share it (OpenAssistant paths share prefixes), and a conversation once however many
files contain it. Where a conversation was seen is a *sighting* (file hash, record, source id,
metadata). Each input file gets one manifest row (``inputs``) with its hash, format and counts;
a file already ingested completely is skipped, so ingesting it again adds no rows.

The schema evolves through :data:`MIGRATIONS`, applied in order and recorded in
``PRAGMA user_version``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploysim import __version__
from deploysim.errors import StoreError
from deploysim.schema import (
    Conversation,
    Message,
    Provenance,
    Reference,
    ToolDef,
    canonical_hash,
    canonical_json,
    conversation_hash,
)

# One letter per message role, so sampling can find user and assistant turns without parsing
# message bodies: conversations.roles is e.g. "suauat".
ROLE_CODES = {"system": "s", "developer": "d", "user": "u", "assistant": "a", "tool": "t"}

MIGRATIONS: tuple[str, ...] = (
    # 1: conversations, messages, sightings, inputs, rejects, meta
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE TABLE conversations (
        id INTEGER PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,
        message_hashes TEXT NOT NULL,
        tools TEXT NOT NULL,
        refs TEXT NOT NULL,
        roles TEXT NOT NULL,
        n_messages INTEGER NOT NULL,
        n_user_turns INTEGER NOT NULL,
        n_assistant_turns INTEGER NOT NULL,
        n_tool_calls INTEGER NOT NULL,
        n_tools INTEGER NOT NULL,
        multimodal INTEGER NOT NULL
    );
    CREATE TABLE inputs (
        sha256 TEXT PRIMARY KEY,
        path TEXT NOT NULL,
        format TEXT NOT NULL,
        size INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('partial', 'complete')),
        records INTEGER NOT NULL DEFAULT 0,
        kept INTEGER NOT NULL DEFAULT 0,
        skipped INTEGER NOT NULL DEFAULT 0,
        conversations INTEGER NOT NULL DEFAULT 0,
        options TEXT NOT NULL,
        tool_version TEXT NOT NULL,
        started_at REAL NOT NULL,
        finished_at REAL
    ) WITHOUT ROWID;
    CREATE TABLE sightings (
        id INTEGER PRIMARY KEY,
        input_sha256 TEXT NOT NULL REFERENCES inputs(sha256),
        record INTEGER NOT NULL,
        conversation_hash TEXT NOT NULL REFERENCES conversations(hash),
        source_format TEXT NOT NULL,
        source_id TEXT,
        metadata TEXT NOT NULL,
        UNIQUE (input_sha256, record, conversation_hash)
    );
    CREATE INDEX sightings_conversation ON sightings(conversation_hash);
    CREATE TABLE rejects (
        input_sha256 TEXT NOT NULL REFERENCES inputs(sha256),
        record INTEGER NOT NULL,
        line INTEGER,
        reason TEXT NOT NULL,
        PRIMARY KEY (input_sha256, record)
    ) WITHOUT ROWID;
    """,
    # 2: samples of prefixes, replay specs, replays
    """
    CREATE TABLE samples (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        spec TEXT NOT NULL,
        spec_hash TEXT NOT NULL,
        population INTEGER NOT NULL,
        size INTEGER NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE prefixes (
        id INTEGER PRIMARY KEY,
        sample_id INTEGER NOT NULL REFERENCES samples(id),
        conversation_hash TEXT NOT NULL REFERENCES conversations(hash),
        cut INTEGER NOT NULL,
        reference_index INTEGER,
        stratum TEXT NOT NULL,
        inclusion_prob REAL NOT NULL,
        UNIQUE (sample_id, conversation_hash, cut)
    );
    CREATE TABLE replay_specs (
        hash TEXT PRIMARY KEY,
        model TEXT NOT NULL,
        spec TEXT NOT NULL,
        created_at REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE replays (
        id INTEGER PRIMARY KEY,
        prefix_id INTEGER NOT NULL REFERENCES prefixes(id),
        spec_hash TEXT NOT NULL REFERENCES replay_specs(hash),
        draw INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
        response TEXT,
        finish_reason TEXT,
        error_kind TEXT,
        error TEXT,
        attempts INTEGER NOT NULL,
        input_tokens INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        latency_s REAL,
        created_at REAL NOT NULL,
        UNIQUE (prefix_id, spec_hash, draw)
    );
    """,
    # 3: graders and grades; grader validations against human labels
    """
    CREATE TABLE graders (
        hash TEXT PRIMARY KEY,
        spec TEXT NOT NULL,
        category TEXT NOT NULL,
        definition TEXT NOT NULL,
        created_at REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE grades (
        id INTEGER PRIMARY KEY,
        target TEXT NOT NULL CHECK (target IN ('replay', 'reference')),
        target_id INTEGER NOT NULL,
        grader_hash TEXT NOT NULL REFERENCES graders(hash),
        category TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('ok', 'ungradable')),
        score REAL,
        flagged INTEGER,
        severity INTEGER,
        rationale TEXT,
        error TEXT,
        attempts INTEGER NOT NULL,
        created_at REAL NOT NULL,
        UNIQUE (target, target_id, grader_hash)
    );
    CREATE TABLE validations (
        id INTEGER PRIMARY KEY,
        grader_hash TEXT NOT NULL,
        category TEXT NOT NULL,
        labels_path TEXT NOT NULL,
        labels_sha256 TEXT NOT NULL,
        metrics TEXT NOT NULL,
        created_at REAL NOT NULL,
        UNIQUE (grader_hash, labels_sha256)
    );
    """,
    # 4: registered forecasts (immutable manifests) and scorecards
    """
    CREATE TABLE forecasts (
        content_hash TEXT PRIMARY KEY,
        candidate TEXT NOT NULL,
        registered_at TEXT NOT NULL,
        manifest TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE scorecards (
        id INTEGER PRIMARY KEY,
        forecast_hash TEXT NOT NULL,
        created_at REAL NOT NULL,
        scorecard TEXT NOT NULL
    );
    """,
    # 5: results of side analyses (realism, awareness, discovery), one JSON document each
    """
    CREATE TABLE analyses (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        created_at REAL NOT NULL,
        spec TEXT NOT NULL,
        result TEXT NOT NULL
    );
    """,
    # 6: per-message text lengths, so sampling can bound prefix length without parsing bodies
    # (NULL for conversations stored before: their length is unknown and not filtered on)
    """
    ALTER TABLE conversations ADD COLUMN lengths TEXT;
    """,
)


@dataclass(frozen=True, slots=True)
class InputRow:
    """The manifest row of one ingested input file."""

    sha256: str
    path: str
    format: str
    size: int
    status: str
    records: int
    kept: int
    skipped: int
    conversations: int
    options: dict[str, Any]


class Store:
    """A run store on one SQLite file. Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except (sqlite3.DatabaseError, OSError) as e:
            raise StoreError(f"{self.path}: not a usable deploysim store ({e})") from e

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def _migrate(self) -> None:
        current = self.db.execute("PRAGMA user_version").fetchone()[0]
        if current > len(MIGRATIONS):
            raise StoreError(
                f"{self.path}: store schema version {current} is newer than this deploysim "
                f"({__version__}, schema {len(MIGRATIONS)}); upgrade deploysim"
            )
        for version in range(current, len(MIGRATIONS)):
            with self.transaction():
                for statement in _statements(MIGRATIONS[version]):
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {version + 1}")
                if version == 0:
                    self.db.executemany(
                        "INSERT INTO meta(key, value) VALUES (?, ?)",
                        [("created_at", _now_iso()), ("created_by", f"deploysim {__version__}")],
                    )

    # --- transactions -------------------------------------------------------------------------

    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> None:
            self.db.execute("BEGIN IMMEDIATE")

        def __exit__(self, exc_type: object, *_: object) -> None:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")

    def transaction(self) -> Store._Tx:
        """A write transaction: committed on success, rolled back on error."""
        return Store._Tx(self.db)

    # --- meta ---------------------------------------------------------------------------------

    def meta(self) -> dict[str, str]:
        """The store-level manifest (created_at, created_by, settings recorded by stages)."""
        return dict(self.db.execute("SELECT key, value FROM meta").fetchall())

    def set_meta(self, key: str, value: str) -> None:
        """Record a store-level setting (e.g. the de-identification version)."""
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    # --- inputs -------------------------------------------------------------------------------

    def input(self, sha256: str) -> InputRow | None:
        """The manifest row of an input file, by content hash."""
        row = self.db.execute(
            "SELECT sha256, path, format, size, status, records, kept, skipped, conversations, "
            "options FROM inputs WHERE sha256 = ?",
            (sha256,),
        ).fetchone()
        return _input_row(row) if row else None

    def inputs(self) -> list[InputRow]:
        """Every input file's manifest row, in the order they were first ingested."""
        rows = self.db.execute(
            "SELECT sha256, path, format, size, status, records, kept, skipped, conversations, "
            "options FROM inputs ORDER BY started_at"
        ).fetchall()
        return [_input_row(r) for r in rows]

    def begin_input(
        self, *, sha256: str, path: str, fmt: str, size: int, options: dict[str, Any]
    ) -> None:
        """Open (or reopen, after an interrupted run) an input's manifest row as partial."""
        self.db.execute(
            "INSERT INTO inputs(sha256, path, format, size, status, options, tool_version, "
            "started_at) VALUES (?, ?, ?, ?, 'partial', ?, ?, ?) "
            "ON CONFLICT(sha256) DO UPDATE SET path = excluded.path, format = excluded.format, "
            "options = excluded.options, tool_version = excluded.tool_version",
            (sha256, path, fmt, size, canonical_json(options), __version__, time.time()),
        )

    def finish_input(
        self, sha256: str, *, records: int, kept: int, skipped: int, conversations: int
    ) -> None:
        """Mark an input complete with its final counts."""
        self.db.execute(
            "UPDATE inputs SET status = 'complete', records = ?, kept = ?, skipped = ?, "
            "conversations = ?, finished_at = ? WHERE sha256 = ?",
            (records, kept, skipped, conversations, time.time(), sha256),
        )

    def add_rejects(self, sha256: str, rejects: Iterable[tuple[int, int | None, str]]) -> None:
        """Record why records were skipped (record number, line, reason; never the content)."""
        self.db.executemany(
            "INSERT OR REPLACE INTO rejects(input_sha256, record, line, reason) "
            "VALUES (?, ?, ?, ?)",
            [(sha256, r, line, reason) for r, line, reason in rejects],
        )

    def rejects(self, sha256: str) -> list[tuple[int, int | None, str]]:
        """The skipped records of an input."""
        return self.db.execute(
            "SELECT record, line, reason FROM rejects WHERE input_sha256 = ? ORDER BY record",
            (sha256,),
        ).fetchall()

    # --- conversations ------------------------------------------------------------------------

    def add_conversations(self, sha256: str, conversations: Sequence[Conversation]) -> int:
        """Store conversations seen in input ``sha256``; returns how many were new.

        Call inside :meth:`transaction`. Each conversation needs its provenance.
        """
        new = 0
        for conv in conversations:
            if conv.provenance is None:
                raise ValueError("a stored conversation needs its provenance")
            hashes: list[str] = []
            rows: list[tuple[str, str, str]] = []
            for m in conv.messages:
                body = m.to_json_dict()
                h = canonical_hash(body)
                hashes.append(h)
                rows.append((h, m.role, canonical_json(body)))
            self.db.executemany(
                "INSERT OR IGNORE INTO messages(hash, role, body) VALUES (?, ?, ?)", rows
            )
            chash = conversation_hash(hashes, conv.tools, conv.references)
            cur = self.db.execute(
                "INSERT OR IGNORE INTO conversations(hash, message_hashes, tools, refs, "
                "roles, n_messages, n_user_turns, n_assistant_turns, n_tool_calls, n_tools, "
                "multimodal, lengths) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    chash,
                    json.dumps(hashes),
                    canonical_json(
                        [t.model_dump(mode="json", exclude_defaults=True) for t in conv.tools]
                    ),
                    canonical_json(
                        [r.model_dump(mode="json", exclude_defaults=True) for r in conv.references]
                    ),
                    "".join(ROLE_CODES[m.role] for m in conv.messages),
                    len(conv.messages),
                    conv.n_user_turns,
                    sum(1 for m in conv.messages if m.role == "assistant"),
                    conv.n_tool_calls,
                    len(conv.tools),
                    int(conv.is_multimodal),
                    json.dumps([len(m.text) + len(m.reasoning or "") for m in conv.messages]),
                ),
            )
            new += cur.rowcount
            p = conv.provenance
            self.db.execute(
                "INSERT OR IGNORE INTO sightings(input_sha256, record, conversation_hash, "
                "source_format, source_id, metadata) VALUES (?, ?, ?, ?, ?, ?)",
                (sha256, p.record, chash, p.source_format, p.source_id, canonical_json(p.metadata)),
            )
        return new

    def units(
        self, inputs: Sequence[str] = ()
    ) -> Iterator[tuple[str, str, str, str, int, bool, list[int] | None]]:
        """Per conversation, what sampling needs: (hash, roles, format, file, n_tools,
        multimodal, message lengths), from its first sighting; in hash order, streamed.

        ``inputs`` (input file SHA-256s) keeps only conversations sighted in those files: a
        store can hold several releases' logs, and a census must count only the named ones.
        """
        only = ""
        if inputs:
            only = (
                " WHERE c.hash IN (SELECT conversation_hash FROM sightings WHERE input_sha256 IN "
                f"({','.join('?' * len(inputs))}))"
            )
        cur = self.db.execute(
            "SELECT c.hash, c.roles, s.source_format, i.path, c.n_tools, c.multimodal, c.lengths "
            "FROM conversations c JOIN sightings s ON s.id = ("
            "  SELECT MIN(id) FROM sightings WHERE conversation_hash = c.hash) "
            f"JOIN inputs i ON i.sha256 = s.input_sha256{only} ORDER BY c.hash",
            tuple(inputs),
        )
        for h, roles, fmt, path, n_tools, mm, lengths in cur:
            yield h, roles, fmt, path, int(n_tools), bool(mm), json.loads(lengths or "null")

    def conversation(self, chash: str) -> Conversation:
        """One stored conversation by content hash (with its first sighting's provenance)."""
        row = self.db.execute(f"{_CONVERSATION_SELECT} WHERE c.hash = ?", (chash,)).fetchone()
        if row is None:
            raise StoreError(f"{self.path}: no conversation {chash}")
        return self._conversation(row)

    def add_analysis(self, kind: str, spec: dict[str, Any], result: dict[str, Any]) -> None:
        """Record the result of a side analysis (realism, awareness, discovery)."""
        self.db.execute(
            "INSERT INTO analyses(kind, created_at, spec, result) VALUES (?, ?, ?, ?)",
            (kind, time.time(), canonical_json(spec), canonical_json(result)),
        )

    def analyses(self, kind: str) -> list[dict[str, Any]]:
        """Stored results of one kind of analysis, oldest first."""
        return [
            json.loads(r[0])
            for r in self.db.execute(
                "SELECT result FROM analyses WHERE kind = ? ORDER BY id", (kind,)
            )
        ]

    def count(self, table: str) -> int:
        """Rows in one of the store's tables."""
        if table not in _TABLES:
            raise ValueError(f"unknown table {table!r}")
        return int(self.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    def table_counts(self) -> dict[str, int]:
        """Rows in every table."""
        return {t: self.count(t) for t in _TABLES}

    def conversations(
        self, *, batch: int = 500, with_tool_calls: bool = False
    ) -> Iterator[Conversation]:
        """Every stored conversation (or those with tool calls), with the provenance of its
        first sighting; streamed."""
        last = 0
        extra = " AND c.n_tool_calls > 0" if with_tool_calls else ""
        while True:
            rows = self.db.execute(
                f"{_CONVERSATION_SELECT} WHERE c.id > ?{extra} ORDER BY c.id LIMIT ?",
                (last, batch),
            ).fetchall()
            if not rows:
                return
            yield from (self._conversation(r) for r in rows)
            last = rows[-1][0]

    def _conversation(self, row: tuple[Any, ...]) -> Conversation:
        _, _, mhashes, tools, refs, fmt, path, record, source_id, meta = row
        hashes: list[str] = json.loads(mhashes)
        bodies = dict(
            self.db.execute(
                f"SELECT hash, body FROM messages WHERE hash IN ({','.join('?' * len(hashes))})",
                hashes,
            ).fetchall()
        )
        provenance = (
            Provenance(
                source_format=fmt,
                source_file=path,
                record=record,
                source_id=source_id,
                metadata=json.loads(meta),
            )
            if fmt is not None
            else None
        )
        return Conversation(
            messages=tuple(Message.model_validate_json(bodies[h]) for h in hashes),
            tools=tuple(ToolDef.model_validate(t) for t in json.loads(tools)),
            references=tuple(Reference.model_validate(r) for r in json.loads(refs)),
            provenance=provenance,
        )


def _input_row(r: tuple[Any, ...]) -> InputRow:
    sha, path, fmt, size, status, records, kept, skipped, conversations, options = r
    return InputRow(
        sha, path, fmt, size, status, records, kept, skipped, conversations, json.loads(options)
    )


# A conversation row with the provenance of its first sighting.
_CONVERSATION_SELECT = (
    "SELECT c.id, c.hash, c.message_hashes, c.tools, c.refs, s.source_format, "
    "i.path, s.record, s.source_id, s.metadata FROM conversations c "
    "LEFT JOIN sightings s ON s.id = ("
    "  SELECT MIN(id) FROM sightings WHERE conversation_hash = c.hash) "
    "LEFT JOIN inputs i ON i.sha256 = s.input_sha256"
)

_TABLES = (
    "meta",
    "messages",
    "conversations",
    "inputs",
    "sightings",
    "rejects",
    "samples",
    "prefixes",
    "replay_specs",
    "replays",
    "graders",
    "grades",
    "validations",
    "forecasts",
    "scorecards",
    "analyses",
)


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
