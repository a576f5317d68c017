"""A grader's calibration: the flag threshold chosen on labelled data, stored with the grader.

A calibration file (JSON) holds the threshold, the criterion that chose it and what it was
chosen on (labels file hash, split, counts, the tuning metrics), plus, once measured, the
grader's validation on a held-out split. A grader built with ``?calibration=<file or name>``
flags at the stored threshold and carries the calibration in its definition, so the calibration
is part of its hash (its version); the held-out validation is not (it is measured *of* that
version), and :func:`deploysim.validation.record_calibrated_validations` copies it into a store
for Rogan-Gladen corrections.

Named calibrations (``?calibration=replays-v1-refusal``) are the files shipped in
``deploysim/data/labels/calibrations/``; anything ending in ``.json`` is a path.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from deploysim.errors import InputError, UsageError

#: How a threshold is chosen. ``youden``: maximise Se + Sp - 1. ``precision90``: the most
#: sensitive threshold whose precision is at least 0.90 (a flag a reader can trust nine times in
#: ten), and of those the most precise (lowering a threshold past negatives only adds false
#: flags), else Youden's when no threshold reaches 0.90. ``fixed``: the grader's own threshold,
#: kept (a validation shipped with the grader, for a judge whose scores no threshold makes useful).
Criterion = Literal["youden", "precision90", "fixed"]


class Calibration(BaseModel):
    """A stored threshold and where it came from (all part of the grader's definition)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    grader: str  # the spec the threshold was chosen for, without its calibration option
    category: str
    score_hash: str  # the scoring definition (threshold left out) whose scores were used
    threshold: float
    criterion: Criterion
    labels: str  # file name of the labels
    labels_sha256: str
    split: str | None
    positives: int
    negatives: int
    tuning: dict[str, float | None]  # AUC, Se, Sp, precision at the threshold on that data


class CalibrationFile(BaseModel):
    """What a calibration file holds: the calibration and, when measured, a held-out validation
    (the metrics of ``deploysim graders validate``, with the grader hash they belong to)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    calibration: Calibration
    validation: dict[str, Any] | None = None


def resolve_calibration(value: str) -> Path:
    """The file a ``calibration=`` option names: a path (``*.json``) or a shipped name."""
    if value.endswith(".json"):
        return Path(value)
    path = Path(
        str(resources.files("deploysim").joinpath(f"data/labels/calibrations/{value}.json"))
    )
    if not path.is_file():
        names = sorted(p.stem for p in path.parent.glob("*.json")) if path.parent.is_dir() else []
        raise UsageError(
            f"no shipped calibration {value!r}; choose one of: {', '.join(names) or '(none)'}, "
            "or give a path ending in .json"
        )
    return path


def read_calibration(path: Path) -> CalibrationFile:
    """Read and check a calibration file."""
    if not path.is_file():
        raise InputError(f"{path}: no such calibration file")
    try:
        return CalibrationFile.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(f"{path}: not a calibration file ({where}: {first['msg']})") from e


def write_calibration(path: Path, data: CalibrationFile) -> None:
    """Write a calibration file (sorted keys, one trailing newline)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data.model_dump(mode="json"), indent=1, sort_keys=True)
    path.write_text(text + "\n", encoding="utf-8")


def choose_threshold(
    scores: Sequence[float], labels: Sequence[bool], criterion: Criterion
) -> float:
    """The flag threshold (flag when score >= threshold) that ``criterion`` picks (not ``fixed``).

    Cut points are midway between adjacent distinct scores, so a threshold never sits on a
    score seen in tuning (a new item scoring exactly that value is not decided by ties).
    """
    if criterion == "fixed":
        raise UsageError("criterion 'fixed' keeps the grader's own threshold: nothing to choose")
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=bool)
    if s.size == 0 or y.all() or not y.any():
        raise InputError("choosing a threshold needs positive and negative labelled items")
    distinct = np.unique(s)
    cuts = np.concatenate(([distinct[0]], (distinct[1:] + distinct[:-1]) / 2))
    best_j, best_t = -2.0, float(cuts[0])
    precise: list[tuple[float, float, float]] = []  # (Se, precision, -threshold)
    for t in cuts:
        flagged = s >= t
        se = float(flagged[y].mean())
        j = se + float((~flagged[~y]).mean()) - 1
        if j > best_j:
            best_j, best_t = j, float(t)
        if flagged.any() and float(y[flagged].mean()) >= 0.90:
            precise.append((se, float(y[flagged].mean()), -float(t)))
    if criterion == "precision90" and precise:
        return round(-max(precise)[2], 6)
    return round(best_t, 6)
