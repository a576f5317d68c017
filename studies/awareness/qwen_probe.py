"""Cache Qwen2.5-Coder-0.5B features of the detector corpus's first user turns (Session 11).

For each training item's first user turn (cut to ``CHARS`` characters to bound the CPU cost),
two things the candidate model itself computes: its mean-pooled last-layer embedding (a probe
on "does the model itself see a test") and the mean / spread of its per-token negative
log-likelihood (how predictable the text is to a language model: simulated users and
machine-written prompt sets should read as more predictable than people typing).

Items are visited round-robin over sources, so a run stopped early leaves a balanced subsample.
Vectors go to ``~/.cache/deploysim/awareness-qwen05-probe.npz`` by text hash, saved as it goes;
rerunning resumes. Run with ``nice -n 15``; one thread (the machine is shared)::

    nice -n 15 .venv/bin/python studies/awareness/qwen_probe.py
"""

from __future__ import annotations

import itertools
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from deploysim.awareness_corpus import load_corpus, text_key
from deploysim.models.local_weights import LOCAL_MODELS, ensure_model_file

CHARS = 256
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
OUT = CACHE / "deploysim" / "awareness-qwen05-probe.npz"


def _save(found: dict[str, np.ndarray]) -> None:
    keys = sorted(found)
    tmp = OUT.with_suffix(".tmp.npz")
    np.savez(tmp, keys=np.array(keys), vectors=np.stack([found[k] for k in keys]))
    tmp.replace(OUT)


def main() -> None:
    import llama_cpp
    from llama_cpp import LLAMA_POOLING_TYPE_MEAN, Llama

    path = str(ensure_model_file(LOCAL_MODELS["qwen2.5-coder-0.5b"]))
    items, _ = load_corpus()
    queues: dict[str, list[str]] = defaultdict(list)
    for it in items:
        queues[it.source].append(it.turns[0][:CHARS])
    order = [t for row in itertools.zip_longest(*queues.values()) for t in row if t]
    found: dict[str, np.ndarray] = {}
    if OUT.is_file():
        with np.load(OUT) as f:
            found = dict(zip(f["keys"].tolist(), f["vectors"], strict=True))
    # One context does both: with embeddings on and mean pooling, llama.cpp still returns every
    # position's logits when asked (checked against a plain context: identical), so each text
    # is evaluated once.
    model = Llama(
        model_path=path,
        n_ctx=512,
        n_threads=1,
        n_threads_batch=1,
        embedding=True,
        pooling_type=LLAMA_POOLING_TYPE_MEAN,
        logits_all=True,
        verbose=False,
    )
    done = 0
    for text in order:
        key = text_key([text])
        if key in found:
            continue
        toks = model.tokenize(text.encode(), add_bos=False)
        model.reset()  # type: ignore[no-untyped-call]
        model.eval(toks)
        pooled = llama_cpp.llama_get_embeddings_seq(model.ctx, 0)
        vec = np.ctypeslib.as_array(pooled, shape=(model.n_embd(),)).astype(np.float64)
        logits = np.asarray(model.scores[: len(toks) - 1], dtype=np.float64)
        top = logits.max(axis=1, keepdims=True)
        logz = (top + np.log(np.exp(logits - top).sum(axis=1, keepdims=True)))[:, 0]
        nll = logz - logits[np.arange(len(toks) - 1), toks[1:]]
        stats = [nll.mean(), nll.std(), np.median(nll), len(toks)] if len(nll) else [0, 0, 0, 1]
        found[key] = np.concatenate([vec, np.asarray(stats, dtype=np.float64)])
        done += 1
        if done % 20 == 0:
            _save(found)
            print(done, len(found), flush=True)
    _save(found)


if __name__ == "__main__":
    main()
