"""Replay throughput, harness CPU per request and peak memory against a loopback server.

A loopback OpenAI-compatible server (a separate process) answers every request after a fixed
50 ms. The replay engine runs at concurrency 64, so the ideal throughput is 64 / 0.05 = 1,280
requests/s; the figure to watch is the ratio to that ideal (target >= 0.9). Harness CPU per
request is the replay process's CPU time (SDK client, engine, SQLite writes) divided by
requests. Peak memory is measured in a fresh process at 10k and 100k prefixes: it must stay
flat (the 100k / 10k ratio is printed).

One Python process spends about 0.8 ms of CPU per request, most of it in the OpenAI SDK, so
it reaches only ~0.8 of the ideal; the replay's ``workers=2`` (``deploysim replay --workers
2``) splits the run over two processes. The benchmark prints one process at the first size,
then two processes at every size (``--workers=1,2`` is the default; the last count is the
one measured at every size; harness CPU then sums the worker processes).

    .venv/bin/python benchmarks/replay.py                        # 10k and 100k prefixes
    .venv/bin/python benchmarks/replay.py --workers=1,2 2000 20000 # smaller, quicker
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

LATENCY = 0.05
CONCURRENCY = 64

_CHILD = """
import json, os, resource, sys, time
from pathlib import Path
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
    s = run_replay(st, spec, concurrency=conc, workers=workers)
    dt = time.perf_counter() - t
    r1 = usage()
# CPU of this process and of its worker processes; peak RSS of the largest of them.
cpu = sum(b.ru_utime - a.ru_utime + b.ru_stime - a.ru_stime for a, b in zip(r0, r1))
print(json.dumps({"n": s.ok + s.failed, "ok": s.ok, "seconds": dt, "cpu_s": cpu,
                  "peak_rss_mb": max(r.ru_maxrss for r in r1) / 1024}))
"""


def _logs(path: Path, n: int) -> None:
    with path.open("w") as f:
        for i in range(n):
            msgs = [{"role": "user", "content": f"benchmark question {i}: what is {i} + {i}?"}]
            f.write(json.dumps({"messages": msgs}) + "\n")


def run(n: int, workers: int) -> dict[str, float]:
    server = subprocess.Popen(
        [sys.executable, "-m", "deploysim.testing.openai_server", "--latency", str(LATENCY)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        base = server.stdout.readline().split()[1]
        with tempfile.TemporaryDirectory() as tmp:
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
        return result
    finally:
        server.terminate()
        server.communicate(timeout=10)


def main() -> None:
    args = sys.argv[1:]
    workers = [1, 2]
    if args and args[0].startswith("--workers="):
        workers = [int(w) for w in args.pop(0).split("=", 1)[1].split(",")]
    sizes = [int(a) for a in args] or [10_000, 100_000]
    ideal = CONCURRENCY / LATENCY
    results = {}
    for w in workers[:-1]:  # the other process counts, at the smaller size
        r = run(sizes[0], w)
        rate = r["n"] / r["seconds"]
        print(
            f"{sizes[0]:7d} prefixes, {w} process(es): {rate:6.0f} req/s = {rate / ideal:.2f} of "
            f"ideal {ideal:.0f}; harness CPU {r['cpu_s'] / r['n'] * 1000:.2f} ms/request"
        )
    for n in sizes:
        r = run(n, workers[-1])
        results[n] = r
        rate = r["n"] / r["seconds"]
        print(
            f"{n:7d} prefixes, {workers[-1]} process(es): {rate:6.0f} req/s = {rate / ideal:.2f} "
            f"of ideal {ideal:.0f}; "
            f"harness CPU {r['cpu_s'] / r['n'] * 1000:.2f} ms/request; "
            f"peak RSS {r['peak_rss_mb']:.0f} MB; ok {r['ok']:.0f}"
        )
    if len(sizes) >= 2:
        a, b = results[sizes[0]], results[sizes[-1]]
        ratio = b["peak_rss_mb"] / a["peak_rss_mb"]
        print(f"peak memory ratio ({sizes[-1]} / {sizes[0]}): {ratio:.2f}")


if __name__ == "__main__":
    main()
