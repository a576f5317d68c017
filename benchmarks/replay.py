"""Replay throughput, harness CPU per request and peak memory against a loopback server.

A loopback OpenAI-compatible server (a separate process) answers every request after a fixed
50 ms. The replay engine runs at concurrency 64, so the ideal throughput is 64 / 0.05 = 1,280
requests/s; the figure to watch is the ratio to that ideal (target >= 0.9). Harness CPU per
request is the replay process's CPU time (SDK client, engine, SQLite writes) divided by
requests. Peak memory is measured in a fresh process at 10k and 100k prefixes: it must stay
flat (the 100k / 10k ratio is printed).

    .venv/bin/python benchmarks/replay.py            # 10k and 100k prefixes
    .venv/bin/python benchmarks/replay.py 2000 20000 # smaller, quicker
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
n, conc = int(sys.argv[3]), int(sys.argv[5])
with Store(db) as st:
    ingest_file(logs, st)
    create_sample(st, "default", SamplingSpec(size=n))
    spec = ReplaySpec(model=f"openai/bench?base_url={base}")
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    s = run_replay(st, spec, concurrency=conc)
    dt = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_SELF)
cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
print(json.dumps({"n": s.ok + s.failed, "ok": s.ok, "seconds": dt, "cpu_s": cpu,
                  "peak_rss_mb": r1.ru_maxrss / 1024}))
"""


def _logs(path: Path, n: int) -> None:
    with path.open("w") as f:
        for i in range(n):
            msgs = [{"role": "user", "content": f"benchmark question {i}: what is {i} + {i}?"}]
            f.write(json.dumps({"messages": msgs}) + "\n")


def run(n: int) -> dict[str, float]:
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
    sizes = [int(a) for a in sys.argv[1:]] or [10_000, 100_000]
    ideal = CONCURRENCY / LATENCY
    results = {}
    for n in sizes:
        r = run(n)
        results[n] = r
        rate = r["n"] / r["seconds"]
        print(
            f"{n:7d} prefixes: {rate:6.0f} req/s = {rate / ideal:.2f} of ideal {ideal:.0f}; "
            f"harness CPU {r['cpu_s'] / r['n'] * 1000:.2f} ms/request; "
            f"peak RSS {r['peak_rss_mb']:.0f} MB; ok {r['ok']:.0f}"
        )
    if len(sizes) >= 2:
        a, b = results[sizes[0]], results[sizes[-1]]
        ratio = b["peak_rss_mb"] / a["peak_rss_mb"]
        print(f"peak memory ratio ({sizes[-1]} / {sizes[0]}): {ratio:.2f}")


if __name__ == "__main__":
    main()
