"""Merge ``benchmarks/privacy.py --judge-flips`` files of overlapping slices into one.

Session 11 judged the held-out slice (records 312-611) in several processes at once to finish
in time on a shared machine: one over the whole slice (``--judge-flips-offset 312
--judge-flips 300``) and others over parts of it (offsets 462, 537, 432, 595 and 428), each started
where the first had not yet come. Conversation numbers count from each slice's start, so rows
are matched by ShareGPT id, and a row of another file replaces a still pending row of the first
only when both transcripts hash the same (the same de-identification of the same reply).

    .venv/bin/python studies/privacy-public/merge_flips.py OUT FIRST OTHER...
    .venv/bin/python benchmarks/privacy.py --skip-messages --judge-flips-table \\
        --judge-flips-out OUT
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def last_rows(path: Path) -> dict[str, dict[str, Any]]:
    """The last row of each conversation, by ShareGPT id (the last line of one wins)."""
    rows: dict[str, dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        rows[row["id"]] = row
    return rows


def merge(first: Path, *others: Path) -> list[dict[str, Any]]:
    """The first file's rows, pending ones completed from the other files."""
    extra: dict[str, dict[str, Any]] = {}
    for path in others:
        for key, row in last_rows(path).items():
            if not row.get("pending"):
                extra[key] = row
    out = []
    for key, row in last_rows(first).items():
        other = extra.get(key)
        if row.get("pending") and other is not None and not other.get("pending"):
            if (other["raw_sha"], other["deid_sha"], other["graders"]) != (
                row["raw_sha"],
                row["deid_sha"],
                row["graders"],
            ):
                raise SystemExit(f"{key}: the two files judged different transcripts")
            row = {**other, "conversation": row["conversation"]}
        out.append(row)
    return out


def main() -> None:
    """Write the merged rows, one JSON line each, and say how many are still pending."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("first", type=Path)
    parser.add_argument("others", type=Path, nargs="+")
    args = parser.parse_args()
    rows = merge(args.first, *args.others)
    args.out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    pending = sum(bool(r.get("pending")) for r in rows)
    print(f"{len(rows)} conversations, {pending} still pending -> {args.out}")


if __name__ == "__main__":
    main()
