"""Session 11 diagnostic: do evaluation sets repeat themselves more than real traffic does?

For each training source of the embedded detector, 20 seeded draws of 30 of its items; for each
item the cosine similarity of its nearest MiniLM neighbour among the other 29; the mean per
source. Equal group sizes, because a bigger source has closer neighbours by chance alone.

    nice -n 10 .venv/bin/python studies/awareness/redundancy.py
"""

from __future__ import annotations

import numpy as np

from deploysim import awareness_detector as emb
from deploysim.awareness_corpus import load_corpus

GROUP, DRAWS = 30, 20


def main() -> None:
    items, _ = load_corpus(per_source=emb.PER_SOURCE, seed=emb.SEED)
    x = emb.embed_views([it.turns for it in items], cache_path=emb.default_cache())
    src = np.array([it.source for it in items])
    rng = np.random.default_rng(emb.SEED)
    for name in dict.fromkeys(src.tolist()):
        idx = np.flatnonzero(src == name)
        nearest = []
        for _ in range(DRAWS):
            group = rng.choice(idx, size=min(GROUP, len(idx)), replace=False)
            sim = x[group] @ x[group].T
            np.fill_diagonal(sim, -1.0)
            nearest.append(float(sim.max(axis=1).mean()))
        label = "eval" if items[idx[0]].label else "real"
        print(f"{name:20} {label}  n={len(idx):4}  nearest-neighbour cosine {np.mean(nearest):.3f}")


if __name__ == "__main__":
    main()
