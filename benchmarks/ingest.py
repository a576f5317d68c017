"""Ingest throughput and peak memory on the ShareGPT package file, and on that file twice over.

Prints conversations/s and the peak resident memory of a fresh process ingesting (a) the file
(125 MB, 17,671 whole records) and (b) a file holding every record twice (the second copy edited
so that nothing deduplicates). Streaming means (b)'s peak memory should equal (a)'s: the ratio is
the figure to watch.

    .venv/bin/python benchmarks/ingest.py
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import ijson

from deploysim.demo import sharegpt_file


def _write_twice(src: Path, dst: Path) -> None:
    """A JSON array with every whole record of ``src``, then every record again, edited."""
    with dst.open("w", encoding="utf-8") as out:
        out.write("[")
        first = True
        for copy in (0, 1):
            with src.open("rb") as f:
                try:
                    for item in ijson.items(f, "item", use_float=True):
                        if copy:
                            item["id"] = f"{item.get('id')}-copy"
                            for turn in item.get("conversations", []):
                                turn["value"] = f"[copy] {turn['value']}"
                        out.write(("" if first else ",\n") + json.dumps(item, ensure_ascii=False))
                        first = False
                except ijson.common.IncompleteJSONError:
                    pass  # the truncated tail
        out.write("]")


_CHILD = """
import json, resource, sys, time
from pathlib import Path
from deploysim.ingest import ingest_file
from deploysim.store import Store
t = time.perf_counter()
with Store(sys.argv[2]) as store:
    r = ingest_file(Path(sys.argv[1]), store, fmt="sharegpt")
print(json.dumps({"seconds": time.perf_counter() - t, "conversations": r.conversations,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _measure(path: Path, store: Path) -> dict[str, float]:
    env = {"DEPLOYSIM_SECRET_KEY": "benchmark"}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), str(store)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    result: dict[str, float] = json.loads(proc.stdout)
    return result


def main() -> None:
    src = sharegpt_file()
    with tempfile.TemporaryDirectory() as tmp:
        twice = Path(tmp) / "sharegpt-twice.json"
        _write_twice(src, twice)
        once = _measure(src, Path(tmp) / "once.db")
        double = _measure(twice, Path(tmp) / "twice.db")
        sizes = {src: src.stat().st_size, twice: twice.stat().st_size}
    for label, path, r in (("file", src, once), ("file twice over", twice, double)):
        print(
            f"{label:16s} {sizes[path] / 1e6:7.1f} MB  "
            f"{r['conversations']:6.0f} conversations  {r['seconds']:6.1f} s  "
            f"{r['conversations'] / r['seconds']:7.0f} conversations/s  "
            f"peak RSS {r['peak_rss_mb']:6.1f} MB"
        )
    print(f"peak memory ratio (twice / once): {double['peak_rss_mb'] / once['peak_rss_mb']:.2f}")
    print(f"harness peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MB")


if __name__ == "__main__":
    main()
