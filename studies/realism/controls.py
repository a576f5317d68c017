"""Positive controls for the realism discriminators on tau-bench, split by task.

The shared tau-bench airline trajectories (tasks 0-24) are ingested into a scratch store and a
sample of turn prefixes is drawn; prefixes of tasks 0-12 are the dev part (the discriminator
was designed on it), tasks 13-24 the test part (run once the design was frozen). Prints one
JSON object per part with each kind's catch rate (undecided answers count as misses).

    nice -n 10 .venv/bin/python studies/realism/controls.py STORE.db \\
        [--parts dev,test] [--size 150] [--discriminator consistency] [--writer SPEC]
        [--judge SPEC] [--both-orders] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, get_args

from deploysim.ingest import ingest_file
from deploysim.realism import (
    CONTROL_KINDS,
    DiscriminatorName,
    RealismSettings,
    run_controls,
)
from deploysim.replay import create_sample
from deploysim.sampling import SamplingSpec
from deploysim.store import Store

TAU = Path("/work/shared/data/agentic/tau-bench-airline-gpt4o.tasks00-24.json")
DEV_TASKS = range(13)
SAMPLE = "controls"


def parts_of(st: Store) -> dict[str, tuple[int, ...]]:
    """Prefix ids of the controls sample per part, by the task of their conversation."""
    raw = json.loads(TAU.read_text())
    task_of = {
        next(m["content"] for m in r["traj"] if m["role"] == "user"): r["task_id"] for r in raw
    }
    out: dict[str, list[int]] = {"dev": [], "test": []}
    rows = st.db.execute(
        "SELECT p.id, p.conversation_hash FROM prefixes p JOIN samples s ON s.id = p.sample_id "
        "WHERE s.name = ? ORDER BY p.id",
        (SAMPLE,),
    ).fetchall()
    for pid, chash in rows:
        conv = st.conversation(chash)
        first = next(m.text for m in conv.messages if m.role == "user")
        out["dev" if task_of[first] in DEV_TASKS else "test"].append(pid)
    return {k: tuple(v) for k, v in out.items()}


def main() -> None:
    """Run the controls on each requested part and print the results."""
    ap = argparse.ArgumentParser()
    ap.add_argument("store", type=Path)
    ap.add_argument("--parts", default="dev")
    ap.add_argument("--size", type=int, default=150)
    ap.add_argument("--discriminator", default="consistency", choices=get_args(DiscriminatorName))
    ap.add_argument("--judge", default=None)
    ap.add_argument("--writer", default=None)
    ap.add_argument("--both-orders", action="store_true")
    ap.add_argument("--limit", type=int, default=None)
    opts = ap.parse_args()
    with Store(opts.store) as st:
        if not st.db.execute("SELECT 1 FROM samples WHERE name = ?", (SAMPLE,)).fetchone():
            ingest_file(TAU, st)
            create_sample(st, SAMPLE, SamplingSpec(size=opts.size, seed=2, mode="turn"))
        parts = parts_of(st)
        for part in opts.parts.split(","):
            t0 = time.time()
            settings = RealismSettings(
                prefixes=parts[part], limit=opts.limit, both_orders=opts.both_orders
            )
            res: dict[str, Any] = run_controls(
                st,
                judge=opts.judge,
                kinds=CONTROL_KINDS,
                settings=settings,
                discriminator=opts.discriminator,
                writer=opts.writer,
            )
            res["discriminator"].pop("profiles", None)
            res.update(part=part, seconds=round(time.time() - t0, 1))
            json.dump(res, sys.stdout)
            print(flush=True)


if __name__ == "__main__":
    main()
