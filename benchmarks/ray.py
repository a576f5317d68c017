"""Replay throughput and driver peak memory, local executor vs the Ray executor.

A loopback OpenAI-compatible server (a separate process) answers every request after a fixed
50 ms. Both executors get 64 calls in flight: the local one at concurrency 64, the Ray one as
2 actors x 32 on a local Ray instance (``ray.init(num_cpus=2)``: the 2 cores of this machine,
shared by the server, the driver and Ray's own processes). The ideal is 64 / 0.05 = 1,280
requests/s. Each run is a fresh process on a copy of the same store; the figures are the
driver's: wall time of the replay, CPU time, and peak RSS (``ru_maxrss``), which must stay flat
from 10k to 100k prefixes (the ratio is printed). For Ray, the start of the local instance is
timed apart; Ray's worker processes are not in the driver's figures.

    .venv/bin/python benchmarks/ray.py               # 10k and 100k prefixes
    .venv/bin/python benchmarks/ray.py 2000 20000    # smaller, quicker
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

LATENCY = 0.05
CONCURRENCY = 64
NUM_ACTORS = 2

_SETUP = """
import sys
from pathlib import Path
from deploysim.ingest import ingest_file
from deploysim.replay import create_sample
from deploysim.sampling import SamplingSpec
from deploysim.store import Store
with Store(sys.argv[2]) as st:
    ingest_file(Path(sys.argv[1]), st)
    create_sample(st, "default", SamplingSpec(size=int(sys.argv[3])))
"""

_RUN = """
import json, resource, sys, time
from deploysim.replay import ReplaySpec, run_replay
from deploysim.store import Store
db, base, executor, conc, actors = sys.argv[1:6]
spec = ReplaySpec(model=f"openai/bench?base_url={base}")
init_s = 0.0
if executor == "ray":
    import ray
    from deploysim.execute.ray_executor import run_replay_ray
    t = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    init_s = time.perf_counter() - t
with Store(db) as st:
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    if executor == "ray":
        s = run_replay_ray(
            st, spec, num_actors=int(actors), concurrency_per_actor=int(conc) // int(actors)
        )
    else:
        s = run_replay(st, spec, concurrency=int(conc))
    dt = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_SELF)
cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
print(json.dumps({"n": s.ok + s.failed, "ok": s.ok, "seconds": dt, "cpu_s": cpu,
                  "init_s": init_s, "peak_rss_mb": r1.ru_maxrss / 1024}))
"""


def _logs(path: Path, n: int) -> None:
    with path.open("w") as f:
        for i in range(n):
            msgs = [{"role": "user", "content": f"benchmark question {i}: what is {i} + {i}?"}]
            f.write(json.dumps({"messages": msgs}) + "\n")


def _python(code: str, *args: str, env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env
    )
    if out.returncode:
        sys.exit(f"child failed ({out.returncode}):\n{out.stderr[-4000:]}")
    return out.stdout


def run(n: int, tmp: Path, base: str, env: dict[str, str]) -> dict[str, dict[str, float]]:
    """Both executors on copies of one store of ``n`` prefixes."""
    logs, db = tmp / f"logs{n}.jsonl", tmp / f"s{n}.db"
    _logs(logs, n)
    _python(_SETUP, str(logs), str(db), str(n), env=env)
    results = {}
    for executor in ("local", "ray"):
        copy = tmp / f"{executor}{n}.db"
        shutil.copy(db, copy)
        out = _python(_RUN, str(copy), base, executor, str(CONCURRENCY), str(NUM_ACTORS), env=env)
        results[executor] = json.loads(out.strip().splitlines()[-1])
        copy.unlink()
    return results


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [10_000, 100_000]
    ideal = CONCURRENCY / LATENCY
    server = subprocess.Popen(
        [sys.executable, "-m", "deploysim.testing.openai_server", "--latency", str(LATENCY)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        base = server.stdout.readline().split()[1]
        env = {**os.environ, "DEPLOYSIM_SECRET_KEY": "benchmark", "OPENAI_API_KEY": "x"}
        results: dict[int, dict[str, dict[str, float]]] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for n in sizes:
                results[n] = run(n, Path(tmp), base, env)
                for executor, r in results[n].items():
                    rate = r["n"] / r["seconds"]
                    start = f" (+ Ray start {r['init_s']:.1f} s)" if executor == "ray" else ""
                    print(
                        f"{executor:5s} {n:7d} prefixes: {r['seconds']:6.1f} s{start}, "
                        f"{rate:5.0f} req/s = {rate / ideal:.2f} of ideal {ideal:.0f}; "
                        f"driver CPU {r['cpu_s'] / r['n'] * 1000:.2f} ms/request; "
                        f"driver peak RSS {r['peak_rss_mb']:.0f} MB; ok {r['ok']:.0f}",
                        flush=True,
                    )
        if len(sizes) >= 2:
            for executor in ("local", "ray"):
                a, b = results[sizes[0]][executor], results[sizes[-1]][executor]
                ratio = b["peak_rss_mb"] / a["peak_rss_mb"]
                print(f"{executor}: driver peak RSS ratio ({sizes[-1]} / {sizes[0]}): {ratio:.2f}")
    finally:
        server.terminate()
        server.communicate(timeout=10)


if __name__ == "__main__":
    main()
