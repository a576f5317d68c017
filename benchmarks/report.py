"""Report generation at scale: size of ``report.html`` and time to write it.

Builds synthetic stores with direct SQL inserts (``tests/report/synthetic.py``: N replays over
N/4 prefixes x 4 models, 3 categories, ~2.9 grades per replay) and times
:func:`deploysim.report.write_report` on each, with the peak resident memory of the process.

    .venv/bin/python benchmarks/report.py                 # 10,000 and 100,000 replays
    .venv/bin/python benchmarks/report.py --replays 1000000
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.report.synthetic import build

from deploysim.report import write_report
from deploysim.store import Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replays", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    print(f"{'replays':>10} {'build s':>8} {'report s':>9} {'MB':>7} {'shown':>6} {'of':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.replays:
            start = time.perf_counter()
            syn = build(Path(tmp) / f"s{n}.db", replays=n)
            built = time.perf_counter() - start
            with Store(syn.path) as store:
                stats = write_report(store, Path(tmp) / f"r{n}.html")
            print(
                f"{n:>10,} {built:>8.1f} {stats.seconds:>9.1f} {stats.bytes / 1e6:>7.1f} "
                f"{stats.prefixes_shown:>6,} {stats.prefixes_total:>8,}"
            )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this process: {peak:.0f} MB")


if __name__ == "__main__":
    main()
