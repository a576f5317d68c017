"""What the report and the exports read from a run store, besides transcripts.

Every function here runs a handful of aggregate queries: nothing loads replays or grades row by
row, so they cost the same at 100 replays and at 100,000. Values come back as plain JSON-ready
data (dicts, lists, numbers, strings) so the HTML page, the tidy tables and the JSON output of
the CLI can share them.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from deploysim import prefixes
from deploysim.estimates import LOGGED, Comparison, Estimate, compare, estimate
from deploysim.store import Store

#: Prefix of the store meta keys that the de-identification stage records.
DEID_PREFIX = "deid"


def model_labels(store: Store) -> dict[str, str]:
    """Replay spec hash -> model label, the way :mod:`deploysim.estimates` names models.

    A model replayed under one spec is labelled by its model string; one replayed under several
    specs gets ``model#<first 8 hex of the spec hash>`` so that the labels stay distinct.
    """
    rows = store.db.execute("SELECT hash, model FROM replay_specs ORDER BY created_at").fetchall()
    count: dict[str, int] = defaultdict(int)
    for _, model in rows:
        count[model] += 1
    return {h: model if count[model] == 1 else f"{model}#{h[:8]}" for h, model in rows}


# The counts behind an estimate, in the order every table of estimates shows them (the HTML
# report and `deploysim estimate`): who and what, then attempted, failed, ungradable, the
# distinct prefixes, the graded draws n and the flagged k.
COUNT_COLUMNS = (
    "model",
    "category",
    "grader",
    "attempted",
    "failed",
    "ungradable",
    "prefixes",
    "n",
    "k",
)


def estimate_counts(e: Estimate, grader: str | None = None) -> list[Any]:
    """An estimate's :data:`COUNT_COLUMNS` (``grader``: how to show the grader, else its name)."""
    who = [e.model, e.category, e.grader if grader is None else grader]
    return [*who, e.attempted, e.failed, e.ungradable, e.prefixes, e.n, e.k]


def sample_id(store: Store, name: str | None) -> int | None:
    """The id of sample ``name`` (``None`` for all samples)."""
    return None if name is None else prefixes.sample_id(store, name)


class Graded(NamedTuple):
    """One stored grade with its prefix, its sample and, for a replay's grade, the replay
    (``replay_id``, ``spec_hash``, ``draw`` and the provider's response id; all null for a
    logged response's grade)."""

    grade_id: int
    target: str
    target_id: int
    category: str
    grader_hash: str
    status: str
    score: float | None
    flagged: int | None
    severity: Any
    error: str | None
    rationale: str | None
    created_at: float
    prefix_id: int
    conversation_hash: str
    cut: int
    inclusion_prob: float | None
    sample: str
    replay_id: int | None
    spec_hash: str | None
    draw: int | None
    provider_id: Any


_GRADED = (
    "g.id, g.target, g.target_id, g.category, g.grader_hash, g.status, g.score, g.flagged, "
    "g.severity, g.error, g.rationale, g.created_at, p.id, p.conversation_hash, p.cut, "
    "p.inclusion_prob, s.name"
)


def graded_rows(store: Store, sample: str | None = None) -> Iterator[Graded]:
    """Every stored grade (:class:`Graded`): those of replays first, then those of logged
    responses, each part in grade order; one sample's only if ``sample`` is given. Streamed."""
    sid = sample_id(store, sample)
    cond, args = ("", []) if sid is None else (" AND p.sample_id = ?", [sid])
    samples = f"JOIN samples s ON s.id = p.sample_id WHERE 1 = 1{cond} ORDER BY g.id"
    replays = store.db.execute(
        f"SELECT {_GRADED}, r.id, r.spec_hash, r.draw, json_extract(r.response, '$[0].id') "
        "FROM grades g JOIN replays r ON g.target = 'replay' AND r.id = g.target_id "
        "JOIN prefixes p ON p.id = r.prefix_id " + samples,
        args,
    )
    yield from (Graded(*row) for row in replays)
    logged = store.db.execute(
        f"SELECT {_GRADED}, NULL, NULL, NULL, NULL FROM grades g "
        "JOIN prefixes p ON g.target = 'reference' AND p.id = g.target_id " + samples,
        args,
    )
    yield from (Graded(*row) for row in logged)


def run_id(store: Store) -> str:
    """A stable identifier of the run store: ``meta.run_id`` when a stage set one, else a hash
    of the store's creation stamp (fixed for the life of the file, distinct across stores)."""
    meta = store.meta()
    if "run_id" in meta:
        return meta["run_id"]
    stamp = f"{meta.get('created_at', '')}|{meta.get('created_by', '')}"
    return hashlib.sha256(stamp.encode()).hexdigest()[:16]


def counts(store: Store) -> dict[str, int]:
    """Headline row counts of the store."""
    db = store.db
    return {
        "conversations": store.count("conversations"),
        "samples": store.count("samples"),
        "prefixes": store.count("prefixes"),
        "replays": store.count("replays"),
        "replays_failed": int(
            db.execute("SELECT COUNT(*) FROM replays WHERE status = 'failed'").fetchone()[0]
        ),
        "grades": store.count("grades"),
        "grades_flagged": int(
            db.execute("SELECT COUNT(*) FROM grades WHERE flagged = 1").fetchone()[0]
        ),
        "grades_ungradable": int(
            db.execute("SELECT COUNT(*) FROM grades WHERE status = 'ungradable'").fetchone()[0]
        ),
        "forecasts": store.count("forecasts"),
        "scorecards": store.count("scorecards"),
    }


def manifest(store: Store) -> dict[str, Any]:
    """The run manifest: store meta, inputs with hashes, samples, replay specs, graders."""
    db = store.db
    labels = model_labels(store)
    replay_counts: dict[str, dict[str, int]] = defaultdict(dict)
    for spec_hash, status, n in db.execute(
        "SELECT spec_hash, status, COUNT(*) FROM replays GROUP BY spec_hash, status"
    ):
        replay_counts[spec_hash][status] = int(n)
    return {
        "meta": store.meta(),
        "inputs": [
            {
                "sha256": r[0],
                "path": r[1],
                "format": r[2],
                "size": r[3],
                "status": r[4],
                "records": r[5],
                "kept": r[6],
                "skipped": r[7],
                "conversations": r[8],
                "tool_version": r[9],
            }
            for r in db.execute(
                "SELECT sha256, path, format, size, status, records, kept, skipped, "
                "conversations, tool_version FROM inputs ORDER BY started_at"
            )
        ],
        "samples": [
            {
                "name": name,
                "spec": json.loads(spec),
                "spec_hash": spec_hash,
                "population": population,
                "size": size,
            }
            for name, spec, spec_hash, population, size in db.execute(
                "SELECT name, spec, spec_hash, population, size FROM samples ORDER BY id"
            )
        ],
        "replay_specs": [
            {
                "hash": h,
                "model": model,
                "label": labels.get(h, model),
                "spec": json.loads(spec),
                "ok": replay_counts[h].get("ok", 0),
                "failed": replay_counts[h].get("failed", 0),
            }
            for h, model, spec in db.execute(
                "SELECT hash, model, spec FROM replay_specs ORDER BY created_at"
            )
        ],
        "graders": [
            {"hash": h, "spec": spec, "category": category, "definition": json.loads(definition)}
            for h, spec, category, definition in db.execute(
                "SELECT hash, spec, category, definition FROM graders ORDER BY category, spec"
            )
        ],
        "validations": [
            {
                "grader_hash": gh,
                "category": category,
                "labels_sha256": sha,
                "metrics": json.loads(metrics),
            }
            for gh, category, sha, metrics in db.execute(
                "SELECT grader_hash, category, labels_sha256, metrics FROM validations "
                "ORDER BY created_at"
            )
        ],
    }


def deid_summary(store: Store) -> dict[str, str]:
    """The de-identification settings and counts recorded in the store meta (keys ``deid*``)."""
    return {k: v for k, v in sorted(store.meta().items()) if k.startswith(DEID_PREFIX)}


@dataclass(frozen=True, slots=True)
class Results:
    """Estimates of every model x category, and every replayed model against ``logged``."""

    estimates: list[Estimate]
    comparisons: list[Comparison]


def results(store: Store, *, sample: str | None = None, alpha: float = 0.1) -> Results:
    """Rates from :func:`deploysim.estimates.estimate`, and each replayed model compared with
    the logged responses (:func:`deploysim.estimates.compare`, Fisher exact tests)."""
    rows = estimate(store, sample=sample)
    models = sorted({e.model for e in rows if e.model != LOGGED})
    comparisons = [c for m in models for c in compare(rows, m, LOGGED, alpha=alpha)]
    return Results(rows, comparisons)


def replay_errors(store: Store) -> list[dict[str, Any]]:
    """Failed replays by model and error kind, with one example message (first 200 chars)."""
    labels = model_labels(store)
    return [
        {
            "model": labels.get(spec_hash, spec_hash),
            "error_kind": kind,
            "count": int(n),
            "example": (example or "")[:200],
        }
        for spec_hash, kind, n, example in store.db.execute(
            "SELECT spec_hash, COALESCE(error_kind, 'unknown'), COUNT(*), MIN(error) "
            "FROM replays WHERE status = 'failed' GROUP BY 1, 2 ORDER BY 3 DESC"
        )
    ]


def ungradable(store: Store) -> list[dict[str, Any]]:
    """Ungradable grades by model and grader, with one example error (first 200 chars)."""
    labels = model_labels(store)
    graders = dict(store.db.execute("SELECT hash, spec FROM graders").fetchall())
    out: list[dict[str, Any]] = []
    rows = store.db.execute(
        "SELECT r.spec_hash, g.grader_hash, g.category, COUNT(*), MIN(g.error) FROM grades g "
        "JOIN replays r ON g.target = 'replay' AND r.id = g.target_id "
        "WHERE g.status = 'ungradable' GROUP BY 1, 2, 3"
    ).fetchall()
    rows += store.db.execute(
        f"SELECT '{LOGGED}', grader_hash, category, COUNT(*), MIN(error) FROM grades "
        "WHERE target = 'reference' AND status = 'ungradable' GROUP BY 2, 3"
    ).fetchall()
    for spec_hash, gh, category, n, example in rows:
        out.append(
            {
                "model": LOGGED if spec_hash == LOGGED else labels.get(spec_hash, spec_hash),
                "category": category,
                "grader": graders.get(gh, gh),
                "count": int(n),
                "example": (example or "")[:200],
            }
        )
    return sorted(out, key=lambda r: (-r["count"], r["model"], r["category"]))


def forecasts(store: Store) -> list[dict[str, Any]]:
    """Every registered forecast manifest (as stored), oldest first."""
    return [
        json.loads(m)
        for (m,) in store.db.execute("SELECT manifest FROM forecasts ORDER BY registered_at")
    ]


def scorecards(store: Store) -> list[dict[str, Any]]:
    """Every scorecard (as stored) with its forecast hash and creation time, oldest first."""
    return [
        {"forecast_hash": fh, "created_at": created, **json.loads(card)}
        for fh, created, card in store.db.execute(
            "SELECT forecast_hash, created_at, scorecard FROM scorecards ORDER BY id"
        )
    ]


def categories(store: Store) -> list[str]:
    """Every graded category, sorted."""
    return [c for (c,) in store.db.execute("SELECT DISTINCT category FROM graders ORDER BY 1")]


def backtest(store: Store) -> dict[str, Any] | None:
    """The latest ``backtest`` analysis result (as stored), or ``None`` when there is none."""
    results = store.analyses("backtest")
    return results[-1] if results else None
