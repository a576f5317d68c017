"""The simulator's realism with and without the original trajectory, on logged calls.

``deploysim replay`` measures the simulator only where the candidate calls a tool that no
recorded answer covers; Qwen2.5-Coder-0.5B called none in 18 tau-bench replays (session 12).
This study asks the simulator directly: for each sampled prefix whose logged continuation
calls a tool, the first such call is answered by the simulator (its recorded answer hidden),
once seeing the log's continuation (``--simulator-sees-log``, the default) and once blind,
and the realism discriminator compares the logged continuation cut after that result with the
same cut carrying the simulated result. Win rate: the simulated one called real.

    nice -n 10 .venv/bin/python studies/realism/simulated.py STORE.db {sees-log|blind} OUT.jsonl
        [--simulator SPEC] [--size 60] [--seed 1]   # another seed adds a sample

STORE.db: a scratch store (created with the shared tau-bench file and a turn sample when
missing). OUT.jsonl: one row per prefix (resumable; the simulated result's text stays out of
the repository, it copies the data's shapes). Then ``--summary OUT.jsonl`` prints the win
rates per discriminator and tool.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import defaultdict
from pathlib import Path

from deploysim.ingest import ingest_file
from deploysim.models import get_model
from deploysim.prefixes import load_prefix, render_continuation
from deploysim.realism import consistency
from deploysim.replay import create_sample
from deploysim.sampling import SamplingSpec
from deploysim.schema import Message
from deploysim.stats import jeffreys_interval
from deploysim.store import Store
from deploysim.tools import ToolDatabase, ToolLayer, ToolPolicy

TAU = Path("/work/shared/data/agentic/tau-bench-airline-gpt4o.tasks00-24.json")


def _cut(continuation: tuple[Message, ...]) -> tuple[int, int] | None:
    """(index of the first tool result, index of the assistant message calling it)."""
    for i, m in enumerate(continuation):
        if m.role == "tool":
            for j in range(i - 1, -1, -1):
                if any(c.id == m.tool_call_id for c in continuation[j].tool_calls):
                    return i, j
            return None
    return None


async def _run(st: Store, arm: str, out: Path, simulator: str) -> None:
    done = set()
    if out.exists():
        done = {json.loads(line)["prefix_id"] for line in out.read_text().splitlines()}
    db = ToolDatabase()
    for conv in st.conversations(with_tool_calls=True):
        db.add(conv)
    policy = ToolPolicy(mode="replay", simulator=simulator, show_continuation=arm == "sees-log")
    layer = ToolLayer(db, policy, simulator=get_model(simulator))
    profiles = consistency.build_profiles(st.conversations(with_tool_calls=True))
    # Every sample's prefixes, each (conversation, cut) once: a second sample extends the run.
    rows = st.db.execute("SELECT id, conversation_hash, cut FROM prefixes ORDER BY id")
    ids = list({(chash, cut): pid for pid, chash, cut in reversed(rows.fetchall())}.values())
    try:
        for pid in sorted(ids):
            prefix = load_prefix(st, pid)
            cut = _cut(prefix.continuation)
            if pid in done or cut is None:
                continue
            i, j = cut
            logged = prefix.continuation[: i + 1]
            call = next(c for c in logged[j].tool_calls if c.id == logged[i].tool_call_id)
            history = (*prefix.messages, *logged[:i])
            seen = render_continuation(prefix.continuation) if arm == "sees-log" else ""
            offered = prefix.tools or layer.offered
            t0 = time.perf_counter()
            # The recorded answer is what is measured against: the simulator answers instead.
            res = await layer._simulate(call, offered, seen, history)
            seconds = time.perf_counter() - t0
            other = (*logged[:i], logged[i].model_copy(update={"content": res.content}))
            row = {
                "prefix_id": pid,
                "arm": arm,
                "tool": call.function,
                "source": res.source,
                "seconds": round(seconds, 1),
                "same_as_logged": res.content.strip() == logged[i].text.strip(),
                "p_all": consistency.compare(prefix.messages, logged, other, profiles, "all"),
                "p_tools": consistency.compare(prefix.messages, logged, other, profiles, "tools"),
            }
            with out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
    finally:
        await layer.aclose()


def _summary(paths: list[Path]) -> None:
    rows = [json.loads(line) for p in paths for line in p.read_text().splitlines()]
    for arm in sorted({r["arm"] for r in rows}):
        mine = [r for r in rows if r["arm"] == arm]
        print(
            f"{arm}: {len(mine)} prefixes, {sum(r['source'] == 'simulated' for r in mine)} "
            f"simulated, {sum(r['same_as_logged'] for r in mine)} equal to the logged result, "
            f"{sum(r['seconds'] for r in mine) / max(1, len(mine)):.0f} s per call"
        )
        for key in ("p_all", "p_tools"):
            picks = [r[key] > 0.5 for r in mine if r[key] is not None and r[key] != 0.5]
            undecided = sum(1 for r in mine if r[key] == 0.5)
            per_tool: dict[str, list[bool]] = defaultdict(list)
            for r in mine:
                if r[key] is not None and r[key] != 0.5:
                    per_tool[r["tool"]].append(r[key] > 0.5)
            k, n = sum(picks), len(picks)
            ci = jeffreys_interval(k, n) if n else None
            rate = f"{k}/{n} = {k / n:.1%} [{ci.lower:.1%}, {ci.upper:.1%}]" if ci else "-"
            tools = ", ".join(f"{t} {sum(v)}/{len(v)}" for t, v in sorted(per_tool.items()))
            # An undecided pair is indistinguishable: half a win, as the method's 50% reads.
            judged = n + undecided
            half = f"{(k + undecided / 2) / judged:.1%} of {judged}" if judged else "-"
            print(
                f"  {key}: win rate {rate}; {undecided} undecided (ties as half: {half}); "
                f"per tool: {tools}"
            )


def main() -> None:
    """Run one arm, or summarise result files."""
    ap = argparse.ArgumentParser()
    ap.add_argument("store", type=Path, nargs="?")
    ap.add_argument("arm", choices=("sees-log", "blind"), nargs="?")
    ap.add_argument("out", type=Path, nargs="?")
    ap.add_argument("--simulator", default="llamacpp/qwen2.5-coder-0.5b?n_threads=1")
    ap.add_argument("--size", type=int, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--summary", type=Path, nargs="*")
    opts = ap.parse_args()
    if opts.summary:
        _summary(opts.summary)
        return
    with Store(opts.store) as st:
        if not st.db.execute("SELECT 1 FROM samples").fetchone():
            ingest_file(TAU, st)
        name = "default" if opts.seed == 1 else f"seed{opts.seed}"
        if not st.db.execute("SELECT 1 FROM samples WHERE name = ?", (name,)).fetchone():
            create_sample(st, name, SamplingSpec(size=opts.size, seed=opts.seed, mode="turn"))
        asyncio.run(_run(st, opts.arm, opts.out, opts.simulator))


if __name__ == "__main__":
    main()
