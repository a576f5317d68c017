"""The store at scale: wall time and peak memory of each stage at N logged conversations.

Generates a synthetic OpenAI-chat JSONL corpus (seeded; varied lengths, one to eight user
turns, system prompts, tool definitions and tool calls; nothing copied from any dataset), then
runs each stage in a fresh Python process so that each peak RSS is that stage's own:

1. ``generate``: write the corpus (not a deploysim stage; shown for scale).
2. ``ingest``: :func:`deploysim.ingest.ingest_file`, format ``openai``, no de-identification.
3. ``sample``: :func:`deploysim.replay.create_sample`, ``--prefixes`` turn-mode prefixes.
4. ``replay``: :func:`deploysim.replay.run_replay` with ``scripted/refuse`` (deterministic by
   prefix hash) through the normal replay path (asyncio executor, results written in batches).
5. ``grade``: :func:`deploysim.grading.run_grading` with ``rule/refusal`` on the replays and
   the logged references, through the normal grading path.
6. ``estimate``: :func:`deploysim.estimates.estimate`.
7. ``compare``: estimates, then :func:`deploysim.estimates.compare` candidate vs logged.
8. ``report``: :func:`deploysim.report.write_report` (the self-contained HTML file).

The sample size is the same at every corpus size, so every stage after ingest should cost the
same memory at 100k and at 1M conversations: the figure to watch is the ratio of peak RSS.
Each line also prints the stage's CPU time and the load average: on a shared machine the wall
time is mostly waiting for a core. Figures and the fix they led to: docs/design/scale.md.

    .venv/bin/python benchmarks/scale.py --sizes 100000 1000000 \
        --out benchmarks/results/scale.txt

Each store and corpus lives under ``--workdir`` (removed afterwards unless ``--keep``): about
1.8 GB of JSONL and 3.7 GB of store per million conversations.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

STAGES = ("generate", "ingest", "sample", "replay", "grade", "estimate", "compare", "report")
CANDIDATE = "scripted/refuse?rate=0.02"
GRADER = "rule/refusal"

# A made-up vocabulary: syllables joined into words, so the text has realistic word lengths
# without copying any corpus.
_SYLLABLES = (
    "ka", "lo", "mi", "ter", "san", "vo", "rin", "da", "pel", "qua", "zo", "nu", "bri", "shen",
    "tor", "ex", "al", "um", "ve", "co", "ra", "ti", "mon", "gle", "fa", "is", "or", "pre",
)  # fmt: skip
_TOOLS = ("lookup_order", "search_docs", "get_weather", "convert_units", "create_ticket")
_LOGGED_REFUSAL = "I'm sorry, but I can't help with that request."


def _vocabulary(rng: random.Random, n: int = 4000) -> list[str]:
    return [
        "".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((1, 1, 2, 2, 2, 3, 3, 4))))
        for _ in range(n)
    ]


def _text(rng: random.Random, words: list[str], mean_words: float) -> str:
    # Log-normal lengths: most turns short, a long tail of pasted documents.
    n = max(1, min(3000, int(rng.lognormvariate(0, 0.9) * mean_words)))
    return " ".join(rng.choices(words, k=n))


def _tool_def(name: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": f"Synthetic tool {name}.",
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string"}},
                "required": ["query"],
            },
        },
    }


def conversation(rng: random.Random, words: list[str], index: int) -> dict[str, Any]:
    """One synthetic Chat Completions record (unique: its first user turn names ``index``)."""
    messages: list[dict[str, Any]] = []
    if rng.random() < 0.3:
        messages.append({"role": "system", "content": _text(rng, words, 25)})
    tools = rng.sample(_TOOLS, rng.randint(1, 3)) if rng.random() < 0.12 else []
    turns = min(8, 1 + int(rng.expovariate(0.8)))
    for turn in range(turns):
        prefix = f"[{index}] " if turn == 0 else ""
        messages.append({"role": "user", "content": prefix + _text(rng, words, 30)})
        if turn == turns - 1 and rng.random() < 0.1:
            break  # an unanswered last user turn
        if tools and rng.random() < 0.5:
            call_id = f"call_{index}_{turn}"
            name = rng.choice(tools)
            args = json.dumps({"query": " ".join(rng.choices(words, k=3))})
            messages.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": call_id,
                            "type": "function",
                            "function": {"name": name, "arguments": args},
                        }
                    ],
                }
            )
            messages.append(
                {"role": "tool", "tool_call_id": call_id, "content": _text(rng, words, 20)}
            )
        refuse = rng.random() < 0.015
        messages.append(
            {"role": "assistant", "content": _LOGGED_REFUSAL if refuse else _text(rng, words, 60)}
        )
    record: dict[str, Any] = {"messages": messages}
    if tools:
        record["tools"] = [_tool_def(t) for t in tools]
    return record


def generate(path: Path, n: int, seed: int) -> dict[str, Any]:
    """Write ``n`` synthetic conversations as OpenAI JSONL."""
    rng = random.Random(seed)
    words = _vocabulary(rng)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps(conversation(rng, words, i), separators=(",", ":")) + "\n")
    return {"bytes": path.stat().st_size}


# --- stages, each run in its own process ----------------------------------------------------


def _stage(name: str, args: argparse.Namespace) -> dict[str, Any]:
    store_path, corpus = Path(args.store), Path(args.corpus)
    if name == "generate":
        return generate(corpus, args.size, args.seed)
    from deploysim.store import Store

    with Store(store_path) as store:
        if name == "ingest":
            from deploysim.ingest import ingest_file

            r = ingest_file(corpus, store, fmt="openai")
            return {"conversations": r.conversations, "new": r.new_conversations}
        if name == "sample":
            from deploysim.replay import create_sample
            from deploysim.sampling import SamplingSpec

            info = create_sample(store, "default", SamplingSpec(size=args.prefixes, seed=args.seed))
            return {"prefixes": info.size, "population": info.population}
        if name == "replay":
            from deploysim.replay import ReplaySpec, run_replay

            s = run_replay(store, ReplaySpec(model=CANDIDATE), concurrency=64)
            return {"ok": s.ok, "failed": s.failed}
        if name == "grade":
            from deploysim.graders import get_grader
            from deploysim.grading import run_grading

            g = run_grading(store, [(GRADER, get_grader(GRADER))], concurrency=64)
            return {"graded": g.ok, "ungradable": g.ungradable, "flagged": g.flagged}
        if name in ("estimate", "compare"):
            from deploysim.estimates import LOGGED, compare, estimate

            rows = estimate(store)
            out: dict[str, Any] = {
                e.model: {"k": e.k, "n": e.n, "rate": round(e.rate or 0, 5)} for e in rows
            }
            if name == "compare":
                (c,) = compare(rows, CANDIDATE, LOGGED)
                out = {"ratio": round(c.ratio, 3), "p": round(c.fisher_p, 4)}
            return out
        if name == "report":
            from deploysim.report import write_report

            stats = write_report(store, store_path.with_suffix(".html"))
            return {"bytes": stats.bytes, "shown": stats.prefixes_shown}
    raise SystemExit(f"unknown stage {name!r}")


def _child(args: argparse.Namespace) -> None:
    start, cpu = time.perf_counter(), time.process_time()
    extra = _stage(args.stage, args)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "stage": args.stage,
                "seconds": round(time.perf_counter() - start, 2),
                "cpu_s": round(time.process_time() - cpu, 2),
                "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
                **extra,
            }
        )
    )


def _run_stage(stage: str, size: int, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--stage",
        stage,
        "--store",
        str(workdir / f"scale-{size}.db"),
        "--corpus",
        str(workdir / f"scale-{size}.jsonl"),
        "--sizes",
        str(size),
        "--prefixes",
        str(args.prefixes),
        "--seed",
        str(args.seed),
    ]
    env = {**os.environ, "DEPLOYSIM_SECRET_KEY": os.environ.get("DEPLOYSIM_SECRET_KEY", "scale")}
    wall = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"stage {stage} at {size:,} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_s"] = round(time.perf_counter() - wall, 2)  # with interpreter start-up
    # A shared machine's wall times depend on its load: print it beside them.
    result["load1"] = round(os.getloadavg()[0], 1)
    return result


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        mem_gb = f"{int(mem) / 1024**2:.1f} GB RAM"
    except OSError:
        mem_gb = "unknown RAM"
    import sqlite3

    return (
        f"{os.cpu_count()} cores ({cpu}), {mem_gb}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )


def ratios(printouts: list[Path]) -> str:
    """The peak-RSS ratio per stage, largest corpus over smallest, from printouts of separate
    runs (``--combine``)."""
    peaks: dict[int, dict[str, float]] = {}
    for path in printouts:
        for line in path.read_text(encoding="utf-8").splitlines():
            size, _, rest = line.strip().partition(" ")
            stage, _, data = rest.strip().partition(" ")
            if size.replace(",", "").isdigit() and stage in STAGES:
                peaks.setdefault(int(size.replace(",", "")), {})[stage] = json.loads(data)[
                    "peak_rss_mb"
                ]
    lo, hi = min(peaks), max(peaks)
    both = [s for s in STAGES if s in peaks[lo] and s in peaks[hi]]
    by_stage = {s: round(peaks[hi][s] / peaks[lo][s], 2) for s in both}
    worst = max(v for s, v in by_stage.items() if s != "generate")
    return f"peak RSS ratio {hi:,} / {lo:,} per stage: {json.dumps(by_stage)}; worst {worst}"


def main() -> None:
    """Run the benchmark (or, with ``--stage``, one stage in this process)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--prefixes", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", type=Path, default=Path("/tmp/deploysim-scale"))
    p.add_argument("--out", type=Path, help="also write the printout to this file")
    p.add_argument("--keep", action="store_true", help="keep the corpora and stores")
    p.add_argument(
        "--resume",
        choices=STAGES[1:],
        help="start at this stage, on the corpus and store a --keep run left in --workdir",
    )
    p.add_argument(
        "--combine",
        type=Path,
        nargs="+",
        help="print the peak-RSS ratios of the printouts of separate runs, and stop",
    )
    p.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    p.add_argument("--store", help=argparse.SUPPRESS)
    p.add_argument("--corpus", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.combine:
        print(ratios(args.combine))
        return
    if args.stage:
        args.size = args.sizes[0]
        _child(args)
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# benchmarks/scale.py {' '.join(sys.argv[1:])}",
        f"# {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}; {_machine()}",
        f"# candidate {CANDIDATE}, grader {GRADER}, {args.prefixes:,} turn-mode prefixes",
    ]
    print("\n".join(lines), flush=True)
    for size in args.sizes:
        if not args.resume:
            for f in args.workdir.glob(f"scale-{size}.*"):
                f.unlink()
        for stage in STAGES[STAGES.index(args.resume) if args.resume else 0 :]:
            r = _run_stage(stage, size, args.workdir, args)
            line = f"{size:>9,} {stage:<9} " + json.dumps(r)
            lines.append(line)
            print(line, flush=True)
        db = args.workdir / f"scale-{size}.db"
        sizes = {
            "corpus_mb": round((args.workdir / f"scale-{size}.jsonl").stat().st_size / 1e6),
            "store_mb": round(db.stat().st_size / 1e6),
        }
        line = f"{size:>9,} files     " + json.dumps(sizes)
        lines.append(line)
        print(line, flush=True)
        if not args.keep:
            for f in args.workdir.glob(f"scale-{size}.*"):
                f.unlink()
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    if len(args.sizes) > 1 and args.out:
        line = ratios([args.out])
        print(line, flush=True)
        with args.out.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
    if not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
