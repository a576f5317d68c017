"""The command line every loopback test server shares: where it listens, how slowly it answers
and with what text (``python -m deploysim.testing.<server>``)."""

from __future__ import annotations

import argparse


def server_parser(
    module: str, doc: str | None, *, latency: float, text: str | None, text_help: str
) -> argparse.ArgumentParser:
    """A parser with ``--host`` (loopback by default), ``--port``, ``--latency`` and ``--text``;
    a server adds its own options to it."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {module}", description=(doc or "").split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one")
    parser.add_argument("--latency", type=float, default=latency, help="seconds per request")
    parser.add_argument("--text", default=text, help=text_help)
    return parser
