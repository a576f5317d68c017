"""Per model x category rates from stored grades, and model-vs-model comparisons.

A *model* is a replay spec (its model string, disambiguated by spec hash when one model was
replayed under several configurations) or ``logged`` (the deployed model's logged responses).
A *category* is measured by one grader version. Nothing is silently dropped: failed replays and
ungradable grades are counted beside n and k, and ``attempted = graded + ungradable + failed``.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import scipy.stats as sps

from deploysim.stats import (
    fisher_compare_many,
    hajek_prevalence,
    jeffreys_interval,
    jeffreys_rate,
    per_100k,
    rogan_gladen,
)
from deploysim.store import Store

LOGGED = "logged"


@dataclass(frozen=True, slots=True)
class Estimate:
    """The rate of one category for one model."""

    model: str
    category: str
    grader: str
    grader_hash: str
    attempted: int
    failed: int
    ungradable: int
    n: int
    k: int
    rate: float  # Jeffreys-smoothed (k + 1/2) / (n + 1)
    ci_low: float
    ci_high: float
    per_100k: float
    weighted_rate: float | None  # Hajek, when inclusion probabilities differ
    weighted_ci: tuple[float, float] | None
    corrected_rate: float | None  # Rogan-Gladen, when the grader was validated
    corrected_ci: tuple[float, float] | None
    correctable: bool | None
    judge_se: float | None
    judge_sp: float | None

    def to_json(self) -> dict[str, Any]:
        """The estimate as JSON-ready data."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Comparison:
    """Candidate vs baseline on one category."""

    category: str
    grader: str
    model_a: str
    model_b: str
    k_a: int
    n_a: int
    k_b: int
    n_b: int
    ratio: float
    ratio_ci_low: float
    ratio_ci_high: float
    rel_change: float
    fisher_p: float
    p_adjusted: float
    significant: bool

    def to_json(self) -> dict[str, Any]:
        """The comparison as JSON-ready data."""
        return asdict(self)


def _items(store: Store, sample: str | None) -> dict[tuple[str, str], list[tuple[Any, ...]]]:
    """(model label, grader hash) -> rows (status, flagged, inclusion prob, conversation)."""
    cond, args = "", list[str]()
    if sample:
        cond = " AND p.sample_id = (SELECT id FROM samples WHERE name = ?)"
        args = [sample]
    groups: dict[tuple[str, str], list[tuple[Any, ...]]] = defaultdict(list)
    labels = model_labels(store)
    for spec_hash, grader, status, flagged, prob, conv in store.db.execute(
        "SELECT r.spec_hash, g.grader_hash, g.status, g.flagged, p.inclusion_prob, "
        "p.conversation_hash FROM grades g JOIN replays r ON g.target = 'replay' AND "
        f"r.id = g.target_id JOIN prefixes p ON p.id = r.prefix_id WHERE 1 = 1{cond}",
        args,
    ):
        groups[(labels[spec_hash], grader)].append((status, flagged, prob, conv))
    for grader, status, flagged, prob, conv in store.db.execute(
        "SELECT g.grader_hash, g.status, g.flagged, p.inclusion_prob, p.conversation_hash "
        "FROM grades g JOIN prefixes p ON g.target = 'reference' AND p.id = g.target_id "
        f"WHERE 1 = 1{cond}",
        args,
    ):
        groups[(LOGGED, grader)].append((status, flagged, prob, conv))
    return groups


def model_labels(store: Store) -> dict[str, str]:
    """Replay spec hash -> the model label estimates use (the model string, with the spec
    hash's first 8 characters when one model was replayed under several specs)."""
    rows = store.db.execute("SELECT hash, model FROM replay_specs").fetchall()
    count: dict[str, int] = defaultdict(int)
    for _, model in rows:
        count[model] += 1
    return {h: model if count[model] == 1 else f"{model}#{h[:8]}" for h, model in rows}


def _failures(store: Store, sample: str | None) -> dict[str, int]:
    cond, args = "", list[str]()
    if sample:
        cond = " AND p.sample_id = (SELECT id FROM samples WHERE name = ?)"
        args = [sample]
    labels = model_labels(store)
    out: dict[str, int] = defaultdict(int)
    for spec_hash, n in store.db.execute(
        "SELECT r.spec_hash, COUNT(*) FROM replays r JOIN prefixes p ON p.id = r.prefix_id "
        f"WHERE r.status = 'failed'{cond} GROUP BY r.spec_hash",
        args,
    ):
        out[labels[spec_hash]] += n
    return out


def estimate(store: Store, *, sample: str | None = None) -> list[Estimate]:
    """Every model x category rate in the store (optionally for one sample)."""
    graders = {
        h: (spec, cat)
        for h, spec, cat in store.db.execute("SELECT hash, spec, category FROM graders")
    }
    validations = _validations(store)
    failures = _failures(store, sample)
    out: list[Estimate] = []
    for (model, gh), rows in sorted(_items(store, sample).items()):
        spec, category = graders[gh]
        ok = [r for r in rows if r[0] == "ok"]
        n, k = len(ok), sum(1 for r in ok if r[1])
        ungradable = len(rows) - n
        failed = failures.get(model, 0)
        if n == 0:
            continue
        interval = jeffreys_interval(k, n)
        rate = jeffreys_rate(k, n)
        weighted = weighted_ci = None
        probs = {r[2] for r in ok}
        if len(probs) > 1:
            h = hajek_prevalence(
                [bool(r[1]) for r in ok], [r[2] for r in ok], [r[3] for r in ok], n_boot=500
            )
            weighted, weighted_ci = h.estimate, (h.lower, h.upper)
        corrected = corrected_ci = correctable = se = sp = None
        if gh in validations:
            v = validations[gh]
            se, sp = v["sensitivity"], v["specificity"]
            rg = rogan_gladen(k / n, se, sp, n=n, n_pos=v["positives"], n_neg=v["negatives"])
            corrected, correctable = rg.estimate, rg.correctable
            corrected_ci = (rg.interval.lower, rg.interval.upper) if rg.interval else None
        out.append(
            Estimate(
                model=model,
                category=category,
                grader=spec,
                grader_hash=gh,
                attempted=n + ungradable + failed,
                failed=failed,
                ungradable=ungradable,
                n=n,
                k=k,
                rate=rate,
                ci_low=interval.lower,
                ci_high=interval.upper,
                per_100k=per_100k(rate),
                weighted_rate=weighted,
                weighted_ci=weighted_ci,
                corrected_rate=corrected,
                corrected_ci=corrected_ci,
                correctable=correctable,
                judge_se=se,
                judge_sp=sp,
            )
        )
    return out


def _validations(store: Store) -> dict[str, dict[str, Any]]:
    """The latest validation per grader hash (metrics JSON)."""
    out: dict[str, dict[str, Any]] = {}
    for gh, metrics in store.db.execute(
        "SELECT grader_hash, metrics FROM validations ORDER BY created_at"
    ):
        m = json.loads(metrics)
        if "sensitivity" in m:
            out[gh] = m
    return out


def rate_ratio_interval(
    k_a: int, n_a: int, k_b: int, n_b: int, level: float = 0.95
) -> tuple[float, float, float]:
    """Ratio of Jeffreys-smoothed rates with a log-scale (Katz) interval, +1/2 smoothed."""
    ratio = jeffreys_rate(k_a, n_a) / jeffreys_rate(k_b, n_b)
    se = math.sqrt(1 / (k_a + 0.5) - 1 / (n_a + 1) + 1 / (k_b + 0.5) - 1 / (n_b + 1))
    z = float(sps.norm.ppf((1 + level) / 2))
    return ratio, ratio * math.exp(-z * se), ratio * math.exp(z * se)


def compare(
    estimates: list[Estimate],
    candidate: str,
    baseline: str,
    *,
    alpha: float = 0.1,
    correction: str = "none",
) -> list[Comparison]:
    """Candidate vs baseline on every grader both were graded with (Fisher exact tests)."""
    by = {(e.model, e.grader_hash): e for e in estimates}
    pairs = [
        (by[(candidate, gh)], by[(baseline, gh)])
        for (model, gh) in sorted(by)
        if model == candidate and (baseline, gh) in by
    ]
    tests = fisher_compare_many(
        [(a.k, a.n, b.k, b.n) for a, b in pairs],
        alpha=alpha,
        correction="bh" if correction == "bh" else "none",
    )
    out: list[Comparison] = []
    for (a, b), t in zip(pairs, tests, strict=True):
        ratio, lo, hi = rate_ratio_interval(a.k, a.n, b.k, b.n)
        out.append(
            Comparison(
                category=a.category,
                grader=a.grader,
                model_a=candidate,
                model_b=baseline,
                k_a=a.k,
                n_a=a.n,
                k_b=b.k,
                n_b=b.n,
                ratio=ratio,
                ratio_ci_low=lo,
                ratio_ci_high=hi,
                rel_change=ratio - 1,
                fisher_p=t.p_value,
                p_adjusted=t.p_adjusted,
                significant=t.significant,
            )
        )
    return out
