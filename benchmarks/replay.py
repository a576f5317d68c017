"""Replay throughput, harness CPU per request and peak memory against a loopback server.

A loopback OpenAI-compatible server (``deploysim.testing.fixed_server``, a separate process)
answers every request 50 ms after it arrived. The replay engine runs at concurrency 64, so the
ideal throughput is 64 / 0.05 = 1,280 requests/s; the figure to watch is the ratio to that
ideal (target >= 0.9). Throughput is printed from start to end of ``run_replay`` (process
start-up, imports and the drain of the last requests included) and in steady state (the rate
over the middle 90% of completions, from the stored completion times). The server prints its
own latency (mean, p99, arrival to answer) and CPU per request, so a slow server shows.

Harness CPU per request is the replay's CPU time (SDK client, engine, SQLite writes, in the
replay process and its workers) divided by requests. Peak memory is measured in a fresh process
at 10k and 100k prefixes: it must stay flat (the 100k / 10k ratio is printed).

The benchmark first measures a reference in the same run, a bare aiohttp client (no SDK, no
engine, no store) at the same concurrency against the same server, and prints the harness's
throughput as a share of it too: what this machine's loopback allows any Python client.

``deploysim replay --workers N`` splits a run over N processes, for machines where one
process's CPU (about 0.8 ms per request, most of it in the OpenAI SDK) is the limit. The
benchmark prints two processes at the first size, then one process at every size
(``--workers=2,1`` is the default; the last count is the one measured at every size).

    .venv/bin/python benchmarks/replay.py                        # 10k and 100k prefixes
    .venv/bin/python benchmarks/replay.py --workers=1 2000 20000   # smaller, quicker
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import fixed_server

LATENCY = 0.05
CONCURRENCY = 64

_CHILD = """
import json, os, resource, sys, time
from pathlib import Path
from deploysim.execute import choose
from deploysim.ingest import ingest_file
from deploysim.replay import ReplaySpec, create_sample, run_replay
from deploysim.sampling import SamplingSpec
from deploysim.store import Store
logs, db, base = Path(sys.argv[1]), sys.argv[2], sys.argv[4]
n, conc, workers = int(sys.argv[3]), int(sys.argv[5]), int(sys.argv[6])
with Store(db) as st:
    ingest_file(logs, st)
    create_sample(st, "default", SamplingSpec(size=n))
    spec = ReplaySpec(model=f"openai/bench?base_url={base}")
    who = (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    usage = lambda: [resource.getrusage(w) for w in who]
    r0 = usage()
    t = time.perf_counter()
    s = run_replay(st, spec, concurrency=conc, executor=choose("local", workers=workers))
    dt = time.perf_counter() - t
    r1 = usage()
    # Steady state: the rate over the middle 90% of completions (each replay's created_at is
    # when its outcome arrived), without process start-up and the last requests' drain.
    done = [r[0] for r in st.db.execute("SELECT created_at FROM replays ORDER BY created_at")]
    lo, hi = len(done) // 20, len(done) - 1 - len(done) // 20
    steady = (hi - lo) / (done[hi] - done[lo])
# CPU of this process and of its worker processes; peak RSS of the largest of them.
cpu = sum(b.ru_utime - a.ru_utime + b.ru_stime - a.ru_stime for a, b in zip(r0, r1))
print(json.dumps({"n": s.ok + s.failed, "ok": s.ok, "seconds": dt, "cpu_s": cpu, "steady": steady,
                  "peak_rss_mb": max(r.ru_maxrss for r in r1) / 1024}))
"""


def _logs(path: Path, n: int) -> None:
    with path.open("w") as f:
        for i in range(n):
            msgs = [{"role": "user", "content": f"benchmark question {i}: what is {i} + {i}?"}]
            f.write(json.dumps({"messages": msgs}) + "\n")


_REFERENCE = """
import asyncio, json, sys, time
import aiohttp
base, n, conc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
async def main():
    sem = asyncio.Semaphore(conc)
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer x"}) as s:
        async def one(i):
            body = {"model": "bench", "messages": [{"role": "user", "content": f"q {i}"}]}
            async with sem, s.post(base + "/chat/completions", json=body) as r:
                await r.json()
        t = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        print(json.dumps({"n": n, "seconds": time.perf_counter() - t}))
asyncio.run(main())
"""


def reference(n: int) -> tuple[float, str]:
    """Requests/s of a bare aiohttp client (no SDK, engine or store) at the same concurrency,
    and the server's closing line."""
    with fixed_server(LATENCY) as (base, summary):
        out = subprocess.run(
            [sys.executable, "-c", _REFERENCE, base, str(n), str(CONCURRENCY)],
            capture_output=True,
            text=True,
            check=True,
        )
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return float(r["n"] / r["seconds"]), summary[0]


def run(n: int, workers: int) -> tuple[dict[str, float], str]:
    """The replay's figures at ``n`` prefixes and the server's closing line."""
    with fixed_server(LATENCY) as (base, summary), tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp) / "logs.jsonl"
        _logs(logs, n)
        env = {**os.environ, "DEPLOYSIM_SECRET_KEY": "benchmark", "OPENAI_API_KEY": "x"}
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                _CHILD,
                str(logs),
                str(Path(tmp) / "s.db"),
                str(n),
                base,
                str(CONCURRENCY),
                str(workers),
            ],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result, summary[0]


def _line(label: str, r: dict[str, float], ref: float, server: str) -> str:
    ideal = CONCURRENCY / LATENCY
    rate = r["n"] / r["seconds"]
    return (
        f"{label}: {rate:6.0f} req/s = {rate / ideal:.2f} of ideal {ideal:.0f} from start to "
        f"end, {r['steady']:6.0f} req/s = {r['steady'] / ideal:.2f} in steady state (middle 90% "
        f"of completions); {rate / ref:.2f} of the bare client; harness CPU "
        f"{r['cpu_s'] / r['n'] * 1000:.2f} ms/request; peak RSS {r['peak_rss_mb']:.0f} MB; ok "
        f"{r['ok']:.0f}\n    server: {server}"
    )


def main() -> None:
    args = sys.argv[1:]
    workers = [2, 1]
    if args and args[0].startswith("--workers="):
        workers = [int(w) for w in args.pop(0).split("=", 1)[1].split(",")]
    sizes = [int(a) for a in args] or [10_000, 100_000]
    ideal = CONCURRENCY / LATENCY
    ref, server = reference(sizes[0])
    print(
        f"bare aiohttp client, {sizes[0]} requests: {ref:6.0f} req/s = {ref / ideal:.2f} of ideal "
        f"{ideal:.0f} (the reference: what this machine's loopback and server allow)\n"
        f"    server: {server}"
    )
    results = {}
    for w in workers[:-1]:  # the other process counts, at the smaller size
        one, server = run(sizes[0], w)
        print(_line(f"{sizes[0]:7d} prefixes, {w} process(es)", one, ref, server))
    for n in sizes:
        results[n], server = run(n, workers[-1])
        print(_line(f"{n:7d} prefixes, {workers[-1]} process(es)", results[n], ref, server))
    if len(sizes) >= 2:
        a, b = results[sizes[0]], results[sizes[-1]]
        ratio = b["peak_rss_mb"] / a["peak_rss_mb"]
        print(f"peak memory ratio ({sizes[-1]} / {sizes[0]}): {ratio:.2f}")


if __name__ == "__main__":
    main()
