"""Grading throughput with the local judge, and the share of time spent outside the model.

Grades the logged responses of real HH-RLHF and OpenAssistant prefixes with a local judge
(judge/REFUSAL and judge/K_NV on Qwen2.5-Coder-1.5B by default) and prints grades/s and the
harness overhead: wall time not spent inside the judge model's ``generate``, as a share of the
wall time (target: under 5%).

Then the same items with one category and with five: the judge's questions about one item share
the transcript (transcript first, question last), so llama.cpp reuses the transcript's KV state
across them and five categories should cost far less than five times one (target: at most 2x).
Also prints CPU time / wall time (on 2 cores, 1.6 or more means both are busy).

    .venv/bin/python benchmarks/grading.py [JUDGE_SPEC] [N_PREFIXES]
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from deploysim.graders import get_grader
from deploysim.grading import run_grading
from deploysim.ingest import ingest_file
from deploysim.models import GenerateConfig, Generation, Model, get_model
from deploysim.replay import create_sample
from deploysim.sampling import SamplingSpec
from deploysim.schema import Message, ToolDef
from deploysim.store import Store

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "chat"


class Timed(Model):
    """Wraps a model and adds up the wall time spent inside ``generate``."""

    def __init__(self, inner: Model) -> None:
        super().__init__(inner.spec)
        self.inner = inner
        self.seconds = 0.0
        self.calls = 0

    async def generate(
        self, messages: Sequence[Message], tools: Sequence[ToolDef], config: GenerateConfig
    ) -> Generation:
        t = time.perf_counter()
        try:
            return await self.inner.generate(messages, tools, config)
        finally:
            self.seconds += time.perf_counter() - t
            self.calls += 1


def main() -> None:
    judge = sys.argv[1] if len(sys.argv) > 1 else "llamacpp/qwen2.5-coder-1.5b"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    model = Timed(get_model(judge))
    # Load the weights before timing: a one-off cost, not per grade.
    import asyncio

    asyncio.run(
        model.inner.generate([Message(role="user", content="hi")], (), GenerateConfig(max_tokens=1))
    )
    model.seconds, model.calls = 0.0, 0
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "s.db") as st:
        for f in sorted(DATA.glob("*.jsonl")):
            ingest_file(f, st)
        create_sample(st, "default", SamplingSpec(size=n, max_prefix_chars=3000))
        graders = []
        for code in ("REFUSAL", "K_NV"):
            g = get_grader(f"judge/{code}", default_judge=judge)
            g.model = model  # type: ignore[attr-defined]
            graders.append((f"judge/{code}", g))
        t = time.perf_counter()
        summary = run_grading(st, graders, concurrency=1)
        wall = time.perf_counter() - t
    graded = summary.ok + summary.ungradable
    print(
        f"judge {judge}: {graded} grades in {wall:.1f} s = {graded / wall:.2f} grades/s "
        f"({summary.ungradable} ungradable); model calls {model.calls}, "
        f"{model.seconds:.1f} s inside the model; harness overhead "
        f"{(wall - model.seconds) / wall:.1%} of wall time"
    )
    # The same items for both passes (the items, not the judge's cache, must be what differs
    # least): their lengths drive the cost, and a different sample would confound the ratio.
    five = _per_item(judge, ("REFUSAL", "K_NV", "S", "FAB", "H"), n)
    one = _per_item(judge, ("REFUSAL",), n)
    print(
        f"one category: {one[0]:.2f} s/item (CPU/wall {one[1]:.2f}, {one[2]:.0f} prompt tokens "
        f"evaluated/item); five categories: {five[0]:.2f} s/item (CPU/wall {five[1]:.2f}, "
        f"{five[2]:.0f} prompt tokens evaluated/item); five / one = {five[0] / one[0]:.2f}x "
        f"in time, {five[2] / one[2]:.2f}x in evaluated tokens"
    )


def _per_item(judge: str, codes: Sequence[str], n: int) -> tuple[float, float, float]:
    """Seconds per item grading ``codes`` on n items, CPU time / wall time, and prompt tokens
    the judge evaluated per item (llama.cpp's own counter: what the KV cache did not hold)."""
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "s.db") as st:
        for f in sorted(DATA.glob("*.jsonl")):
            ingest_file(f, st)
        create_sample(st, "default", SamplingSpec(size=n, max_prefix_chars=3000, seed=7))
        graders = [(f"judge/{c}", get_grader(f"judge/{c}", default_judge=judge)) for c in codes]
        before = _prompt_tokens()
        t, cpu = time.perf_counter(), time.process_time()
        run_grading(st, graders, concurrency=1, replays=False)
        wall = time.perf_counter() - t
        tokens = _prompt_tokens() - before
        items = st.db.execute("SELECT COUNT(DISTINCT target_id) FROM grades").fetchone()[0]
    items = max(1, items)
    return wall / items, (time.process_time() - cpu) / wall, tokens / items


def _prompt_tokens() -> int:
    """Prompt tokens evaluated so far by the loaded llama.cpp models (0 for other judges)."""
    import llama_cpp

    from deploysim.models import llamacpp

    return sum(
        int(llama_cpp.llama_perf_context(m.llama.ctx).n_p_eval) for m in llamacpp._LOADED.values()
    )


if __name__ == "__main__":
    main()
