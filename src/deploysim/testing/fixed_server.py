"""A lean OpenAI-compatible server that answers every request after exactly a fixed latency.

For throughput benchmarks: ``python -m deploysim.testing.fixed_server --latency 0.05`` prints
``serving http://127.0.0.1:<port>/v1`` and answers every ``POST`` with the same small chat
completion ``latency`` seconds after the request's last byte arrived. On SIGTERM (or Ctrl-C) it
prints how many requests it served and its own latency, mean and p99, measured from arrival to
write, on stderr.

Why not :class:`~deploysim.testing.OpenAIServer`: its per-request work (aiohttp's request
handling, a JSON parse and dump, about 0.2 ms of CPU) is done when the timers of a burst fire
together, so under 64 concurrent requests its answers leave some 6 ms late on a 2-core machine:
a benchmark then measures the server. Here a request costs a header scan and one write of
prebuilt bytes, and the answer leaves within about 1 ms of its deadline. It has no faults, no
routes and no body parsing; a request with a chunked body gets 411 and the connection closes.
"""

from __future__ import annotations

import asyncio
import json
import resource
import signal
import sys
from collections.abc import Sequence

from deploysim.testing._cli import server_parser

__all__ = ["FixedLatencyProtocol", "main", "response_bytes"]


def response_bytes(text: str = "ok", model: str = "fixed") -> bytes:
    """The HTTP response every request gets: a 200 with a one-choice chat completion."""
    body = json.dumps(
        {
            "id": "chatcmpl-fixed",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    ).encode()
    head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


_LENGTH_REQUIRED = b"HTTP/1.1 411 Length Required\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class FixedLatencyProtocol(asyncio.Protocol):
    """One connection: reads HTTP/1.1 requests and answers each ``latency`` s after it arrived.

    ``latencies`` (shared by all connections) gets each answer's measured delay in seconds.
    """

    def __init__(self, latency: float, response: bytes, latencies: list[float]) -> None:
        self.latency = latency
        self.response = response
        self.latencies = latencies
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end].lower()
            if b"transfer-encoding: chunked" in head:
                assert self.transport is not None
                self.transport.write(_LENGTH_REQUIRED)
                self.transport.close()
                return
            length = 0
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                line_end = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : line_end if line_end >= 0 else None])
            if len(self.buffer) < end + 4 + length:
                return  # the body is still arriving
            self.buffer = self.buffer[end + 4 + length :]
            arrived = self.loop.time()
            self.loop.call_at(arrived + self.latency, self._answer, arrived)

    def _answer(self, arrived: float) -> None:
        self.latencies.append(self.loop.time() - arrived)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(self.response)


async def serve(host: str, port: int, latency: float, text: str, latencies: list[float]) -> None:
    """Serve until cancelled, printing ``serving <base url>`` once bound."""
    loop = asyncio.get_running_loop()
    response = response_bytes(text)
    server = await loop.create_server(
        lambda: FixedLatencyProtocol(latency, response, latencies), host, port, backlog=1024
    )
    bound = server.sockets[0].getsockname()[1]
    print(f"serving http://{host}:{bound}/v1", flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m deploysim.testing.fixed_server``: serve until SIGTERM or Ctrl-C."""
    parser = server_parser(
        "deploysim.testing.fixed_server",
        __doc__,
        latency=0.05,
        text="ok",
        text_help="the answer's text",
    )
    args = parser.parse_args(argv)
    latencies: list[float] = []
    try:
        asyncio.run(serve(args.host, args.port, args.latency, args.text, latencies))
    except KeyboardInterrupt:
        pass
    finally:
        summary = f"served {len(latencies)} requests"
        if latencies:
            ordered = sorted(latencies)
            mean = sum(ordered) / len(ordered)
            p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
            summary += f"; latency mean {mean * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms"
            usage = resource.getrusage(resource.RUSAGE_SELF)
            cpu_ms = (usage.ru_utime + usage.ru_stime) * 1000 / len(latencies)
            summary += f"; CPU {cpu_ms:.3f} ms/request"
        print(summary, file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
