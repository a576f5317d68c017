"""Transcripts for the viewer: which prefixes to show, and each one's responses and grades.

A viewer *item* is one sampled prefix: its conversation up to the cut, the logged response and
every replayed response (each draw of each model), each with its grades. Items are plain JSON
data. Prefix messages are given as content hashes into a separate ``messages`` table, as the
store keeps them: the system prompt shared by a thousand agentic prefixes is sent once.

The set of prefixes the viewer pages through (its *universe*) is every prefix with at least one
replay or one graded logged response. Filters (:class:`TranscriptFilter`) have the same meaning
here (SQL, for ``deploysim view``) and in the page's script (for the embedded selection):

* ``model``: the prefix has a response of that model (``logged``: a logged response);
* ``category`` and/or ``flagged``: some response (of ``model``, when given) has a grade in that
  category (any, when not given) that is flagged (or any grade, when ``flagged`` is off).

Everything streams: selection keeps at most the chosen ids, and items load in batches.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from deploysim.estimates import LOGGED
from deploysim.schema import canonical_hash
from deploysim.store import Store

#: Longest string kept in an item (message text, tool arguments, rationale); the rest is cut.
MAX_TEXT = 20_000

_BATCH = 200


@dataclass(frozen=True, slots=True)
class TranscriptFilter:
    """Which prefixes to list; see the module docstring for the exact meaning."""

    category: str | None = None
    model: str | None = None
    flagged: bool = False
    sample_id: int | None = None


def prefix_hash(conversation_hash: str, cut: int) -> str:
    """The identifier of a prefix: SHA-256 of its conversation's content hash and the cut.

    Unique within a sample (a sample holds each (conversation, cut) once), stable across stores
    holding the same conversation.
    """
    return canonical_hash({"conversation": conversation_hash, "cut": cut})


def _where(f: TranscriptFilter, labels: dict[str, str]) -> tuple[str, list[Any]]:
    """SQL condition on prefixes ``p`` for a filter, and its arguments."""
    args: list[Any] = []
    spec_cond = ""
    if f.model is not None and f.model != LOGGED:
        specs = [h for h, label in labels.items() if label == f.model]
        spec_cond = f" AND r.spec_hash IN ({','.join('?' * len(specs))})" if specs else " AND 0"
        args_spec: list[Any] = specs
    else:
        args_spec = []
    grade_cond, grade_args = "", list[Any]()
    if f.category is not None:
        grade_cond += " AND g.category = ?"
        grade_args.append(f.category)
    if f.flagged:
        grade_cond += " AND g.flagged = 1"
    # CROSS JOIN pins the join order (SQLite's rule): replays of this prefix by their
    # (prefix_id, ...) index, then each one's grades. Left to itself the planner, without
    # ANALYZE statistics, scans every replay grade per prefix: hours at 100k replays.
    graded_replay = (
        "EXISTS (SELECT 1 FROM replays r CROSS JOIN grades g ON g.target = 'replay' AND "
        f"g.target_id = r.id WHERE r.prefix_id = p.id{spec_cond}{grade_cond})"
    )
    any_replay = f"EXISTS (SELECT 1 FROM replays r WHERE r.prefix_id = p.id{spec_cond})"
    graded_logged = (
        "EXISTS (SELECT 1 FROM grades g WHERE g.target = 'reference' AND g.target_id = p.id"
        f"{grade_cond})"
    )
    universe = (
        "(EXISTS (SELECT 1 FROM replays r WHERE r.prefix_id = p.id) OR EXISTS (SELECT 1 FROM "
        "grades g WHERE g.target = 'reference' AND g.target_id = p.id))"
    )
    need_grade = f.category is not None or f.flagged
    if f.model is None:
        if need_grade:
            cond = f"({graded_replay} OR {graded_logged})"
            args = [*grade_args, *grade_args]
        else:
            cond = universe
    elif f.model == LOGGED:
        if need_grade:
            cond, args = f"p.reference_index IS NOT NULL AND {graded_logged}", [*grade_args]
        else:
            cond = f"p.reference_index IS NOT NULL AND {universe}"
    elif need_grade:
        cond, args = graded_replay, [*args_spec, *grade_args]
    else:
        cond, args = any_replay, [*args_spec]
    if f.sample_id is not None:
        cond += " AND p.sample_id = ?"
        args.append(f.sample_id)
    return cond, args


def count_prefixes(store: Store, f: TranscriptFilter, labels: dict[str, str]) -> int:
    """How many prefixes match a filter."""
    cond, args = _where(f, labels)
    return int(
        store.db.execute(f"SELECT COUNT(*) FROM prefixes p WHERE {cond}", args).fetchone()[0]
    )


def page_prefix_ids(
    store: Store, f: TranscriptFilter, labels: dict[str, str], *, offset: int, limit: int
) -> list[int]:
    """One page of the matching prefix ids, in id order."""
    cond, args = _where(f, labels)
    return [
        int(i)
        for (i,) in store.db.execute(
            f"SELECT p.id FROM prefixes p WHERE {cond} ORDER BY p.id LIMIT ? OFFSET ?",
            [*args, max(0, limit), max(0, offset)],
        )
    ]


@dataclass
class Selection:
    """The bounded set of prefixes a report embeds, and what it was chosen from."""

    ids: list[int]
    total: int  # prefixes in the universe
    flagged_total: int  # of which with a flagged response
    flagged_chosen: int
    seed: int
    notes: list[str] = field(default_factory=list)


def select_prefixes(
    store: Store,
    labels: dict[str, str],
    *,
    max_prefixes: int = 2_000,
    max_flagged: int = 1_500,
    seed: int = 0,
    sample_id: int | None = None,
) -> Selection:
    """Every prefix with a flagged response (a seeded sample of them past ``max_flagged``),
    then a seeded sample of the others, ``max_prefixes`` in all; ids sorted.

    Reservoir sampling over the streamed ids: memory holds the chosen ids only.
    """
    rng = random.Random(seed)
    base = TranscriptFilter(sample_id=sample_id)
    flagged_cond, flagged_args = _where(TranscriptFilter(flagged=True, sample_id=sample_id), labels)
    cap_flagged = min(max_flagged, max_prefixes)
    flagged, n_flagged = _reservoir(
        (
            int(i)
            for (i,) in store.db.execute(
                f"SELECT p.id FROM prefixes p WHERE {flagged_cond} ORDER BY p.id", flagged_args
            )
        ),
        cap_flagged,
        rng,
    )
    chosen = set(flagged)
    cond, args = _where(base, labels)
    rest, n_all = _reservoir(
        (
            int(i)
            for (i,) in store.db.execute(
                f"SELECT p.id FROM prefixes p WHERE {cond} ORDER BY p.id", args
            )
        ),
        max_prefixes - len(flagged),
        rng,
        exclude=chosen,
    )
    return Selection(
        ids=sorted(chosen | set(rest)),
        total=n_all,
        flagged_total=n_flagged,
        flagged_chosen=len(flagged),
        seed=seed,
    )


def _reservoir(
    ids: Iterable[int], k: int, rng: random.Random, *, exclude: set[int] | None = None
) -> tuple[list[int], int]:
    """A uniform sample of ``k`` ids (Algorithm R) and how many ids were seen (all of them,
    excluded ones included)."""
    out: list[int] = []
    seen = eligible = 0
    for i in ids:
        seen += 1
        if exclude is not None and i in exclude:
            continue
        eligible += 1
        if len(out) < k:
            out.append(i)
        elif k > 0:
            j = rng.randrange(eligible)
            if j < k:
                out[j] = i
    return out, seen


# --- items -----------------------------------------------------------------------------------


def load_items(
    store: Store, ids: Sequence[int], labels: dict[str, str], *, max_text: int = MAX_TEXT
) -> Iterator[tuple[dict[str, Any], list[str]]]:
    """Each prefix's item and the message hashes it refers to, in the order of ``ids``.

    Loaded in batches of a few hundred prefixes: a handful of queries per batch.
    """
    graders = dict(store.db.execute("SELECT hash, spec FROM graders").fetchall())
    order = {h: i for i, h in enumerate(labels)}
    for start in range(0, len(ids), _BATCH):
        batch = list(ids[start : start + _BATCH])
        marks = ",".join("?" * len(batch))
        prefixes = {
            r[0]: r
            for r in store.db.execute(
                "SELECT p.id, p.conversation_hash, p.cut, p.reference_index, p.stratum, "
                "s.name, c.message_hashes, p.inclusion_prob FROM prefixes p "
                "JOIN samples s ON s.id = p.sample_id "
                f"JOIN conversations c ON c.hash = p.conversation_hash WHERE p.id IN ({marks})",
                batch,
            )
        }
        replay_grades: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for row in store.db.execute(
            "SELECT r.id, g.grader_hash, g.category, g.status, g.score, g.flagged, g.severity, "
            "g.rationale, g.error FROM replays r CROSS JOIN grades g ON g.target = 'replay' AND "
            f"g.target_id = r.id WHERE r.prefix_id IN ({marks}) ORDER BY g.category",
            batch,
        ):
            replay_grades[row[0]].append(_grade(row[1:], graders, max_text))
        logged_grades: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for row in store.db.execute(
            "SELECT target_id, grader_hash, category, status, score, flagged, severity, "
            f"rationale, error FROM grades WHERE target = 'reference' AND target_id IN ({marks}) "
            "ORDER BY category",
            batch,
        ):
            logged_grades[row[0]].append(_grade(row[1:], graders, max_text))
        replays: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for rid, pid, spec_hash, draw, status, response, finish, kind, error in store.db.execute(
            "SELECT id, prefix_id, spec_hash, draw, status, response, finish_reason, "
            f"error_kind, error FROM replays WHERE prefix_id IN ({marks})",
            batch,
        ):
            replays[pid].append(
                {
                    "model": labels.get(spec_hash, spec_hash),
                    "replay_id": rid,
                    "draw": draw,
                    "status": status,
                    "finish_reason": finish,
                    "error_kind": kind,
                    "error": _cut(error, max_text) if error else None,
                    "messages": [_truncate(m, max_text) for m in json.loads(response or "[]")],
                    "grades": replay_grades.get(rid, []),
                    "_order": (order.get(spec_hash, len(order)), draw),
                }
            )
        for pid in batch:
            row = prefixes.get(pid)
            if row is None:
                continue
            _, chash, cut, ref, stratum, sample, mhashes, prob = row
            hashes: list[str] = json.loads(mhashes)
            responses: list[dict[str, Any]] = []
            refs = list(hashes[:cut])
            if ref is not None and 0 <= ref < len(hashes):
                responses.append(
                    {
                        "model": LOGGED,
                        "draw": None,
                        "status": "ok",
                        "messages": [hashes[ref]],
                        "grades": logged_grades.get(pid, []),
                    }
                )
                refs.append(hashes[ref])
            for r in sorted(replays.get(pid, []), key=lambda r: r["_order"]):
                del r["_order"]
                responses.append(r)
            item = {
                "id": pid,
                "prefix_hash": prefix_hash(chash, cut),
                "conversation": chash,
                "cut": cut,
                "stratum": stratum,
                "sample": sample,
                "inclusion_prob": prob,
                "prefix": hashes[:cut],
                "responses": responses,
            }
            yield item, refs


def load_messages(
    store: Store, hashes: Iterable[str], *, max_text: int = MAX_TEXT
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Stored messages by content hash (``(hash, message dict)``), strings cut to ``max_text``."""
    pending = list(hashes)
    for start in range(0, len(pending), 500):
        batch = pending[start : start + 500]
        for h, body in store.db.execute(
            f"SELECT hash, body FROM messages WHERE hash IN ({','.join('?' * len(batch))})",
            batch,
        ):
            yield h, _truncate(json.loads(body), max_text)


def _grade(row: Sequence[Any], graders: dict[str, str], max_text: int) -> dict[str, Any]:
    gh, category, status, score, flagged, severity, rationale, error = row
    return {
        "category": category,
        "grader": graders.get(gh, gh),
        "grader_hash": gh,
        "status": status,
        # Three decimals are all a 0-1 score means to a reader (and all the JSON needs).
        "score": None if score is None else round(float(score), 3),
        "flagged": None if flagged is None else bool(flagged),
        "severity": severity,
        "rationale": _cut(rationale, max_text) if rationale else None,
        "error": _cut(error, max_text) if error else None,
    }


def _truncate(value: Any, max_text: int) -> Any:
    """A JSON value with every string longer than ``max_text`` cut (and marked as cut)."""
    if isinstance(value, str):
        return _cut(value, max_text)
    if isinstance(value, list):
        return [_truncate(v, max_text) for v in value]
    if isinstance(value, dict):
        return {k: _truncate(v, max_text) for k, v in value.items()}
    return value


def _cut(text: str, max_text: int) -> str:
    if len(text) <= max_text:
        return text
    return f"{text[:max_text]}… [{len(text) - max_text:,} more characters not shown]"
