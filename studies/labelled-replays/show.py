"""Print items for the labeller: python show.py ITEMS START COUNT [logged|replay|new].

``new``: the items with no reading in labels.tsv yet (label.py takes the same filter, so a
batch is shown and recorded with the same indices).
"""

from __future__ import annotations

import sys
from pathlib import Path

from label import select


def main() -> None:
    start, count = int(sys.argv[2]), int(sys.argv[3])
    rows = select(Path(sys.argv[1]), sys.argv[4] if len(sys.argv) > 4 else "all")
    for i, r in enumerate(rows[start : start + count], start):
        prompt = r["prompt"].replace("\n", " ")
        resp = r["response"]
        more = f" [+{len(resp) - 900} chars]" if len(resp) > 900 else ""
        print(f"### {i} {r['id']} {r['source']} {r['model']}")
        print(f"U: {prompt[:400]}{'...' if len(prompt) > 400 else ''}")
        print(f"A: {resp[:900]}{more}")


if __name__ == "__main__":
    main()
