"""What reaches the store: tau-bench conversations de-identified whole, as ingest does.

`deploysim privacy eval` scores each message alone. Ingest de-identifies a conversation at once,
and a value found in one message is swept from the others (a booking code the agent named with
its cue and the customer repeats bare). This script reads the shared trajectories as ingest
does (``deploysim.ingest.tau_bench``), de-identifies each conversation, and counts the records'
values (``build.py``'s labels) that a user or assistant message held before and still holds
after, per part (task parity) and type.

    .venv/bin/python studies/privacy-tau/leaks.py [--out studies/privacy-tau/leaks-deid11.json]
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build import DATA, _records

from deploysim.ingest.tau_bench import convert
from deploysim.privacy import DEID_VERSION, Deidentifier
from deploysim.schema import Conversation


def _said(conv: Conversation) -> str:
    """The user's and assistant's texts of a conversation, one per line."""
    return "\n".join(
        m.content
        for m in conv.messages
        if m.role in ("user", "assistant") and isinstance(m.content, str)
    )


def _holds(text: str, value: str) -> bool:
    return re.search(rf"(?<![\w@.]){re.escape(value)}(?![\w@]|\.\w)", text) is not None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    runs = json.loads(args.data.read_text(encoding="utf-8"))
    convs = [convert(run)[0].conversation for run in runs]
    results = Deidentifier(key=b"\0" * 32).deidentify_many(convs)
    counts: dict[str, collections.Counter[str]] = {
        p: collections.Counter() for p in ("dev", "test")
    }
    for run, before, result in zip(runs, convs, results, strict=True):
        part = "test" if int(run["task_id"]) % 2 else "dev"
        after = _said(result.conversation) if result.conversation is not None else ""
        said = _said(before)
        for etype, value in set(_records(run["traj"])):
            if _holds(said, value):
                counts[part][f"{etype} said"] += 1
                counts[part][f"{etype} leaked"] += _holds(after, value)
    out: dict[str, Any] = {"deid_version": DEID_VERSION, "conversations": len(convs)}
    for part, c in counts.items():
        kinds = sorted({k.rsplit(" ", 1)[0] for k in c})
        out[part] = {
            k: {"values said": c[f"{k} said"], "still there": c[f"{k} leaked"]} for k in kinds
        }
        said, leaked = sum(c[f"{k} said"] for k in kinds), sum(c[f"{k} leaked"] for k in kinds)
        out[part]["all"] = {"values said": said, "still there": leaked}
    text = json.dumps(out, indent=1)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
