"""Score the K_NV supplement's replies with the demo's K_NV judge, into this study's own cache.

Run from studies/labelled-replays/knv (one process, nice -n 5, taskset -c 1) as replies arrive:
    python score.py work/prompts.jsonl work/replies.jsonl   (reads every work/replies*.jsonl)
The cache (``scores.jsonl`` here, not the parent study's, which another process appends to) is
the one ``deploysim graders validate --cache`` reads, keyed by the grader's score hash and the
item's key (what the grader sees: the prompt as one user turn, then the reply), so validation
and calibration never re-grade. Labels are not read here. Stops when ``work/stop`` exists and
every reply has a score.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from deploysim.graders import get_grader
from deploysim.schema import Message
from deploysim.validation import LabelledItem, _read_cache, score_items

SPEC = "judge/K_NV?max_chars=1200"
# The judge spec is part of the grader hash, so no n_threads option: pin one CPU instead
# (taskset -c 1), which llama.cpp reads as its thread count.
JUDGE = "llamacpp/qwen2.5-coder-1.5b"
CACHE = Path(__file__).parent / "scores.jsonl"


def items(prompts: Path, replies: Path) -> list[LabelledItem]:
    """Every reply as the labelled set's reader will build it (prompt, reply, one user turn)."""
    text = {r["key"]: r["prompt"] for r in map(json.loads, prompts.read_text().splitlines()) if r}
    out = []
    for path in sorted(replies.parent.glob("replies*.jsonl")):  # every generator's output
        for line in path.read_text().splitlines():
            r = json.loads(line)
            prompt = text[r["key"]]
            user = (Message(role="user", content=prompt),)
            out.append(LabelledItem(prompt, r["text"], False, user))
    return out


def main(prompts: Path, replies: Path) -> None:
    grader = get_grader(SPEC, default_judge=JUDGE)
    start, done = time.time(), 0
    while True:
        known = _read_cache(CACHE, grader.score_hash)
        todo = [it for it in items(prompts, replies) if it.key not in known][:3]
        if not todo:
            if (replies.parent / "stop").exists():
                break
            time.sleep(30)
            continue
        score_items(grader, todo, concurrency=1, cache=CACHE)
        done += len(todo)
        print(f"{done} scored, {time.time() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
