"""Scores of ``judge/REFUSAL?rule=refusal...`` for every item, from the rule and the judge alone.

The combined grader scores 1.0 where the refusal rule flags and asks the judge otherwise, with
the same prompt as ``judge/REFUSAL?max_chars=1200`` (logprob scoring is deterministic for a
given prompt). So once every item has a judge-alone score (alone.py, score.py), a changed rule
needs no new judge calls: this writes the combined grader's scores into the cache. ``--check N``
grades N random items with the real combined grader (the judge model included) and compares.

Run from studies/labelled-replays: python combine.py SPEC [--check N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
from pathlib import Path

from score import _items as _score_items

from deploysim.graders import get_grader
from deploysim.validation import LabelledItem, _read_cache

J = "llamacpp/qwen2.5-coder-1.5b"
CACHE = Path(__file__).parent / "scores.jsonl"
ITEMS = Path(__file__).parent / "work/items.jsonl"


def _items() -> list[LabelledItem]:
    return _score_items(ITEMS, "0/1")  # every exported item, in score.py's order


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("spec")
    parser.add_argument("--check", type=int, default=0)
    args = parser.parse_args()
    combo = get_grader(args.spec, default_judge=J)
    alone_spec = args.spec.replace("rule=refusal&", "").replace("&rule=refusal", "")
    alone = _read_cache(CACHE, get_grader(alone_spec, default_judge=J).score_hash)
    rule = get_grader("rule/refusal")
    have = _read_cache(CACHE, combo.score_hash)
    rows, missing = {}, 0
    for it in _items():
        if it.key in have or it.key in rows:
            continue
        if asyncio.run(rule.grade(it.grade_item())).flagged:
            rows[it.key] = 1.0
        elif it.key in alone:
            rows[it.key] = alone[it.key]
        else:
            missing += 1
    with CACHE.open("a", encoding="utf-8") as f:
        f.writelines(
            json.dumps({"grader": combo.score_hash, "item": k, "score": v}) + "\n"
            for k, v in rows.items()
        )
    print(f"{len(rows)} scores written, {len(have)} were there, {missing} items lack a judge score")
    if args.check:
        scored = {**have, **rows}
        sample = random.Random(0).sample([it for it in _items() if it.key in scored], args.check)
        for it in sample:
            real = asyncio.run(combo.grade(it.grade_item())).score
            print(f"cached {scored[it.key]:.6f} real {real:.6f}")


if __name__ == "__main__":
    main()
