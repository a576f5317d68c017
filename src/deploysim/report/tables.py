"""Tidy tables (formats.md §2): ``rates``, ``comparisons``, ``grades``, ``forecasts``,
``scorecard``, written as CSV or Parquet files into one directory.

Columns named in formats.md come first, in its order; the columns after them are deploysim's
additions (grader, counts of failures, interval bounds of the weighted and corrected rates...).
Rates are probabilities; ``per_100k`` is derived from ``rate_jeffreys``. Every table is written
with its header (and, in Parquet, its typed schema) even when it has no rows, so a consumer can
rely on the columns. The ``grades`` table streams from the store in batches.

Choices where formats.md leaves room: ``run_id`` is :func:`deploysim.report.data.run_id`;
``condition`` is the replay spec hash (the exact replay configuration) and empty for the logged
responses; ``n_effective`` is the effective sample size behind ``ci_low``/``ci_high`` (n for
independent turns; fewer when turns share conversations or draws share prefixes, see
docs/design/stats.md), empty when nothing was graded;
``forecast_id`` is the first 16 hex digits of the manifest's content hash (``prereg_hash``, in
full). The ``grades`` table has a ``rationale`` column only when asked for: rationales can quote
user content.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol

from deploysim.errors import UsageError
from deploysim.estimates import LOGGED
from deploysim.report import data
from deploysim.report.transcripts import prefix_hash
from deploysim.store import Store

# (column, type) per table; types are pyarrow type names.
RATES = [
    ("run_id", "string"),
    ("model", "string"),
    ("condition", "string"),
    ("category", "string"),
    ("n", "int64"),
    ("n_effective", "float64"),
    ("k", "int64"),
    ("rate", "float64"),
    ("rate_jeffreys", "float64"),
    ("per_100k", "float64"),
    ("ci_low", "float64"),
    ("ci_high", "float64"),
    ("corrected_rate", "float64"),
    ("judge_se", "float64"),
    ("judge_sp", "float64"),
    ("grader", "string"),
    ("grader_hash", "string"),
    ("attempted", "int64"),
    ("failed", "int64"),
    ("ungradable", "int64"),
    ("weighted_rate", "float64"),
    ("weighted_ci_low", "float64"),
    ("weighted_ci_high", "float64"),
    ("corrected_ci_low", "float64"),
    ("corrected_ci_high", "float64"),
    ("correctable", "bool"),
]
COMPARISONS = [
    ("category", "string"),
    ("model_a", "string"),
    ("model_b", "string"),
    ("k_a", "int64"),
    ("n_a", "int64"),
    ("k_b", "int64"),
    ("n_b", "int64"),
    ("rel_change", "float64"),
    ("fisher_p", "float64"),
    ("significant", "bool"),
    ("grader", "string"),
    ("ratio", "float64"),
    ("ratio_ci_low", "float64"),
    ("ratio_ci_high", "float64"),
    ("p_adjusted", "float64"),
]
GRADES = [
    ("run_id", "string"),
    ("grade_id", "int64"),
    ("target", "string"),
    ("target_id", "int64"),
    ("prefix_id", "int64"),
    ("prefix_hash", "string"),
    ("sample", "string"),
    ("model", "string"),
    ("condition", "string"),
    ("draw", "int64"),
    ("category", "string"),
    ("grader", "string"),
    ("grader_hash", "string"),
    ("status", "string"),
    ("score", "float64"),
    ("flagged", "bool"),
    ("severity", "int64"),
    ("error", "string"),
    ("inclusion_prob", "float64"),
]
RATIONALE = ("rationale", "string")
FORECASTS = [
    ("forecast_id", "string"),
    ("preregistered_at", "string"),
    ("prereg_hash", "string"),
    ("category", "string"),
    ("candidate", "string"),
    ("method", "string"),
    ("rate", "float64"),
    ("ci_low", "float64"),
    ("ci_high", "float64"),
    ("direction", "string"),
    ("baseline_rate", "float64"),
    ("ratio", "float64"),
    ("ratio_ci_low", "float64"),
    ("ratio_ci_high", "float64"),
    ("grader_hash", "string"),
    ("deployed", "string"),
    ("sample", "string"),
    ("k", "int64"),
    ("n", "int64"),
]
SCORECARD = [
    ("forecast_id", "string"),
    ("category", "string"),
    ("realised_k", "int64"),
    ("realised_n", "int64"),
    ("sme", "float64"),
    ("direction_eligible", "bool"),
    ("direction_correct", "bool"),
    ("nll_regret", "float64"),
    ("in_noise_band", "bool"),
    ("method", "string"),
    ("forecast", "float64"),
    ("realised_rate", "float64"),
    ("nll", "float64"),
    ("candidate", "string"),
]

Columns = list[tuple[str, str]]
# pyarrow's factory names where they differ from the type names above.
_ARROW = {"bool": "bool_"}
_BATCH = 10_000


class _Writer(Protocol):
    def write(self, rows: list[dict[str, Any]]) -> None: ...

    def __enter__(self) -> _Writer: ...

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class _CsvWriter:
    def __init__(self, path: Path, columns: Columns) -> None:
        self.f: IO[str] = path.open("w", encoding="utf-8", newline="")
        self.names = [c for c, _ in columns]
        self.w = csv.writer(self.f)
        self.w.writerow(self.names)

    def write(self, rows: list[dict[str, Any]]) -> None:
        self.w.writerows([[_csv(r.get(c)) for c in self.names] for r in rows])

    def __enter__(self) -> _CsvWriter:
        return self

    def __exit__(self, *_: object) -> None:
        self.f.close()


def _csv(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return v


class _ParquetWriter:
    def __init__(self, path: Path, columns: Columns) -> None:
        pa, pq = _pyarrow()
        self.pa = pa
        self.schema = pa.schema([(c, getattr(pa, _ARROW.get(t, t))()) for c, t in columns])
        self.w = pq.ParquetWriter(str(path), self.schema, compression="zstd")

    def write(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            columns = {n: [_finite(r.get(n)) for r in rows] for n in self.schema.names}
            self.w.write_table(self.pa.table(columns, schema=self.schema))

    def __enter__(self) -> _ParquetWriter:
        return self

    def __exit__(self, *_: object) -> None:
        # An empty table still gets a file with the schema.
        self.w.close()


def _finite(v: Any) -> Any:
    # Parquet holds nan fine, but an infinite ratio is better read as missing than as a number.
    if isinstance(v, float) and math.isinf(v):
        return None
    return v


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa  # type: ignore[import-untyped, import-not-found, unused-ignore]
        import pyarrow.parquet as pq  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError as e:
        raise UsageError("--format parquet needs pyarrow: pip install 'deploysim[exports]'") from e
    return pa, pq


def _writer(fmt: str, path: Path, columns: Columns) -> _Writer:
    if fmt == "csv":
        return _CsvWriter(path, columns)
    return _ParquetWriter(path, columns)


def export_tables(
    store: Store,
    out_dir: Path,
    *,
    fmt: str = "csv",
    sample: str | None = None,
    include_explanations: bool = False,
) -> dict[str, int]:
    """Write the tidy tables into ``out_dir`` (``fmt``: ``csv`` or ``parquet``); returns the
    number of rows written per table."""
    if fmt not in ("csv", "parquet"):
        raise UsageError(f"unknown table format {fmt!r}; use csv or parquet")
    if fmt == "parquet":
        _pyarrow()
    out_dir.mkdir(parents=True, exist_ok=True)
    rid = data.run_id(store)
    res = data.results(store, sample=sample)
    labels = data.model_labels(store)
    conditions = {label: h for h, label in labels.items()}
    rates = [
        {
            "run_id": rid,
            "model": e.model,
            "condition": conditions.get(e.model),
            "category": e.category,
            "n": e.n,
            "n_effective": e.effective_n,
            "k": e.k,
            "rate": e.k / e.n if e.n else None,
            "rate_jeffreys": e.rate,
            "per_100k": e.per_100k,
            "ci_low": e.ci_low,
            "ci_high": e.ci_high,
            "corrected_rate": e.corrected_rate,
            "judge_se": e.judge_se,
            "judge_sp": e.judge_sp,
            "grader": e.grader,
            "grader_hash": e.grader_hash,
            "attempted": e.attempted,
            "failed": e.failed,
            "ungradable": e.ungradable,
            "weighted_rate": e.weighted_rate,
            "weighted_ci_low": e.weighted_ci[0] if e.weighted_ci else None,
            "weighted_ci_high": e.weighted_ci[1] if e.weighted_ci else None,
            "corrected_ci_low": e.corrected_ci[0] if e.corrected_ci else None,
            "corrected_ci_high": e.corrected_ci[1] if e.corrected_ci else None,
            "correctable": e.correctable,
        }
        for e in res.estimates
    ]
    comparisons = [c.to_json() for c in res.comparisons]
    written: dict[str, int] = {}
    for name, columns, rows in (
        ("rates", RATES, rates),
        ("comparisons", COMPARISONS, comparisons),
        ("forecasts", FORECASTS, list(forecast_rows(store))),
        ("scorecard", SCORECARD, list(scorecard_rows(store))),
    ):
        with _writer(fmt, out_dir / f"{name}.{fmt}", columns) as w:
            w.write(rows)
        written[name] = len(rows)
    grade_columns = GRADES + ([RATIONALE] if include_explanations else [])
    n = 0
    with _writer(fmt, out_dir / f"grades.{fmt}", grade_columns) as w:
        batch: list[dict[str, Any]] = []
        for row in grade_rows(store, labels, run=rid, sample=sample):
            if not include_explanations:
                row.pop("rationale", None)
            batch.append(row)
            if len(batch) >= _BATCH:
                w.write(batch)
                n += len(batch)
                batch = []
        w.write(batch)
        n += len(batch)
    written["grades"] = n
    return written


def grade_rows(
    store: Store, labels: dict[str, str], *, run: str, sample: str | None = None
) -> Iterator[dict[str, Any]]:
    """One row per graded response x grader (replays, then logged responses); streamed."""
    graders = dict(store.db.execute("SELECT hash, spec FROM graders").fetchall())
    for g in data.graded_rows(store, sample):
        yield {
            "run_id": run,
            "grade_id": g.grade_id,
            "target": g.target,
            "target_id": g.target_id,
            "prefix_id": g.prefix_id,
            "prefix_hash": prefix_hash(g.conversation_hash, g.cut),
            "sample": g.sample,
            "model": LOGGED if g.spec_hash is None else labels.get(g.spec_hash, g.spec_hash),
            "condition": g.spec_hash,
            "draw": g.draw,
            "category": g.category,
            "grader": graders.get(g.grader_hash, g.grader_hash),
            "grader_hash": g.grader_hash,
            "status": g.status,
            "score": g.score,
            "flagged": None if g.flagged is None else bool(g.flagged),
            "severity": g.severity,
            "error": g.error,
            "inclusion_prob": g.inclusion_prob,
            "rationale": g.rationale,
        }


def forecast_rows(store: Store) -> Iterator[dict[str, Any]]:
    """One row per forecast (category x method) of every registered manifest."""
    for m in data.forecasts(store):
        content_hash = str(m.get("content_hash", ""))
        for f in m.get("forecasts", []):
            yield {
                "forecast_id": content_hash[:16],
                "preregistered_at": m.get("registered_at"),
                "prereg_hash": content_hash,
                "category": f.get("category"),
                "candidate": m.get("candidate"),
                "method": f.get("method"),
                "rate": f.get("rate"),
                "ci_low": f.get("ci_low"),
                "ci_high": f.get("ci_high"),
                "direction": f.get("direction"),
                "baseline_rate": f.get("baseline_rate"),
                "ratio": f.get("ratio"),
                "ratio_ci_low": f.get("ratio_ci_low"),
                "ratio_ci_high": f.get("ratio_ci_high"),
                "grader_hash": f.get("grader_hash"),
                "deployed": m.get("deployed"),
                "sample": (m.get("sample") or {}).get("name"),
                "k": f.get("k"),
                "n": f.get("n"),
            }


def scorecard_rows(store: Store) -> Iterator[dict[str, Any]]:
    """One row per scored forecast (category x method) of every scorecard."""
    for card in data.scorecards(store):
        fid = str(card.get("forecast", card.get("forecast_hash", "")))[:16]
        for r in card.get("categories", []):
            yield {
                "forecast_id": fid,
                "category": r.get("category"),
                "realised_k": r.get("realised_k"),
                "realised_n": r.get("realised_n"),
                "sme": r.get("sme"),
                "direction_eligible": r.get("direction_eligible"),
                "direction_correct": r.get("direction_correct"),
                "nll_regret": r.get("nll_regret"),
                "in_noise_band": r.get("in_noise_band"),
                "method": r.get("method"),
                "forecast": r.get("forecast"),
                "realised_rate": r.get("realised_rate"),
                "nll": r.get("nll"),
                "candidate": card.get("candidate"),
            }
