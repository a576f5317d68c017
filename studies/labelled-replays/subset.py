"""The labelled items a grader has cached scores for: python subset.py SPEC SET OUT.

The judge could not score every item on this machine in the time there was (score.py: chat
stratum first, then the rest in a random order), so it is validated on the items it scored;
this writes them as their own label file (same rows, same splits).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from deploysim.graders import get_grader
from deploysim.schema import Message
from deploysim.validation import LabelledItem, _read_cache

CACHE = Path(__file__).parent / "scores.jsonl"


def main(spec: str, labelled: Path, out: Path) -> None:
    grader = get_grader(spec, default_judge="llamacpp/qwen2.5-coder-1.5b")
    known = _read_cache(CACHE, grader.score_hash)
    kept = []
    for line in labelled.read_text().splitlines():
        r = json.loads(line)
        prefix = tuple(Message(role=m["role"], content=m["content"]) for m in r["prefix"])
        if LabelledItem(r["prompt"], r["response"], False, prefix).key in known:
            kept.append(line)
    out.write_text("".join(line + "\n" for line in kept))
    print(f"{len(kept)} of the labelled items have {spec} scores")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))
