"""The backtest's table: every pair's scorecard pooled, with bootstrap intervals.

The method's validation (method.md §7) pools categories over releases: directional accuracy on
the categories whose production rate moved by 1.5x or more, and the SME median and 90th
percentile. Those figures are computed here over all pairs' scorecard rows, per method, and each
gets a percentile interval from a cluster bootstrap: in every replicate the conversations of
each sample (Y's window-1 sample, Y's challenging set, X's production census) are drawn again
with replacement, every rate and forecast recomputed from the drawn items, and the figures
recomputed over all pairs. One draw per sample per replicate, shared by every pair that uses the
sample, keeps the pairs' dependence (two candidates forecast from the same Y replay agree).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import scipy.stats as sps

from deploysim.forecast import METHODS
from deploysim.stats import jeffreys_interval, paired_sign_flip_test
from deploysim.store import Store

if TYPE_CHECKING:
    from deploysim.backtest import BacktestSection

MIN_CHANGE = 1.5
Arr = npt.NDArray[np.float64]


def summarise(
    store: Store,
    bt: BacktestSection,
    pairs: list[tuple[str, str]],
    manifests: dict[tuple[str, str], dict[str, Any]],
    cards: dict[tuple[str, str], dict[str, Any]],
    labels: dict[str, str],
    specs: dict[str, str],
) -> dict[str, Any]:
    """The backtest result: releases, pairs, per-row and pooled figures, the noise funnel.

    ``labels`` and ``specs`` give each release's model label and replay spec hash."""
    rows: list[dict[str, Any]] = []
    for y, x in pairs:
        m, card = manifests[(y, x)], cards[(y, x)]
        by = {(f["method"], f["grader_hash"]): f for f in m["forecasts"]}
        for r in card["categories"]:
            gh = r["grader_hash"]
            f = by[(r["method"], gh)]
            ci = jeffreys_interval(r["realised_k"], r["realised_n"])
            rows.append(
                {
                    "deployed": y,
                    "candidate": x,
                    "category": r["category"],
                    "grader": m["graders"][gh]["spec"],
                    "grader_hash": gh,
                    "method": r["method"],
                    "forecast": r["forecast"],
                    "forecast_low": f.get("ci_low"),
                    "forecast_high": f.get("ci_high"),
                    "sim_k": f.get("k"),
                    "sim_n": f.get("n"),
                    "realised_rate": r["realised_rate"],
                    "realised_low": ci.lower,
                    "realised_high": ci.upper,
                    "realised_k": r["realised_k"],
                    "realised_n": r["realised_n"],
                    "baseline_rate": f["baseline_rate"],
                    "moved": r["direction_eligible"],
                    # No-change has no direction: undefined (None), not wrong.
                    "direction_correct": (
                        None if r["method"] == "no_change" else r["direction_correct"]
                    ),
                    "sme": r["sme"],
                    "nll": r["nll"],
                    "in_noise_band": r["in_noise_band"],
                }
            )
    aggregate = {
        meth: pooled(rows, meth) for meth in METHODS if any(r["method"] == meth for r in rows)
    }
    if bt.bootstrap:
        intervals = bootstrap(store, specs, pairs, manifests, cards, rows, bt.bootstrap)
        for meth, figures in intervals.items():
            aggregate[meth].update(figures)
    return {
        "hypotheses": pooled_hypotheses(rows, bt.primary, bt.alpha),
        "releases": [
            {
                "name": r.name,
                "model": r.model,
                "system_prompt": r.system_prompt,
                "label": labels[r.name],
            }
            for r in bt.releases
        ],
        "pairs": [
            {
                "deployed": y,
                "candidate": x,
                "forecast": manifests[(y, x)]["content_hash"],
                "registered_at": manifests[(y, x)]["registered_at"],
                "production_graded_from": cards[(y, x)].get("graded_from"),
                "hypotheses": cards[(y, x)].get("hypotheses", {}),
                # Nothing dropped: unscored forecasts, production grades per grader, and the
                # method.md §5.12 split of the sim forecast's error.
                "unscored": cards[(y, x)].get("unscored", []),
                "production": cards[(y, x)].get("production", []),
                "decomposition": cards[(y, x)].get("decomposition", {}),
            }
            for y, x in pairs
        ],
        "rows": rows,
        "aggregate": aggregate,
        "funnel": funnel(rows),
        "bootstrap": {
            "replicates": bt.bootstrap,
            "unit": "conversation",
            "level": 0.95,
            "seed": 0,
        },
        "methods": list(aggregate),
    }


def pooled(rows: Sequence[dict[str, Any]], method: str) -> dict[str, Any]:
    """One method's figures over every pair's rows."""
    mine = [r for r in rows if r["method"] == method]
    eligible = [r for r in mine if r["moved"]]
    correct = sum(1 for r in eligible if r["direction_correct"])
    # No-change forecasts no move: it has no direction, so its accuracy is undefined (not 0%).
    defined = bool(eligible) and method != "no_change"
    smes = np.array([r["sme"] for r in mine], dtype=float)
    return {
        "rows": len(mine),
        "direction_eligible": len(eligible),
        "direction_correct": correct,
        "directional_accuracy": correct / len(eligible) if defined else None,
        "directional_accuracy_ci": None,
        "sme_median": float(np.median(smes)),
        "sme_median_ci": None,
        "sme_p90": float(np.percentile(smes, 90)),
        "sme_p90_ci": None,
        "sme_max": float(smes.max()),
        "nll": float(sum(r["nll"] for r in mine)),
    }


def accuracy_text(a: dict[str, Any]) -> str:
    """A method's directional accuracy as text: "7/8 = 88% [50%, 100%]", "undefined", "-"."""
    if not a["direction_eligible"]:
        return "-"
    if a["directional_accuracy"] is None:
        return f"undefined ({a['direction_eligible']} moved; no direction)"
    ci = a["directional_accuracy_ci"]
    interval = "" if ci is None else f" [{ci[0]:.0%}, {ci[1]:.0%}]"
    return (
        f"{a['direction_correct']}/{a['direction_eligible']} = "
        f"{a['directional_accuracy']:.0%}{interval}"
    )


def pooled_hypotheses(
    rows: Sequence[dict[str, Any]], primary: str, alpha: float
) -> dict[str, dict[str, Any]]:
    """H1 and H2 over every (pair, category): the registered per-pair test, pooled.

    With one or two categories a pair's own test cannot reach alpha 0.1 (the smallest exact p
    is 1/2 or 1/4), so the backtest also pools. The rows share samples (one Y replay serves
    three candidates), so they are not independent and the pooled p-value is indicative.
    """
    out: dict[str, dict[str, Any]] = {}
    for name, baseline in (("H1", "no_change"), ("H2", "challenging_scaled")):
        nll = {
            (r["deployed"], r["candidate"], r["grader_hash"], r["method"]): r["nll"] for r in rows
        }
        keys = sorted(k[:3] for k in nll if k[3] == primary and (*k[:3], baseline) in nll)
        base = {"method": primary, "baseline": baseline, "alpha": alpha, "rows": len(keys)}
        if not keys:
            out[name] = {**base, "outcome": "not tested: no row has both forecasts"}
            continue
        t = paired_sign_flip_test(
            [nll[(*k, primary)] for k in keys], [nll[(*k, baseline)] for k in keys]
        )
        out[name] = {
            **base,
            "mean_nll_difference": t.statistic,
            "p_value": t.p_value,
            "exact": t.exact,
            "outcome": "supported" if t.p_value <= alpha else "not supported",
        }
    return out


def funnel(rows: Sequence[dict[str, Any]], points: int = 30) -> list[dict[str, float]]:
    """The 90% noise funnel around forecast = realised at the rows' typical sizes (§5.9)."""
    sims = [r for r in rows if r["method"] == "sim" and r["sim_n"]]
    if not sims:
        return []
    n_prod = float(np.median([r["realised_n"] for r in sims]))
    n_sim = float(np.median([r["sim_n"] for r in sims]))
    rates = [r["realised_rate"] for r in sims] + [r["forecast"] for r in sims]
    lo, hi = math.log10(min(rates)), math.log10(max(rates))
    if hi - lo < 1.0:
        lo, hi = lo - 0.5, hi + 0.5
    out = []
    for i in range(points):
        rate = 10 ** (lo + (hi - lo) * i / (points - 1))
        band = _band(rate * n_prod, rate * n_sim)
        out.append({"realised": rate, "low": rate / band, "high": min(1.0, rate * band)})
    return out


def _band(k_prod: float, k_sim: float, level: float = 0.90) -> float:
    """:func:`~deploysim.stats.noise_funnel` at expected (fractional) counts: a smooth curve."""
    z = float(sps.norm.ppf((1.0 + level) / 2.0))
    return math.exp(z * math.sqrt(1.0 / (k_prod + 0.5) + 1.0 / (k_sim + 0.5)))


class _Flags:
    """Graded items of one sample, grouped by conversation, for the cluster bootstrap."""

    def __init__(self, store: Store, sample: str, weights_for: _Weights) -> None:
        self.store, self.sample, self.weights = store, sample, weights_for

    def rates(self, spec_hash: str | None, grader_hash: str) -> Arr:
        """Jeffreys rate per replicate of one model's (``None``: the logged) items."""
        if spec_hash is None:
            sql = (
                "SELECT p.conversation_hash, g.flagged FROM grades g JOIN prefixes p ON "
                "g.target = 'reference' AND p.id = g.target_id JOIN samples s ON "
                "s.id = p.sample_id WHERE s.name = ? AND g.grader_hash = ? AND g.status = 'ok'"
            )
            args: tuple[str, ...] = (self.sample, grader_hash)
        else:
            sql = (
                "SELECT p.conversation_hash, g.flagged FROM grades g JOIN replays r ON "
                "g.target = 'replay' AND r.id = g.target_id JOIN prefixes p ON "
                "p.id = r.prefix_id JOIN samples s ON s.id = p.sample_id WHERE s.name = ? "
                "AND r.spec_hash = ? AND g.grader_hash = ? AND g.status = 'ok'"
            )
            args = (self.sample, spec_hash, grader_hash)
        items = self.store.db.execute(sql, args).fetchall()
        w = self.weights.of(self.sample)
        index = self.weights.index[self.sample]
        cols = np.array([index[c] for c, _ in items], dtype=int)
        flags = np.array([1.0 if f else 0.0 for _, f in items])
        k = w[:, cols] @ flags if len(cols) else np.zeros(w.shape[0])
        n = w[:, cols].sum(axis=1) if len(cols) else np.zeros(w.shape[0])
        out: Arr = (k + 0.5) / (n + 1.0)
        return out


class _Weights:
    """Per sample, how often each conversation is drawn in each replicate."""

    def __init__(self, store: Store, replicates: int, seed: int = 0) -> None:
        self.store, self.replicates = store, replicates
        self.rng = np.random.default_rng(seed)
        self.cache: dict[str, Arr] = {}
        self.index: dict[str, dict[str, int]] = {}

    def of(self, sample: str) -> Arr:
        if sample not in self.cache:
            convs = [
                r[0]
                for r in self.store.db.execute(
                    "SELECT DISTINCT p.conversation_hash FROM prefixes p JOIN samples s ON "
                    "s.id = p.sample_id WHERE s.name = ? ORDER BY 1",
                    (sample,),
                )
            ]
            self.index[sample] = {c: i for i, c in enumerate(convs)}
            draws = self.rng.integers(0, len(convs), size=(self.replicates, len(convs)))
            counts = np.zeros((self.replicates, len(convs)))
            for b in range(self.replicates):
                counts[b] = np.bincount(draws[b], minlength=len(convs))
            self.cache[sample] = counts
        return self.cache[sample]


def bootstrap(
    store: Store,
    spec: dict[str, str],
    pairs: list[tuple[str, str]],
    manifests: dict[tuple[str, str], dict[str, Any]],
    cards: dict[tuple[str, str], dict[str, Any]],
    rows: Sequence[dict[str, Any]],
    replicates: int,
) -> dict[str, dict[str, Any]]:
    """Percentile intervals (95%) of each method's pooled figures; see the module docstring."""
    weights = _Weights(store, replicates)
    series: dict[str, list[tuple[Arr, Arr, Arr]]] = {}  # method -> (forecast, realised, prod_y)
    for y, x in pairs:
        m, card = manifests[(y, x)], cards[(y, x)]
        w1 = _Flags(store, f"{y}/w1", weights)
        census = _Flags(store, card["production_sample"], weights)
        chall = m.get("challenging_sample")
        ch = _Flags(store, chall, weights) if chall else None
        methods = {(f["method"], f["grader_hash"]) for f in m["forecasts"]}
        for gh in sorted({g for _, g in methods}):
            if not any(
                r["grader_hash"] == gh and r["candidate"] == x and r["deployed"] == y for r in rows
            ):
                continue
            prod_y, xy = w1.rates(None, gh), w1.rates(spec[x], gh)
            realised = census.rates(None, gh)
            f: dict[str, Arr] = {"sim": xy, "no_change": prod_y}
            if ("bias_corrected", gh) in methods:
                f["bias_corrected"] = np.minimum(prod_y * xy / w1.rates(spec[y], gh), 1.0)
            if ch is not None and ("challenging_raw", gh) in methods:
                cx, cy = ch.rates(spec[x], gh), ch.rates(spec[y], gh)
                f["challenging_raw"] = cx
                f["challenging_scaled"] = np.minimum(prod_y * cx / cy, 1.0)
            for meth, fc in f.items():
                if (meth, gh) in methods:
                    series.setdefault(meth, []).append((fc, realised, prod_y))
    out: dict[str, dict[str, Any]] = {}
    for meth, cols in series.items():
        fc = np.stack([c[0] for c in cols], axis=1)  # replicates x rows
        real = np.stack([c[1] for c in cols], axis=1)
        py = np.stack([c[2] for c in cols], axis=1)
        moved = np.maximum(real / py, py / real) >= MIN_CHANGE * (1.0 - 1e-12)
        right = (np.sign(fc - py) == np.sign(real - py)) & (np.sign(fc - py) != 0)
        eligible = moved.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            acc = np.where(eligible > 0, (moved & right).sum(axis=1) / eligible, np.nan)
        smes = np.maximum(fc / real, real / fc)
        out[meth] = {
            "directional_accuracy_ci": None if meth == "no_change" else _interval(acc),
            "sme_median_ci": _interval(np.median(smes, axis=1)),
            "sme_p90_ci": _interval(np.percentile(smes, 90, axis=1)),
        }
    return out


def _interval(values: Arr) -> list[float] | None:
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return None
    return [float(np.percentile(finite, 2.5)), float(np.percentile(finite, 97.5))]
