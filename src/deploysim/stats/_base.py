"""Shared pieces of :mod:`deploysim.stats`: the interval type and the input checks."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from deploysim.errors import StatsError

#: A 1-D run of numbers: a list, tuple or NumPy array.
FloatSeq = Sequence[float] | npt.NDArray[Any]

PER_100K = 100_000.0


@dataclass(frozen=True, slots=True)
class Interval:
    """A closed interval ``[lower, upper]``."""

    lower: float
    upper: float

    def contains(self, x: float) -> bool:
        """Whether ``lower <= x <= upper``."""
        return self.lower <= x <= self.upper


# --------------------------------------------------------------------------- input checks


def _count(name: str, value: int, minimum: int = 0) -> int:
    # bool is an int subclass; a True/False count is always a caller bug.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise StatsError(f"{name} must be an integer count, got {value!r}")
    if value < minimum:
        raise StatsError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _counts(k: int, n: int) -> tuple[int, int]:
    k, n = _count("k", k), _count("n", n)
    if n == 0:
        # The Jeffreys posterior of an empty sample is the prior (rate 0.5): a silent 50 % rate
        # would hide an upstream bug, so an empty sample is refused.
        raise StatsError("n must be >= 1: a rate needs at least one graded turn")
    if k > n:
        raise StatsError(f"k = {k} flagged turns cannot exceed n = {n} turns")
    return k, n


def _rate(name: str, value: float, *, positive: bool = False) -> float:
    v = float(value)
    if not (0.0 <= v <= 1.0):  # also rejects nan
        raise StatsError(f"{name} must be a rate in [0, 1], got {value!r}")
    if positive and v == 0.0:
        raise StatsError(f"{name} must be > 0 (pass a Jeffreys-smoothed rate), got 0")
    return v


def _level(level: float) -> float:
    if not (0.0 < level < 1.0):
        raise StatsError(f"confidence level must be in (0, 1), got {level!r}")
    return float(level)


def _rates(name: str, values: FloatSeq, *, positive: bool = False) -> npt.NDArray[np.float64]:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise StatsError(f"{name} must be a 1-D sequence of rates")
    if not np.all((arr > 0.0 if positive else arr >= 0.0) & (arr <= 1.0)):
        bound = "(0, 1]; pass Jeffreys-smoothed rates" if positive else "[0, 1]"
        raise StatsError(f"every {name} must be a rate in {bound}")
    return arr


def _finite(name: str, values: FloatSeq) -> npt.NDArray[np.float64]:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1 or not np.all(np.isfinite(arr)):
        raise StatsError(f"{name} must be a 1-D sequence of finite numbers")
    return arr


def _same_length(**arrays: npt.NDArray[np.float64]) -> int:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise StatsError(f"sequences must have equal lengths, got {lengths}")
    return next(iter(lengths.values()))
