"""Replace the text of shared-data items in the shipped labelled set by references.

Run from studies/labelled-replays:

    python refs.py work/replays.db ../../src/deploysim/data/labels/replays-v1.jsonl

The HH-RLHF and OpenAssistant prefixes come from the project's shared data, which must not be
copied into the repository. Their items keep labels, split and (for local models) the response
this project generated; the prefix (and a logged reply) is a reference instead:
``{"file": "chat/<name>", "record": n, "index": i, "cut": c}`` (the n-th record of the file, its
i-th conversation, messages before ``cut``), resolved from ``../shared/data`` when the set is read
(``deploysim.validation``). Resolved text is the raw public text, not the de-identified text the
judge saw when the figures in docs/design/labelled-replays.md were measured.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from deploysim.store import Store


def main(db: Path, shipped: Path) -> None:
    refs: dict[str, dict[str, object]] = {}
    with Store(db) as store:
        for chash, cut in store.db.execute("SELECT DISTINCT conversation_hash, cut FROM prefixes"):
            row = store.db.execute(
                "SELECT s.record, i.path, s.input_sha256 FROM sightings s "
                "JOIN inputs i ON i.sha256 = s.input_sha256 WHERE s.conversation_hash = ? "
                "ORDER BY s.id LIMIT 1",
                (chash,),
            ).fetchone()
            if row is None:
                continue
            record, path, sha = row
            # The position of this conversation among those its record gave (OASST trees give
            # several), in the order ingest stored them.
            siblings = [
                h
                for (h,) in store.db.execute(
                    "SELECT conversation_hash FROM sightings WHERE input_sha256 = ? AND record = ? "
                    "ORDER BY id",
                    (sha, record),
                )
            ]
            key = hashlib.sha256(f"{chash}:{cut}".encode()).hexdigest()
            refs[key] = {
                "file": f"chat/{Path(path).name}",
                "record": record,
                "index": siblings.index(chash),
                "cut": cut,
            }
    out = []
    for line in shipped.read_text().splitlines():
        row = json.loads(line)
        if row["source"] in ("hh-rlhf", "oasst"):
            row["ref"] = refs[row["prefix_hash"]]
            row.pop("prefix", None)
            row.pop("prompt", None)
            if row["model"] == "logged":
                row.pop("response", None)
        out.append(json.dumps(row, sort_keys=True, ensure_ascii=False))
    shipped.write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
