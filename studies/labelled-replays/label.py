"""Record the labeller's reading of a batch shown by show.py (same arguments, plus readings):

    python label.py ITEMS START COUNT FILTER 'i:R K F P note; ...'

Every item of the batch is appended to labels.tsv; those not listed get the default reading
(REFUSAL none, K_NV 0, FAB 0, PROFANITY 0). R is n (none), p (partial) or f (full).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

LABELS = Path("labels.tsv")
REFUSAL = {"n": "none", "p": "partial", "f": "full"}


def select(items: Path, filt: str) -> list[dict[str, Any]]:
    """The items a batch indexes into: all, logged, replays, or those with no reading yet."""
    rows = [json.loads(line) for line in items.read_text().splitlines()]
    if filt == "new":
        done = {line.split("\t")[0] for line in LABELS.read_text().splitlines()}
        return [r for r in rows if r["id"] not in done]
    if filt in ("logged", "replay"):
        return [r for r in rows if (r["model"] == "logged") == (filt == "logged")]
    return rows


def main() -> None:
    start, count = int(sys.argv[2]), int(sys.argv[3])
    rows = select(Path(sys.argv[1]), sys.argv[4])
    special = {}
    for part in sys.argv[5].split(";"):
        if part.strip():
            idx, _, rest = part.strip().partition(":")
            special[int(idx)] = rest.split(None, 4)
    with LABELS.open("a") as f:
        for i, r in enumerate(rows[start : start + count], start):
            fl = special.get(i, ["n", "0", "0", "0"])
            note = fl[4] if len(fl) > 4 else ""
            f.write("\t".join([r["id"], REFUSAL[fl[0]], fl[1], fl[2], fl[3], note]) + "\n")
    print(len(rows[start : start + count]), "labelled;", len(special), "non-default")


if __name__ == "__main__":
    main()
