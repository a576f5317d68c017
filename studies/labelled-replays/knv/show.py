"""Print replies for reading, in batches (every work/replies*.jsonl, in file order):
    python show.py work/prompts.jsonl work/replies.jsonl START N
Shows the replies not yet in labels.tsv: the prompt and the whole reply (at most 160 tokens),
never a grader score.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(prompts: Path, replies: Path, start: int, n: int) -> None:
    text = {r["key"]: r for r in map(json.loads, prompts.read_text().splitlines())}
    labels = Path(__file__).parent / "labels.tsv"
    read = {tuple(line.split("\t")[:2]) for line in labels.read_text().splitlines()}
    rows = [
        json.loads(line)
        for path in sorted(replies.parent.glob("replies*.jsonl"))  # every generator's output
        for line in path.read_text().splitlines()
    ]
    rows = [r for r in rows if (r["key"], r["model"]) not in read]  # the ones not yet read
    for i, r in enumerate(rows[start : start + n], start):
        p = text[r["key"]]
        print(f"=== #{i} {r['model'].split('/')[1]} {r['key']} [{p['category']}]")
        print("PROMPT:", p["prompt"][:300])
        print("REPLY:", r["text"])


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
