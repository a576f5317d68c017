"""Select the labelled-replay prefixes by a fixed rule (docs/design/labelled-replays.md).

Run from studies/labelled-replays: python choose_prefixes.py work/replays.db
It draws two pools with deploysim's own sampler and derives three replay samples from them:

- ``lab-sg-uniform``: 50 ShareGPT prefixes, uniform (the demo's traffic);
- ``lab-sg-enriched``: up to 60 more ShareGPT prefixes whose *logged* reply opens (first 300
  characters) with refusal-like or disclaimer language (REFUSAL_HINT below): real refusals and
  the hard negatives that look like them ("As an AI language model, I don't have opinions,
  but ...");
- ``lab-chat``: HH-RLHF red-team and OpenAssistant prefixes (up to 80), which provoke refusals
  and harmful compliance from the local models;
- ``lab-sg-logged``: the next 150 ShareGPT prefixes (not in ``lab-sg-enriched``), whose logged
  replies only are labelled (generation on this CPU is too slow to replay them all).

Order within a pool is by SHA-256 of "18:<prefix key>", so the rule is reproducible.
"""

from __future__ import annotations

import hashlib
import re
import sys
import time
from pathlib import Path

from deploysim.prefixes import create_sample, load_prefix
from deploysim.sampling import SamplingSpec
from deploysim.schema import canonical_json
from deploysim.store import Store

REFUSAL_HINT = re.compile(
    r"AI language model|I'?m sorry|I apologi[sz]e|I cannot|I can'?t|I am unable|not able to",
    re.IGNORECASE,
)
BASE = {"mode": "turn", "seed": 18, "max_user_turns": 3, "max_prefix_chars": 1500}


def _order(key: str) -> str:
    return hashlib.sha256(f"18:{key}".encode()).hexdigest()


def _derive(store: Store, name: str, parent: str, rule: str, rows: list[tuple]) -> None:
    if store.db.execute("SELECT 1 FROM samples WHERE name = ?", (name,)).fetchone():
        return
    spec = {"derived_from": parent, "rule": rule}
    cur = store.db.execute(
        "INSERT INTO samples(name, spec, spec_hash, population, size, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (
            name,
            canonical_json(spec),
            hashlib.sha256(canonical_json(spec).encode()).hexdigest(),
            len(rows),
            len(rows),
            time.time(),
        ),
    )
    sid = cur.lastrowid
    store.db.executemany(
        "INSERT INTO prefixes(sample_id, conversation_hash, cut, reference_index, stratum, "
        "inclusion_prob) VALUES (?, ?, ?, ?, ?, 1.0)",
        [(sid, c, cut, ref, name) for c, cut, ref in rows],
    )
    store.db.commit()


def main(db: Path) -> None:
    with Store(db) as store:
        create_sample(
            store, "pool-sharegpt", SamplingSpec(size=5000, formats=("sharegpt",), **BASE)
        )
        create_sample(
            store, "pool-chat", SamplingSpec(size=1000, formats=("hh-rlhf", "oasst"), **BASE)
        )
        pools = {}
        for pool in ("pool-sharegpt", "pool-chat"):
            rows = store.db.execute(
                "SELECT p.id, p.conversation_hash, p.cut, p.reference_index FROM prefixes p "
                "JOIN samples s ON s.id = p.sample_id WHERE s.name = ? "
                "AND p.reference_index IS NOT NULL",
                (pool,),
            ).fetchall()
            pools[pool] = sorted(rows, key=lambda r: _order(f"{r[1]}:{r[2]}"))
        uniform = pools["pool-sharegpt"][:50]
        enriched = []
        for pid, c, cut, ref in pools["pool-sharegpt"][50:]:
            logged = load_prefix(store, pid).continuation
            text = " ".join(m.text for m in logged if m.role == "assistant")[:300]
            if REFUSAL_HINT.search(text):
                enriched.append((pid, c, cut, ref))
        enriched = enriched[:60]
        taken = {r[0] for r in enriched}
        logged_only = [r for r in pools["pool-sharegpt"][50:] if r[0] not in taken][:150]
        chat = pools["pool-chat"][:80]
        _derive(
            store,
            "lab-sg-uniform",
            "pool-sharegpt",
            "first 50 by sha256 order",
            [r[1:] for r in uniform],
        )
        _derive(
            store,
            "lab-sg-enriched",
            "pool-sharegpt",
            f"next, logged reply matches {REFUSAL_HINT.pattern!r} in 300 chars, up to 60",
            [r[1:] for r in enriched],
        )
        _derive(store, "lab-chat", "pool-chat", "first 80 by sha256 order", [r[1:] for r in chat])
        _derive(
            store,
            "lab-sg-logged",
            "pool-sharegpt",
            "next 150 by sha256 order not in lab-sg-enriched (logged replies only)",
            [r[1:] for r in logged_only],
        )
        for name in ("lab-sg-uniform", "lab-sg-enriched", "lab-chat", "lab-sg-logged"):
            n = store.db.execute(
                "SELECT COUNT(*) FROM prefixes p JOIN samples s ON s.id = p.sample_id "
                "WHERE s.name = ?",
                (name,),
            ).fetchone()[0]
            print(name, n)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
