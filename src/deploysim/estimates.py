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
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import scipy.stats as sps

from deploysim.errors import StatsError
from deploysim.stats import (
    TailRisk,
    fisher_compare_many,
    hajek_prevalence,
    jeffreys_interval,
    jeffreys_rate,
    per_100k,
    rogan_gladen,
    tail_risk,
)
from deploysim.store import Store

LOGGED = "logged"

#: How far a row's grader can be trusted: validated against labels with AUC >= 0.85 on at
#: least 10 positives, validated but weaker ("weak": its flags rank poorly, or too few labelled
#: positives to say: with 3, an AUC of 1.0 happens by chance too often), or never validated.
Validation = Literal["validated", "weak", "unvalidated"]
WEAK_AUC = 0.85
MIN_POSITIVES = 10


@dataclass(frozen=True, slots=True)
class Estimate:
    """The rate of one category for one model.

    ``n`` counts graded turns (draws) and ``prefixes`` the distinct prefixes behind them: with
    several draws per prefix they differ, and the interval counts prefixes and conversations as
    the clusters they are (``effective_n``, ``design_effect``). A row whose turns all failed or
    were all ungradable has ``n = 0`` and no rate: it is shown, not dropped.
    """

    model: str
    category: str
    grader: str
    grader_hash: str
    attempted: int
    failed: int
    ungradable: int
    n: int
    k: int
    prefixes: int
    effective_n: float | None
    design_effect: float | None
    rate: float | None  # Jeffreys-smoothed (k + 1/2) / (n + 1); None when n = 0
    ci_low: float | None
    ci_high: float | None
    per_100k: float | None
    weighted_rate: float | None  # Hajek, when inclusion probabilities differ
    weighted_ci: tuple[float, float] | None
    corrected_rate: float | None  # Rogan-Gladen, when the grader was validated
    corrected_ci: tuple[float, float] | None
    correctable: bool | None
    judge_se: float | None
    judge_sp: float | None
    correction_note: str | None  # why no correction was applied, when a validation exists
    validation: Validation = "unvalidated"
    validation_auc: float | None = None
    validation_positives: int | None = None  # labelled positives behind the AUC

    @property
    def measured(self) -> bool:
        """Whether at least one turn was graded (``rate`` and the interval exist)."""
        return self.n > 0

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
    design_effect_a: float
    design_effect_b: float
    validation: Validation = "unvalidated"  # the grader's standing (see Estimate)

    def to_json(self) -> dict[str, Any]:
        """The comparison as JSON-ready data."""
        return asdict(self)


def _items(store: Store, sample: str | None) -> dict[tuple[str, str], list[tuple[Any, ...]]]:
    """(model label, grader hash) -> rows (status, flagged, inclusion prob, conversation,
    prefix id)."""
    cond, args = "", list[str]()
    if sample:
        cond = " AND p.sample_id = (SELECT id FROM samples WHERE name = ?)"
        args = [sample]
    groups: dict[tuple[str, str], list[tuple[Any, ...]]] = defaultdict(list)
    labels = model_labels(store)
    for spec_hash, grader, status, flagged, prob, conv, prefix in store.db.execute(
        "SELECT r.spec_hash, g.grader_hash, g.status, g.flagged, p.inclusion_prob, "
        "p.conversation_hash, p.id FROM grades g JOIN replays r ON g.target = 'replay' AND "
        f"r.id = g.target_id JOIN prefixes p ON p.id = r.prefix_id WHERE 1 = 1{cond}",
        args,
    ):
        groups[(labels[spec_hash], grader)].append((status, flagged, prob, conv, prefix))
    for grader, status, flagged, prob, conv, prefix in store.db.execute(
        "SELECT g.grader_hash, g.status, g.flagged, p.inclusion_prob, p.conversation_hash, "
        "p.id FROM grades g JOIN prefixes p ON g.target = 'reference' AND p.id = g.target_id "
        f"WHERE 1 = 1{cond}",
        args,
    ):
        groups[(LOGGED, grader)].append((status, flagged, prob, conv, prefix))
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
    """Every model x category rate in the store (optionally for one sample).

    Every model with a replay and every grader with a grade appear: a model whose replays all
    failed gets a row (n = 0) for each grader used on the sample.
    """
    graders = {
        h: (spec, cat, json.loads(definition))
        for h, spec, cat, definition in store.db.execute(
            "SELECT hash, spec, category, definition FROM graders"
        )
    }
    validations = _validations(store)
    failures = _failures(store, sample)
    groups = _items(store, sample)
    used = sorted({gh for _, gh in groups})
    for model in failures:  # all replays failed: nothing was graded, yet the model was tried
        for gh in used:
            groups.setdefault((model, gh), [])
    out: list[Estimate] = []
    for (model, gh), rows in sorted(groups.items()):
        spec, category, definition = graders[gh]
        out.append(
            _estimate(
                model, gh, spec, category, definition, rows, failures.get(model, 0), validations
            )
        )
    return out


def _estimate(
    model: str,
    gh: str,
    spec: str,
    category: str,
    definition: dict[str, Any],
    rows: list[tuple[Any, ...]],
    failed: int,
    validations: dict[str, dict[str, Any]],
) -> Estimate:
    ok = [r for r in rows if r[0] == "ok"]
    n, k = len(ok), sum(1 for r in ok if r[1])
    ungradable = len(rows) - n
    empty = Estimate(
        model=model,
        category=category,
        grader=spec,
        grader_hash=gh,
        attempted=n + ungradable + failed,
        failed=failed,
        ungradable=ungradable,
        n=n,
        k=k,
        prefixes=len({r[4] for r in ok}),
        effective_n=None,
        design_effect=None,
        rate=None,
        ci_low=None,
        ci_high=None,
        per_100k=None,
        weighted_rate=None,
        weighted_ci=None,
        corrected_rate=None,
        corrected_ci=None,
        correctable=None,
        judge_se=None,
        judge_sp=None,
        correction_note=None,
        validation=_status(validations.get(gh)),
        validation_auc=(validations.get(gh) or {}).get("auc"),
        validation_positives=(validations.get(gh) or {}).get("positives"),
    )
    if n == 0:
        return empty
    flags = [bool(r[1]) for r in ok]
    convs, prefixes = [r[3] for r in ok], [r[4] for r in ok]
    if len(set(convs)) == n:  # independent turns: the plain (modified) Jeffreys interval
        interval = jeffreys_interval(k, n)
        ci, n_eff = (interval.lower, interval.upper), float(n)
    else:  # several turns per conversation or draws per prefix: clustered
        h = hajek_prevalence(flags, None, convs, prefixes)
        ci, n_eff = (h.lower, h.upper), h.effective_n
    weighted = weighted_ci = None
    if len({r[2] for r in ok}) > 1:
        hw = hajek_prevalence(flags, [r[2] for r in ok], convs, prefixes)
        weighted, weighted_ci = hw.estimate, (hw.lower, hw.upper)
    rate = jeffreys_rate(k, n)
    corrected = corrected_ci = correctable = se = sp = note = None
    if gh in validations:
        v = validations[gh]
        threshold = float(definition.get("threshold", 0.5))
        if abs(float(v.get("threshold", 0.5)) - threshold) > 1e-9:
            note = (
                f"not corrected: validated at threshold {v.get('threshold')}, graded at "
                f"{threshold}; run `deploysim graders validate` at the grader's threshold"
            )
        else:
            se, sp = v["sensitivity"], v["specificity"]
            # Clustered samples: the observed rate's information is that of n_eff turns.
            n_rg = max(1, round(n_eff))
            rg = rogan_gladen(k / n, se, sp, n=n_rg, n_pos=v["positives"], n_neg=v["negatives"])
            corrected, correctable = rg.estimate, rg.correctable
            corrected_ci = (rg.interval.lower, rg.interval.upper) if rg.interval else None
            if not rg.correctable:
                note = "not corrected: Se + Sp - 1 < 0.05, the grader barely beats chance"
    return replace(
        empty,
        effective_n=n_eff,
        design_effect=n / n_eff,
        rate=rate,
        ci_low=ci[0],
        ci_high=ci[1],
        per_100k=per_100k(rate),
        weighted_rate=weighted,
        weighted_ci=weighted_ci,
        corrected_rate=corrected,
        corrected_ci=corrected_ci,
        correctable=correctable,
        judge_se=se,
        judge_sp=sp,
        correction_note=note,
    )


def validation_note(auc: float | None, positives: int | None) -> str:
    """`` (AUC 0.94, 11 positives)``: what a grader's standing rests on ("" when unvalidated)."""
    if auc is None:
        return ""
    return f" (AUC {auc:.2f}" + (f", {positives} positives)" if positives is not None else ")")


def _status(metrics: dict[str, Any] | None) -> Validation:
    if metrics is None or metrics.get("auc") is None:
        return "unvalidated"
    enough = int(metrics.get("positives") or 0) >= MIN_POSITIVES
    return "validated" if enough and float(metrics["auc"]) >= WEAK_AUC else "weak"


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
    """Candidate vs baseline on every grader both were graded with (Fisher exact tests).

    With clustered turns (several per conversation, several draws per prefix) the test and the
    ratio's interval use counts deflated by each side's design effect.
    """
    by = {(e.model, e.grader_hash): e for e in estimates if e.measured}
    pairs = [
        (by[(candidate, gh)], by[(baseline, gh)])
        for (model, gh) in sorted(by)
        if model == candidate and (baseline, gh) in by
    ]
    tables = [(*_effective(a), *_effective(b)) for a, b in pairs]
    tests = fisher_compare_many(
        tables, alpha=alpha, correction="bh" if correction == "bh" else "none"
    )
    out: list[Comparison] = []
    for (a, b), t, counts in zip(pairs, tests, tables, strict=True):
        ratio, lo, hi = rate_ratio_interval(*counts)
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
                design_effect_a=a.design_effect or 1.0,
                design_effect_b=b.design_effect or 1.0,
                validation=a.validation,
            )
        )
    return out


def _effective(e: Estimate) -> tuple[int, int]:
    """(k, n) deflated by the design effect (Rao & Scott 1981): clustered draws count as the
    independent turns they are worth, so a Fisher test does not take correlated draws of one
    prefix for independent evidence."""
    d = e.design_effect or 1.0
    if d <= 1.0 + 1e-9:
        return e.k, e.n
    n = max(1, round(e.n / d))
    return min(n, round(e.k / d)), n


@dataclass(frozen=True, slots=True)
class TailEstimate:
    """The worst-query risk of one category for one model (method.md §5.14), or why not.

    ``risk`` is the probability of the behaviour on the worst of ``queries`` queries, from a
    Gumbel fit to the top per-prefix rates; None with ``refused`` saying why.
    """

    model: str
    category: str
    grader: str
    grader_hash: str
    prefixes: int
    draws: int
    flagged_prefixes: int
    queries: float
    risk: float | None
    ci_low: float | None
    ci_high: float | None
    r_squared: float | None
    refused: str | None

    def to_json(self) -> dict[str, Any]:
        """The tail estimate as JSON-ready data."""
        return asdict(self)


def tail_estimates(
    store: Store, *, sample: str | None = None, queries: float = 1e6, top_k: int = 10
) -> list[TailEstimate]:
    """Worst-query risk per model x category, from several graded draws per prefix."""
    graders = {
        h: (spec, cat)
        for h, spec, cat in store.db.execute("SELECT hash, spec, category FROM graders")
    }
    out: list[TailEstimate] = []
    for (model, gh), rows in sorted(_items(store, sample).items()):
        flagged: dict[int, int] = defaultdict(int)
        draws: dict[int, int] = defaultdict(int)
        for status, flag, _prob, _conv, prefix in rows:
            if status == "ok":
                draws[prefix] += 1
                flagged[prefix] += int(bool(flag))
        counts = [flagged[p] for p in draws]
        risk: TailRisk | None = None
        refused: str | None = None
        if not draws:
            refused = "nothing graded"
        elif max(draws.values()) < 2:
            refused = "one draw per prefix: replay with --samples-per-prefix (20 or more)"
        else:
            try:
                risk = tail_risk(counts, list(draws.values()), queries, top_k=top_k)
            except StatsError as e:
                refused = str(e)
        out.append(
            TailEstimate(
                model=model,
                category=graders[gh][1],
                grader=graders[gh][0],
                grader_hash=gh,
                prefixes=len(draws),
                draws=sum(draws.values()),
                flagged_prefixes=sum(1 for c in counts if c),
                queries=queries,
                risk=None if risk is None else risk.risk,
                ci_low=None if risk is None else risk.lower,
                ci_high=None if risk is None else risk.upper,
                r_squared=None if risk is None else risk.r_squared,
                refused=refused,
            )
        )
    return out
