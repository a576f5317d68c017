"""The labelled set with the texts the judge saw: python judged_set.py work/items.jsonl OUT.

The shipped set (``replays-v1.jsonl``) refers to HH-RLHF/OASST prefixes in ``../shared/data``,
which resolve to the raw public text; the replays were made, and the judges scored, on the
de-identified prefixes in the study's store (``work/items.jsonl``, exported from it). For those
items the two texts differ, so the cached scores would not match: this writes the shipped labels
and splits with the exported texts (same ids), for validating from the score cache. The output
holds text from the shared data, so it stays in ``work/`` (not committed).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SHIPPED = Path(__file__).parents[2] / "src/deploysim/data/labels/replays-v1.jsonl"


def main(items: Path, out: Path) -> None:
    texts = {r["id"]: r for r in map(json.loads, items.read_text().splitlines())}
    rows = []
    for line in SHIPPED.read_text().splitlines():
        r = json.loads(line)
        t = texts[r["id"]]
        r.pop("ref", None)
        r.update(prefix=t["prefix"], prompt=t["prompt"], response=t["response"])
        rows.append(json.dumps(r, sort_keys=True))
    out.write_text("".join(x + "\n" for x in rows))
    print(f"{len(rows)} labelled items written to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
