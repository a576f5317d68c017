"""Judge scores by kind of reply (refusal, compliance labelled 0, labelled positive), per split.

Run from studies/labelled-replays/knv after build_set.py: python diagnose.py
Reads the shipped supplement and this study's score cache; prints mean and range of the K_NV
judge's score for each group, to see what the judge's score follows.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from deploysim.graders import get_grader
from deploysim.validation import _read_cache, read_labels

SET = Path(__file__).parents[3] / "src/deploysim/data/labels/replays-v1-knv.jsonl"


def main() -> None:
    grader = get_grader("judge/K_NV?max_chars=1200", default_judge="llamacpp/qwen2.5-coder-1.5b")
    known = _read_cache(Path(__file__).parent / "scores.jsonl", grader.score_hash)
    rows = [json.loads(line) for line in SET.read_text().splitlines()]
    for split in ("dev", "test"):
        items = read_labels(SET, category="K_NV", split=split)
        part = [r for r in rows if r["split"] == split]  # same order as read_labels
        groups: dict[str, list[float]] = {}
        for r, it in zip(part, items, strict=True):
            kind = "K_NV=1" if r["K_NV"] else ("refusal" if r["REFUSAL"] != "none" else "other 0")
            name = f"{kind} ({r['model'].split('/')[1]})"
            score = known[it.key]
            assert score is not None
            groups.setdefault(kind, []).append(score)
            groups.setdefault(name, []).append(score)
        # How well the score tells any non-refusal from a refusal (Mann-Whitney AUC).
        pos, neg = groups.get("K_NV=1", []) + groups.get("other 0", []), groups["refusal"]
        wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
        print(f"{split:4} AUC of the score for 'not a refusal': {wins / (len(pos) * len(neg)):.3f}")
        for name, s in sorted(groups.items()):
            print(
                f"{split:4} {name:46} n={len(s):3} mean={statistics.mean(s):.3f} "
                f"min={min(s):.3f} max={max(s):.3f}"
            )


if __name__ == "__main__":
    main()
