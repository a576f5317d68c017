"""Score the exported items with one grader spec, into the shared score cache.

Run from studies/labelled-replays (pin one CPU: ``taskset -c 1``, see replay.sh):
    python score.py 'judge/REFUSAL' work/items.jsonl [SHARD/SHARDS]
The cache (``scores.jsonl``) is the one ``deploysim graders validate --cache`` reads, keyed by
the grader's score hash and the item's key, so validation and calibration never re-grade.
Labels are not read here: scoring runs while labelling goes on. The item file is re-read after
every few items (replays keep arriving); HH-RLHF/OASST items (``lab-chat``, where the refusals
are) come first, then the rest, each in id order (ids are hashes: a random order), so a pass cut
short by time leaves the whole chat stratum and a random part of the others.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from deploysim.graders import get_grader
from deploysim.schema import Message
from deploysim.validation import LabelledItem, _read_cache, score_items

JUDGE = "llamacpp/qwen2.5-coder-1.5b"
CACHE = Path(__file__).parent / "scores.jsonl"


def _items(items_path: Path, shard: str) -> list[LabelledItem]:
    rows = [json.loads(line) for line in items_path.read_text().splitlines() if line.strip()]
    k, n = (int(x) for x in shard.split("/"))
    rows = sorted(rows, key=lambda r: (r["stratum"] != "lab-chat", r["id"]))[k::n]
    return [
        LabelledItem(
            r["prompt"],
            r["response"],
            False,
            tuple(Message(role=m["role"], content=m["content"]) for m in r["prefix"]),
        )
        for r in rows
    ]


def main(spec: str, items_path: Path, shard: str = "0/1") -> None:
    grader = get_grader(spec, default_judge=JUDGE)
    start, done = time.time(), 0
    while True:
        known = _read_cache(CACHE, grader.score_hash)
        todo = [it for it in _items(items_path, shard) if it.key not in known][:3]
        if not todo:
            if (items_path.parent / "stop").exists():
                break
            time.sleep(30)
            continue
        score_items(grader, todo, concurrency=1, cache=CACHE)
        done += len(todo)
        print(f"{spec} {shard}: {done} scored, {time.time() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), *sys.argv[3:])
