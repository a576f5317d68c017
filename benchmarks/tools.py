"""How often the tool simulator's outputs have the recorded results' format (tau-bench).

For N tau-bench tool calls (JSON-result tools only), the call's recorded answer is hidden and
the simulator model answers instead; the output counts as well-formed when it parses as JSON
with every field the tool's recorded results share (arrays / numbers: the same JSON type).
Target with Qwen2.5-Coder-1.5B: at least 95%.

    .venv/bin/python benchmarks/tools.py [SIMULATOR_SPEC] [N_CALLS]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from deploysim.ingest import ingest_file
from deploysim.store import Store
from deploysim.tools import ToolDatabase, ToolLayer, ToolPolicy, result_shape

TAU = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "agentic"
    / "tau-bench-airline-gpt4o.tasks00-24.json"
)


def main() -> None:
    simulator = sys.argv[1] if len(sys.argv) > 1 else "llamacpp/qwen2.5-coder-1.5b"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "s.db") as st:
        ingest_file(TAU, st)
        db = ToolDatabase()
        convs = list(st.conversations(with_tool_calls=True))
        for conv in convs:
            db.add(conv)
    calls = [
        (call, conv)
        for conv in convs
        for call, result in conv.tool_results()
        if result is not None and result_shape(db.examples.get(call.function, []))[0] != "text"
    ]
    step = max(1, len(calls) // n)
    calls = calls[::step][:n]
    # An empty database hides the recorded answers; the examples and definitions stay.
    hidden = ToolDatabase(examples=db.examples, definitions=db.definitions, calls=db.calls)
    layer = ToolLayer(hidden, ToolPolicy(mode="replay", simulator=simulator, inject_failures=False))
    ok = 0
    t = time.perf_counter()

    async def run() -> int:
        good = 0
        for i, (call, conv) in enumerate(calls, start=1):
            t0 = time.perf_counter()
            r = await layer.resolve(
                call, offered=conv.tools, conversation=None, continuation="", salt="bench"
            )
            good += r.source == "simulated"
            print(
                f"{i}/{len(calls)} {call.function}: {r.source} ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
        await layer.aclose()
        return good

    ok = asyncio.run(run())
    dt = time.perf_counter() - t
    print(
        f"simulator {simulator}: {ok}/{len(calls)} = {ok / len(calls):.1%} of simulated tau-bench "
        f"tool results have the recorded format ({dt / len(calls):.1f} s per call)"
    )


if __name__ == "__main__":
    main()
