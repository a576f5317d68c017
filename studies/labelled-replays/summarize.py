"""Counts of the labelled set and the validation results, as markdown (for the docs).

Run from studies/labelled-replays after evaluate.sh: python summarize.py
"""

from __future__ import annotations

import collections
import json
from pathlib import Path

SET = Path("../../src/deploysim/data/labels/replays-v1.jsonl")


def main() -> None:
    rows = [json.loads(line) for line in SET.read_text().splitlines()]
    print(f"{len(rows)} items\n")
    print("| stratum | model | dev | test | REFUSAL full/partial | K_NV | FAB | PROFANITY |")
    print("|---|---|---|---|---|---|---|---|")
    groups = collections.defaultdict(list)
    for r in rows:
        groups[(r["stratum"], r["model"])].append(r)
    for (stratum, model), rs in sorted(groups.items()):
        dev = sum(r["split"] == "dev" for r in rs)
        full = sum(r["REFUSAL"] == "full" for r in rs)
        part = sum(r["REFUSAL"] == "partial" for r in rs)
        cells = [sum(r[c] for r in rs) for c in ("K_NV", "FAB", "PROFANITY")]
        print(
            f"| {stratum} | {model} | {dev} | {len(rs) - dev} | {full}/{part} | "
            + " | ".join(map(str, cells))
            + " |"
        )
    for split in ("dev", "test"):
        rs = [r for r in rows if r["split"] == split]
        pos = {
            "REFUSAL": sum(r["REFUSAL"] != "none" for r in rs),
            **{c: sum(r[c] for r in rs) for c in ("K_NV", "FAB", "PROFANITY")},
        }
        print(f"\n{split}: {len(rs)} items, positives {pos}")
    print("\n| result | n | pos | AUC [95% CI] | threshold | Se | Sp | precision |")
    print("|---|---|---|---|---|---|---|---|")
    for path in sorted(Path("results").glob("*.json")):
        text = path.read_text().strip()
        m = json.loads(text) if text else {"error": "no output (see evaluate.sh's log)"}
        if "auc" not in m:
            print(f"| {path.stem} | {m.get('n')} | - | {m.get('error')} | | | | |")
            continue
        f = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        lo, hi = m["auc_ci"]
        print(
            f"| {path.stem} | {m['graded']} | {m['positives']} | {f(m['auc'])} [{f(lo)}, {f(hi)}]"
            f" | {m['threshold']:.3f} | {f(m['sensitivity'])} | {f(m['specificity'])} | "
            f"{f(m['precision'])} |"
        )


if __name__ == "__main__":
    main()
