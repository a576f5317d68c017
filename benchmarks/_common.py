"""Helpers shared by the replay benchmarks (``replay.py``, ``vllm.py``); not a benchmark itself.

The benchmarks are run as scripts (``python benchmarks/replay.py``), so the script's folder is
first on ``sys.path`` and ``from _common import ...`` finds this module.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["fixed_server"]


@contextmanager
def fixed_server(latency: float) -> Iterator[tuple[str, list[str]]]:
    """A fixed-latency server process (``deploysim.testing.fixed_server``).

    Yields its base URL (``http://127.0.0.1:<port>/v1``) and a list that, once the server has
    stopped, holds its closing line (requests served, its own latency mean and p99, CPU per
    request).
    """
    server = subprocess.Popen(
        [sys.executable, "-m", "deploysim.testing.fixed_server", "--latency", str(latency)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    summary: list[str] = []
    try:
        assert server.stdout is not None
        yield server.stdout.readline().split()[1], summary
    finally:
        server.terminate()
        lines = server.communicate(timeout=10)[1].strip().splitlines()
        summary.append(lines[-1] if lines else "(the server printed no summary)")
