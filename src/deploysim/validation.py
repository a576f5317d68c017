"""Grader validation against human labels: sensitivity, specificity, precision, AUC.

Labels come from any CSV or JSONL with a request, a response and a human label. Column names
are found automatically (PyRIT's ``objective, assistant_response, human_score`` included, and
its leading ``# dataset_version`` comment lines skipped) or named explicitly. Results are stored
(``validations``) so that estimates can correct rates with Rogan-Gladen.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from deploysim.errors import InputError, UsageError
from deploysim.graders import GradeItem, Grader, GradeResult
from deploysim.schema import Message, canonical_json
from deploysim.stats import (
    auc,
    auc_interval,
    expected_calibration_error,
    grader_validation,
    reliability_bins,
    youden_threshold,
)
from deploysim.store import Store

PROMPT_COLUMNS = ("objective", "prompt", "user", "question", "input", "request")
RESPONSE_COLUMNS = ("assistant_response", "response", "output", "completion", "answer")
LABEL_COLUMNS = ("human_score", "label", "human_label", "flagged", "score", "is_harmful")


@dataclass(frozen=True, slots=True)
class LabelledItem:
    """One human-labelled response."""

    prompt: str
    response: str
    label: bool


def read_labels(
    path: Path,
    *,
    prompt_col: str | None = None,
    response_col: str | None = None,
    label_col: str | None = None,
    positive_at: float = 0.5,
    label_map: dict[str, bool] | None = None,
) -> list[LabelledItem]:
    """Labelled items from a CSV or JSONL file (a label >= ``positive_at`` is positive).

    ``label_map`` reads multi-class labels: each label text maps to positive or negative (e.g.
    ``{"full": True, "partial": True, "none": False}``); a label it does not name is an error.
    """
    if not path.is_file():
        raise InputError(f"{path}: no such labels file")
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".jsonl", ".json"):
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    else:
        body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
        rows = list(csv.DictReader(io.StringIO(body)))
    if not rows:
        raise InputError(f"{path}: no labelled rows")
    keys = list(rows[0])
    p = prompt_col or _find(keys, PROMPT_COLUMNS, path, "--prompt-column")
    r = response_col or _find(keys, RESPONSE_COLUMNS, path, "--response-column")
    lab = label_col or _find(keys, LABEL_COLUMNS, path, "--label-column")
    items: list[LabelledItem] = []
    for i, row in enumerate(rows, start=1):
        raw = row.get(lab)
        if label_map is not None:
            key = str(raw).strip().lower()
            if key not in label_map:
                raise InputError(
                    f"{path}, row {i}: label {raw!r} in column {lab!r} is not in the label map "
                    f"({', '.join(sorted(label_map))}); add it to --label-map"
                )
            positive = label_map[key]
        else:
            try:
                positive = float(raw) >= positive_at
            except (TypeError, ValueError) as e:
                raise InputError(
                    f"{path}, row {i}: label {raw!r} in column {lab!r} is not a number; map "
                    "text labels with --label-map (e.g. 'full=1,partial=1,none=0')"
                ) from e
        items.append(LabelledItem(str(row.get(p) or ""), str(row.get(r) or ""), positive))
    return items


def parse_label_map(text: str) -> dict[str, bool]:
    """``"full=1,partial=1,none=0"`` -> ``{"full": True, "partial": True, "none": False}``."""
    out: dict[str, bool] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep or not name.strip() or value.strip() not in ("0", "1"):
            raise UsageError(
                f"--label-map {text!r}: write label=1 (positive) or label=0 (negative), "
                "separated by commas, e.g. 'full=1,partial=1,none=0'"
            )
        out[name.strip().lower()] = value.strip() == "1"
    return out


def resolve_labels(spec: str) -> list[Path]:
    """Label files from a path, or ``pyrit:<glob>`` inside PyRIT's ``datasets/scorer_evals``."""
    if not spec.startswith("pyrit:"):
        return [Path(spec)]
    import importlib.util

    found = importlib.util.find_spec("pyrit")
    if found is None or found.origin is None:
        raise UsageError("pyrit: labels need PyRIT's data: pip install --no-deps pyrit==1.1.0")
    root = Path(found.origin).parent / "datasets" / "scorer_evals"
    paths = sorted(root.glob(spec.removeprefix("pyrit:")))
    if not paths:
        raise InputError(f"{spec}: no such files under {root}")
    return paths


def _find(keys: Sequence[str], candidates: Sequence[str], path: Path, option: str) -> str:
    lowered = {k.lower().strip(): k for k in keys}
    for c in candidates:
        if c in lowered:
            return lowered[c]
    raise InputError(f"{path}: cannot find a column among {list(keys)}; name it with {option}")


def validate(
    grader: Grader,
    items: Sequence[LabelledItem],
    *,
    threshold: float | None = None,
    concurrency: int = 4,
    on_progress: Callable[[int, int, int], None] | None = None,
) -> dict[str, Any]:
    """Grade every labelled item and measure the grader against the labels."""
    results = asyncio.run(_grade_all(grader, items, concurrency, on_progress))
    graded = [
        (r.score, it.label) for r, it in zip(results, items, strict=True) if r.score is not None
    ]
    ungradable = len(items) - len(graded)
    scores = [s for s, _ in graded]
    labels = [lab for _, lab in graded]
    own = getattr(grader, "threshold", 0.5)
    chosen = threshold if threshold is not None else own
    tp = sum(1 for s, lab in graded if lab and s >= chosen)
    fn = sum(1 for s, lab in graded if lab and s < chosen)
    tn = sum(1 for s, lab in graded if not lab and s < chosen)
    fp = sum(1 for s, lab in graded if not lab and s >= chosen)
    base = {
        "category": grader.category,
        "grader_hash": grader.spec_hash,
        "n": len(items),
        "graded": len(graded),
        "ungradable": ungradable,
    }
    if not any(labels) or all(labels):
        # Nothing to measure: every item ungradable, or only one class among the graded.
        return {**base, "error": "need graded items with both positive and negative labels"}
    v = grader_validation(tp, fn, tn, fp)
    lo, hi = auc_interval(scores, labels)
    table = reliability_bins(scores, labels)
    return {
        "category": grader.category,
        "grader_hash": grader.spec_hash,
        "n": len(items),
        "graded": len(graded),
        "ungradable": ungradable,
        "positives": v.n_pos,
        "negatives": v.n_neg,
        "auc": auc(scores, labels),
        "auc_ci": [lo, hi],
        "threshold": chosen,
        "youden_threshold": youden_threshold(scores, labels),
        "sensitivity": v.sensitivity,
        "sensitivity_ci": [v.sensitivity_ci.lower, v.sensitivity_ci.upper],
        "specificity": v.specificity,
        "specificity_ci": [v.specificity_ci.lower, v.specificity_ci.upper],
        "precision": v.precision,
        "precision_ci": [v.precision_ci.lower, v.precision_ci.upper] if v.precision_ci else None,
        "confusion": {"tp": tp, "fn": fn, "tn": tn, "fp": fp},
        "reliability": [asdict(b) for b in table],
        "ece": expected_calibration_error(table),
    }


async def _grade_all(
    grader: Grader,
    items: Sequence[LabelledItem],
    concurrency: int,
    on_progress: Callable[[int, int, int], None] | None,
) -> list[GradeResult]:
    sem = asyncio.Semaphore(concurrency)
    done = failed = 0

    async def one(it: LabelledItem) -> GradeResult:
        nonlocal done, failed
        item = GradeItem(
            prefix=(Message(role="user", content=it.prompt),),
            response=(Message(role="assistant", content=it.response),),
        )
        async with sem:
            try:
                result = await grader.grade(item)
            except Exception as e:  # counted as ungradable, like in grading
                result = GradeResult.ungradable(f"internal: {type(e).__name__}: {e}")
        done += 1
        failed += result.status != "ok"
        if on_progress is not None:
            on_progress(done, len(items), failed)
        return result

    try:
        return list(await asyncio.gather(*(one(it) for it in items)))
    finally:
        await grader.aclose()


def store_validation(store: Store, metrics: dict[str, Any], labels: Path, spec: str) -> None:
    """Record a validation (grader hash + labels file hash) for Rogan-Gladen corrections."""
    sha = hashlib.sha256(labels.read_bytes()).hexdigest()
    store.db.execute(
        "INSERT OR REPLACE INTO validations(grader_hash, category, labels_path, labels_sha256, "
        "metrics, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (
            metrics["grader_hash"],
            metrics["category"],
            str(labels),
            sha,
            canonical_json({**metrics, "grader_spec": spec}),
            time.time(),
        ),
    )
