"""REFUSAL on the dev split: the rule alone, the judge alone, and the rule settling what it flags.

Run from studies/labelled-replays after subset.py: python compare.py results/judged-refusal.jsonl
Judge-alone scores are the combined grader's for items the rule does not flag (the same judge
call on the same prompt) and score_ruled.py's for those it flags. Dev only: the choice between
variants is made here, before the test split is read.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from deploysim.graders import get_grader
from deploysim.validation import _read_cache, measure, read_labels

J = "llamacpp/qwen2.5-coder-1.5b"
CACHE = Path(__file__).parent / "scores.jsonl"
MAP = {"full": True, "partial": True, "none": False}


def main(subset: Path) -> None:
    items = read_labels(subset, category="REFUSAL", label_map=MAP, split="dev")
    combo = get_grader("judge/REFUSAL?rule=refusal&max_chars=1200", default_judge=J)
    alone = get_grader("judge/REFUSAL?max_chars=1200", default_judge=J)
    rule = get_grader("rule/refusal")
    c, a, r = (_read_cache(CACHE, g.score_hash) for g in (combo, alone, rule))
    rows = {
        "rule/refusal": [r.get(it.key) for it in items],
        "judge alone": [
            a.get(it.key, c.get(it.key)) if r.get(it.key) else c.get(it.key) for it in items
        ],
        "judge + rule": [c.get(it.key) for it in items],
    }
    out = {}
    for name, scores in rows.items():
        m = measure(combo, items, scores, threshold=0.5)
        out[name] = {
            k: m.get(k)
            for k in (
                "graded",
                "positives",
                "auc",
                "auc_ci",
                "youden_threshold",
                "sensitivity",
                "specificity",
                "precision",
            )
        }
        print(name, json.dumps(out[name]))
    Path("results/compare-dev.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
