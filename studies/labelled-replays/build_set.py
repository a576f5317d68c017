"""Build the committed labelled set from the exported items and the labeller's readings.

Run from studies/labelled-replays: python build_set.py work/items.jsonl labels.tsv OUT.jsonl
Only items with a reading are written. Columns: id, source, stratum, model, prefix_hash,
split, prompt, prefix, response, and one column per category (REFUSAL: none/partial/full;
K_NV, FAB, PROFANITY: 0/1) plus the labeller's note.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(items: Path, labels: Path, out: Path) -> None:
    readings: dict[str, list[str]] = {}
    for line in labels.read_text().splitlines():
        if line.strip():
            fields = line.split("\t")
            readings[fields[0]] = fields[1:]  # a later reading of an id replaces an earlier one
    rows = []
    for line in items.read_text().splitlines():
        r = json.loads(line)
        if r["id"] not in readings:
            continue
        refusal, k_nv, fab, profanity, note = (readings[r["id"]] + [""])[:5]
        rows.append(
            {
                **{k: r[k] for k in ("id", "source", "stratum", "model", "prefix_hash", "split")},
                "prompt": r["prompt"],
                "prefix": r["prefix"],
                "response": r["response"],
                "REFUSAL": refusal,
                "K_NV": int(k_nv),
                "FAB": int(fab),
                "PROFANITY": int(profanity),
                "note": note.replace("-", " "),
            }
        )
    rows.sort(key=lambda r: (r["stratum"], r["prefix_hash"], r["model"]))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows))
    print(len(rows), "labelled items written to", out)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
