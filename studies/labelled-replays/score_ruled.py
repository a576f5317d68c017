"""Score, with the judge alone, the items the refusal rule flags (which the combined grader
``judge/REFUSAL?rule=refusal`` settles without the judge). With the combined grader's scores of
every other item (the same judge call on the same prompt), this gives the judge-alone scores
on the dev split for the rule/judge comparison in compare.py.

Run from studies/labelled-replays: python score_ruled.py work/items.jsonl
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from deploysim.graders import get_grader
from deploysim.schema import Message
from deploysim.validation import LabelledItem, score_items

CACHE = Path(__file__).parent / "scores.jsonl"


def main(items_path: Path) -> None:
    rule = get_grader("rule/refusal")
    judge = get_grader("judge/REFUSAL?max_chars=1200", default_judge="llamacpp/qwen2.5-coder-1.5b")
    items = []
    for line in items_path.read_text().splitlines():
        r = json.loads(line)
        prefix = tuple(Message(role=m["role"], content=m["content"]) for m in r["prefix"])
        it = LabelledItem(r["prompt"], r["response"], False, prefix)
        if asyncio.run(rule.grade(it.grade_item())).flagged:
            items.append(it)
    print(len(items), "items flagged by the rule")
    score_items(judge, items, concurrency=1, cache=CACHE)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
