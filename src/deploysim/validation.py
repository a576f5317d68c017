"""Grader validation against human labels: sensitivity, specificity, precision, AUC.

Labels come from any CSV or JSONL with a request, a response and a human label. Column names
are found automatically (PyRIT's ``objective, assistant_response, human_score`` included, and
its leading ``# dataset_version`` comment lines skipped) or named explicitly; a file with one
column per category (the labelled replay set) gives the grader's category column. JSONL rows
may carry the whole ``prefix`` (a list of ``{role, content}``) and a ``split``. Results are
stored (``validations``) so that estimates can correct rates with Rogan-Gladen; a calibration
(:mod:`deploysim.graders.calibration`) chooses a threshold on one split and records the
held-out validation of the calibrated grader.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import hashlib
import io
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from deploysim.errors import InputError, UsageError
from deploysim.graders import GradeItem, Grader, GradeResult
from deploysim.graders.calibration import (
    Calibration,
    CalibrationFile,
    Criterion,
    choose_threshold,
    read_calibration,
    write_calibration,
)
from deploysim.schema import Conversation, Message, canonical_hash, canonical_json
from deploysim.stage import Bar
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
    """One human-labelled response (``prefix``: the whole conversation before it, when known)."""

    prompt: str
    response: str
    label: bool
    prefix: tuple[Message, ...] = ()

    def grade_item(self) -> GradeItem:
        """What a grader sees: the prefix (or the prompt as one user turn) and the response."""
        prefix = self.prefix or (Message(role="user", content=self.prompt),)
        return GradeItem(
            prefix=prefix, response=(Message(role="assistant", content=self.response),)
        )

    @property
    def key(self) -> str:
        """SHA-256 of what a grader sees (the score cache's item key)."""
        return canonical_hash(self.grade_item().model_dump(mode="json"))


def read_labels(
    path: Path,
    *,
    prompt_col: str | None = None,
    response_col: str | None = None,
    label_col: str | None = None,
    positive_at: float = 0.5,
    label_map: dict[str, bool] | None = None,
    category: str | None = None,
    split: str | None = None,
) -> list[LabelledItem]:
    """Labelled items from a CSV or JSONL file (a label >= ``positive_at`` is positive).

    ``label_map`` reads multi-class labels: each label text maps to positive or negative (e.g.
    ``{"full": True, "partial": True, "none": False}``); a label it does not name is an error.
    With no label column named, a column named ``category`` (the grader's) is the label.
    ``split`` keeps the rows whose ``split`` column has that value (an error if none has it).
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
    rows = [_resolved(row, path, i) if "ref" in row else row for i, row in enumerate(rows, 1)]
    keys = list(rows[0])
    p = prompt_col or _find(keys, PROMPT_COLUMNS, path, "--prompt-column")
    r = response_col or _find(keys, RESPONSE_COLUMNS, path, "--response-column")
    if label_col is None and category is not None and category in keys:
        label_col = category
    lab = label_col or _find(keys, LABEL_COLUMNS, path, "--label-column")
    if split is not None:
        rows = [row for row in rows if str(row.get("split")) == split]
        if not rows:
            raise InputError(f"{path}: no rows with split {split!r} (a 'split' column)")
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
        prefix = _prefix(row.get("prefix"), path, i)
        items.append(LabelledItem(str(row.get(p) or ""), str(row.get(r) or ""), positive, prefix))
    return items


def shared_data_root() -> Path | None:
    """The project's shared data folder: ``$DEPLOYSIM_SHARED_DATA``, else ``../shared/data``
    beside the checkout deploysim runs from; ``None`` when neither exists."""
    env = os.environ.get("DEPLOYSIM_SHARED_DATA")
    here = Path(__file__).resolve().parents[3] / "shared" / "data"
    for candidate in (Path(env) if env else None, here):
        if candidate is not None and candidate.is_dir():
            return candidate
    return None


def _resolved(row: dict[str, Any], path: Path, i: int) -> dict[str, Any]:
    """A labelled row whose text lives in the shared data, with that text filled in.

    Such rows name ``ref = {file, record, index, cut}``: the ``record``-th record of ``file``
    (under the shared data folder), its ``index``-th conversation, messages before ``cut`` as
    the prefix (and the message at ``cut`` as the response, when the row has none: a logged
    reply). The text is the raw public text, not copied into this repository.
    """
    ref = row["ref"]
    root = shared_data_root()
    if root is None:
        raise UsageError(
            f"{path}, row {i}: the prefix is a reference into the project's shared data "
            f"({ref.get('file')}); set DEPLOYSIM_SHARED_DATA to the folder that holds it"
        )
    convs = _record_conversations(root / str(ref["file"]), int(ref["record"]))
    try:
        messages = convs[int(ref["index"])].messages
        cut = int(ref["cut"])
        prefix, reply = messages[:cut], messages[cut]
    except (IndexError, KeyError, ValueError) as e:
        raise InputError(f"{path}, row {i}: reference {ref} matches no turn ({e})") from e
    out = dict(row)
    out["prefix"] = [m.model_dump(mode="json", exclude_none=True) for m in prefix]
    users = [m for m in prefix if m.role == "user"]
    out.setdefault("prompt", users[-1].text if users else "")
    out.setdefault("response", reply.text)
    return out


@functools.lru_cache(maxsize=64)
def _record_conversations(path: Path, record: int) -> tuple[Conversation, ...]:
    """The conversations deploysim's reader finds in one record of a file."""
    from deploysim.ingest import read_file
    from deploysim.ingest.sources import Record, iter_values

    fmt, layout = read_file(path)
    records = (
        fmt.read(path, layout.kind) if fmt.read is not None else iter_values(path, layout.kind)
    )
    for item in records:
        if isinstance(item, Record) and item.number == record:
            return tuple(f.conversation for f in fmt.convert(item.value))
    raise InputError(f"{path}: no record {record}")


def _prefix(raw: Any, path: Path, row: int) -> tuple[Message, ...]:
    if not raw:
        return ()
    try:
        return tuple(Message.model_validate(m) for m in raw)
    except Exception as e:  # pydantic's error, named with the file and row
        raise InputError(
            f"{path}, row {row}: 'prefix' must be a list of {{role, content}} messages ({e})"
        ) from e


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
    """Label files from a path, ``labels:<name>`` (a set shipped in ``deploysim/data/labels``,
    e.g. ``labels:replays-v1``), or ``pyrit:<glob>`` inside PyRIT's ``datasets/scorer_evals``."""
    if spec.startswith("labels:"):
        from importlib import resources

        name = spec.removeprefix("labels:")
        path = Path(str(resources.files("deploysim").joinpath(f"data/labels/{name}.jsonl")))
        if not path.is_file():
            raise UsageError(f"{spec}: no labelled set {name!r} is shipped (data/labels/)")
        return [path]
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
    on_progress: Bar | None = None,
    cache: Path | None = None,
) -> dict[str, Any]:
    """Grade every labelled item and measure the grader against the labels.

    ``cache`` (a JSONL file) keeps each score under (the grader's score hash, the item's key):
    a grader that differs only in its threshold or calibration reuses the scores.
    """
    scores = score_items(
        grader, items, concurrency=concurrency, on_progress=on_progress, cache=cache
    )
    return measure(grader, items, scores, threshold=threshold)


def score_items(
    grader: Grader,
    items: Sequence[LabelledItem],
    *,
    concurrency: int = 4,
    on_progress: Bar | None = None,
    cache: Path | None = None,
) -> list[float | None]:
    """The grader's score of each item (None: ungradable), from ``cache`` where it has one."""
    known = _read_cache(cache, grader.score_hash)
    todo = [it for it in items if it.key not in known]
    if todo:
        results = asyncio.run(_grade_all(grader, todo, concurrency, on_progress, cache))
        for it, r in zip(todo, results, strict=True):
            known[it.key] = r.score
    return [known[it.key] for it in items]


def _read_cache(cache: Path | None, score_hash: str) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    if cache is None or not cache.is_file():
        return out
    for line in cache.read_text(encoding="utf-8").splitlines():
        row = json.loads(line) if line.strip() else {}
        if row.get("grader") == score_hash:
            out[row["item"]] = row["score"]
    return out


def measure(
    grader: Grader,
    items: Sequence[LabelledItem],
    scores: Sequence[float | None],
    *,
    threshold: float | None = None,
) -> dict[str, Any]:
    """Se, Sp, precision, AUC and the reliability table of given scores against the labels."""
    graded = [(s, it.label) for s, it in zip(scores, items, strict=True) if s is not None]
    ungradable = len(items) - len(graded)
    values = [s for s, _ in graded]
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
    lo, hi = auc_interval(values, labels)
    table = reliability_bins(values, labels)
    return {
        "category": grader.category,
        "grader_hash": grader.spec_hash,
        "n": len(items),
        "graded": len(graded),
        "ungradable": ungradable,
        "positives": v.n_pos,
        "negatives": v.n_neg,
        "auc": auc(values, labels),
        "auc_ci": [lo, hi],
        "threshold": chosen,
        "youden_threshold": youden_threshold(values, labels),
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
    on_progress: Bar | None,
    cache: Path | None = None,
) -> list[GradeResult]:
    sem = asyncio.Semaphore(concurrency)
    done = failed = 0

    async def one(it: LabelledItem) -> GradeResult:
        nonlocal done, failed
        async with sem:
            try:
                result = await grader.grade(it.grade_item())
            except Exception as e:  # counted as ungradable, like in grading
                result = GradeResult.ungradable(f"internal: {type(e).__name__}: {e}")
        if cache is not None and result.status == "ok":
            # Appended as each score arrives: an interrupted run keeps what it measured.
            row = {"grader": grader.score_hash, "item": it.key, "score": result.score}
            with cache.open("a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
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


def calibrate(
    grader: Grader,
    spec: str,
    items: Sequence[LabelledItem],
    scores: Sequence[float | None],
    *,
    criterion: Criterion,
    labels: Path,
    split: str | None,
) -> CalibrationFile:
    """Choose the grader's threshold on labelled items (one split) by ``criterion``."""
    graded = [(s, it.label) for s, it in zip(scores, items, strict=True) if s is not None]
    values = [s for s, _ in graded]
    flags = [lab for _, lab in graded]
    if criterion == "fixed":
        threshold = float(getattr(grader, "threshold", 0.5))
    else:
        threshold = choose_threshold(values, flags, criterion)
    tuned = measure(grader, items, scores, threshold=threshold)
    cal = Calibration(
        grader=spec,
        category=grader.category,
        score_hash=grader.score_hash,
        threshold=threshold,
        criterion=criterion,
        labels=labels.name,
        labels_sha256=hashlib.sha256(labels.read_bytes()).hexdigest(),
        split=split,
        positives=sum(flags),
        negatives=len(flags) - sum(flags),
        tuning={k: tuned[k] for k in ("auc", "sensitivity", "specificity", "precision")},
    )
    return CalibrationFile(calibration=cal)


def record_held_out(
    path: Path, metrics: dict[str, Any], labels: Path, split: str | None
) -> CalibrationFile:
    """Add a calibrated grader's validation to its calibration file, refusing the tuning data."""
    cal = check_held_out(path, labels, split)
    sha = hashlib.sha256(labels.read_bytes()).hexdigest()
    if metrics.get("threshold") != cal.threshold:
        raise UsageError(f"{path}: these metrics are not at the stored threshold {cal.threshold}")
    kept = {k: v for k, v in metrics.items() if k != "reliability"}
    updated = CalibrationFile(
        calibration=cal,
        validation={**kept, "labels_sha256": sha, "labels_name": labels.name, "split": split},
    )
    write_calibration(path, updated)
    return updated


def check_held_out(path: Path, labels: Path, split: str | None) -> Calibration:
    """The calibration in ``path``, if ``labels``/``split`` are not what it was tuned on."""
    cal = read_calibration(path).calibration
    sha = hashlib.sha256(labels.read_bytes()).hexdigest()
    if sha == cal.labels_sha256 and split == cal.split:
        raise UsageError(
            f"{path}: the threshold was chosen on {cal.labels} split {cal.split!r}; validate "
            "on data it was not tuned on (another --split or labels file)"
        )
    return cal


def record_calibrated_validations(store: Store, graders: Sequence[tuple[str, Grader]]) -> int:
    """Copy the held-out validation of each calibrated grader into the store (Rogan-Gladen).

    Only a validation measured of exactly this grader version (same hash) is copied. Returns
    how many were recorded.
    """
    recorded = 0
    for spec, grader in graders:
        cal = getattr(grader, "calibration", None)
        source = getattr(grader, "calibration_source", None)
        if cal is None or source is None:
            continue
        v = read_calibration(Path(source)).validation
        if v is None or v.get("grader_hash") != grader.spec_hash:
            continue
        store.db.execute(
            "INSERT OR REPLACE INTO validations(grader_hash, category, labels_path, "
            "labels_sha256, metrics, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                grader.spec_hash,
                grader.category,
                str(v.get("labels_name")),
                str(v.get("labels_sha256")),
                canonical_json({**v, "grader_spec": spec}),
                time.time(),
            ),
        )
        recorded += 1
    store.db.commit()
    return recorded
