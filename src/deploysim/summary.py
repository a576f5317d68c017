"""Descriptive figures of what a run store holds (``deploysim stats``)."""

from __future__ import annotations

from typing import Any

from deploysim.store import Store


def summarize(store: Store) -> dict[str, Any]:
    """Counts by source and format, turns per conversation, and tool use, as JSON-ready data."""
    db = store.db
    by_format = [
        {"format": f, "inputs": i, "conversations": c, "sightings": s}
        for f, i, c, s in db.execute(
            "SELECT s.source_format, COUNT(DISTINCT s.input_sha256), "
            "COUNT(DISTINCT s.conversation_hash), COUNT(*) FROM sightings s "
            "GROUP BY s.source_format ORDER BY s.source_format"
        )
    ]
    by_input = [
        {
            "path": p,
            "format": f,
            "status": st,
            "records": r,
            "kept": k,
            "skipped": sk,
            "conversations": c,
        }
        for p, f, st, r, k, sk, c in db.execute(
            "SELECT path, format, status, records, kept, skipped, conversations FROM inputs "
            "ORDER BY started_at"
        )
    ]
    return {
        "store": str(store.path),
        "conversations": store.count("conversations"),
        "messages_stored": store.count("messages"),
        "sightings": store.count("sightings"),
        "by_format": by_format,
        "by_input": by_input,
        "messages_per_conversation": _distribution(db, "n_messages"),
        "user_turns_per_conversation": _distribution(db, "n_user_turns"),
        "tool_use": _tool_use(store),
        "multimodal_conversations": _scalar(
            db, "SELECT COUNT(*) FROM conversations WHERE multimodal"
        ),
    }


def _distribution(db: Any, column: str) -> dict[str, float]:
    n = _scalar(db, "SELECT COUNT(*) FROM conversations")
    if n == 0:
        return {"min": 0, "median": 0, "mean": 0.0, "p90": 0, "max": 0}

    def quantile(q: float) -> int:
        offset = min(n - 1, int(q * (n - 1) + 0.5))
        return int(
            db.execute(
                f"SELECT {column} FROM conversations ORDER BY {column} LIMIT 1 OFFSET ?", (offset,)
            ).fetchone()[0]
        )

    lo, hi, mean = db.execute(
        f"SELECT MIN({column}), MAX({column}), AVG({column}) FROM conversations"
    ).fetchone()
    return {
        "min": int(lo),
        "median": quantile(0.5),
        "mean": round(float(mean), 3),
        "p90": quantile(0.9),
        "max": int(hi),
    }


def _tool_use(store: Store) -> dict[str, Any]:
    db = store.db
    top = db.execute(
        "SELECT json_extract(tc.value, '$.function') AS name, COUNT(*) AS n "
        "FROM messages m, json_each(m.body, '$.tool_calls') tc "
        "GROUP BY name ORDER BY n DESC, name LIMIT 15"
    ).fetchall()
    return {
        "conversations_with_tool_calls": _scalar(
            db, "SELECT COUNT(*) FROM conversations WHERE n_tool_calls > 0"
        ),
        "conversations_offering_tools": _scalar(
            db, "SELECT COUNT(*) FROM conversations WHERE n_tools > 0"
        ),
        "tool_calls": _scalar(db, "SELECT COALESCE(SUM(n_tool_calls), 0) FROM conversations"),
        "top_tools": [{"name": name, "calls_in_distinct_messages": n} for name, n in top],
    }


def _scalar(db: Any, sql: str) -> int:
    return int(db.execute(sql).fetchone()[0])
