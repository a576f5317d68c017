"""A loopback OpenAI-compatible Chat Completions server for tests and benchmarks.

:class:`OpenAIServer` serves ``POST /v1/chat/completions`` (non-streaming) on 127.0.0.1 with a
fixed latency, deterministic answers and injectable faults, and counts what it served::

    with OpenAIServer(latency=0.05) as srv:
        model = get_model(f"openai/test?base_url={srv.base_url}")
        srv.inject("rate_limit")  # the next request gets a 429 with Retry-After
        ...
        assert srv.counts["rate_limit"] == 1

The answer is ``text`` when given, else ``"You said: <last user text>"`` (as
``scripted/echo``). Each request gets one *kind*: the next scheduled one (:meth:`inject`, or
``schedule``), else one drawn by ``rates`` from a seeded generator, else ``ok``:

- ``ok``: a normal completion (a tool call, logprobs and reasoning when configured).
- ``rate_limit``: 429 with ``Retry-After: <retry_after>``.
- ``server_error``: 500. ``unavailable``: 503 with ``Retry-After``.
- ``hang``: waits ``hang_s`` (past any sane client timeout), then answers normally.
- ``drop``: sends the headers and half the body, then closes the socket.
- ``malformed``: 200 with a truncated JSON body.
- ``bad_request``: 400 (a request without ``messages`` gets one too, counted the same).
- ``auth``: 401 (any request without ``Authorization: Bearer <api_key>`` when ``api_key`` is
  set, counted the same).

For benchmarks, run it as a process: ``python -m deploysim.testing.openai_server --port 8000
--latency 0.05``. Latency is an ``asyncio.sleep``, so concurrent requests overlap, and the
per-request work is a JSON parse and dump: about 0.2 ms of CPU, some 5,000 requests a second
from one core.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import signal
import sys
import threading
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from deploysim.testing._cli import server_parser

__all__ = ["FAULT_KINDS", "LoopbackServer", "OpenAIServer", "main"]

FAULT_KINDS = (
    "ok",
    "rate_limit",
    "server_error",
    "unavailable",
    "hang",
    "drop",
    "malformed",
    "bad_request",
    "auth",
)
_JSON = "application/json"


class LoopbackServer:
    """An aiohttp application served on a loopback port from a background thread.

    Subclasses build the application in :meth:`make_app`. ``with server:`` (or :meth:`start`)
    starts a thread with its own event loop, so synchronous tests and other event loops can
    call it; :meth:`serve_forever` serves from the caller's loop instead (the CLI).
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    def make_app(self) -> web.Application:
        """The application to serve."""
        raise NotImplementedError

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        return f"http://{self.host}:{self.port}"

    async def _wait_stopping(self, timeout: float) -> None:
        """Sleep ``timeout`` seconds, or less when the server stops first."""
        assert self._stopping is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout)

    async def serve_forever(self, *, on_ready: Callable[[], None] | None = None) -> None:
        """Serve from the running loop until :meth:`stop` (or cancellation)."""
        self._stopping = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        # handler_cancellation: a handler whose client went away (timed out) is cancelled, so
        # hanging requests do not pile up; a short shutdown_timeout for the same reason.
        runner = web.AppRunner(
            self.make_app(),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=0.5,
            handler_cancellation=True,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port, backlog=1024)
            await site.start()
            self.port = int(runner.addresses[0][1])
            if on_ready is not None:
                on_ready()
            await self._stopping.wait()
        finally:
            await runner.cleanup()

    def start(self) -> Self:
        """Start serving in a background thread; returns once the port is bound."""
        if self._thread is not None:
            raise RuntimeError("server already started")
        self._ready.clear()
        self._failure = None
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
        self._thread.start()
        started = self._ready.wait(timeout=30)
        if self._failure is not None or not started:
            self.stop()
            raise RuntimeError(f"{type(self).__name__} failed to start") from self._failure
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self.serve_forever(on_ready=self._ready.set))
        except BaseException as e:  # reported to start(); a thread cannot raise to its caller
            self._failure = e
        finally:
            self._ready.set()

    def stop(self) -> None:
        """Stop serving: waiting requests are cancelled and the thread is joined."""
        if self._loop is not None and self._stopping is not None and not self._loop.is_closed():
            # RuntimeError: the loop closed between the check and the call.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class OpenAIServer(LoopbackServer):
    """A deterministic OpenAI-compatible Chat Completions server; see the module docstring.

    Args:
        latency: seconds every request waits before its answer.
        text: the fixed answer; ``None`` echoes the last user message.
        tool_calls: when the request offers tools and the last message is not a tool result,
            answer with a call to the first tool (``tool_arguments`` as its arguments string,
            default ``{"input": <last user text>}``).
        logprobs: first-token ``{token: logprob}`` alternatives returned when a request asks
            for logprobs (default: the answer's first word at log 0.9, ``"No"`` at log 0.1).
        reasoning: returned as ``reasoning_content`` (as vLLM and DeepSeek do).
        schedule: kinds for the first requests, in arrival order (see :meth:`inject`).
        rates: ``{kind: probability}`` for requests past the schedule, drawn with ``seed``.
        retry_after: ``Retry-After`` header value of 429 and 503 answers (seconds or an HTTP
            date); ``None`` sends none.
        hang_s: how long a ``hang`` request waits before answering.
        api_key: when set, requests must carry ``Authorization: Bearer <api_key>``.
        model: the ``model`` field of answers; ``None`` echoes the request's.
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        text: str | None = None,
        tool_calls: bool = False,
        tool_arguments: str | None = None,
        logprobs: Mapping[str, float] | None = None,
        reasoning: str | None = None,
        schedule: Sequence[str] = (),
        rates: Mapping[str, float] | None = None,
        seed: int = 0,
        retry_after: float | str | None = 1,
        hang_s: float = 60.0,
        api_key: str | None = None,
        model: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        for kind in (*schedule, *(rates or {})):
            _check_kind(kind)
        self.latency = latency
        self.text = text
        self.tool_calls = tool_calls
        self.tool_arguments = tool_arguments
        self.logprobs = dict(logprobs) if logprobs is not None else None
        self.reasoning = reasoning
        self.rates = dict(rates or {})
        self.retry_after = retry_after
        self.hang_s = hang_s
        self.model = model
        # Compared per request; kept out of repr and never logged.
        self._api_key = api_key
        self._schedule: deque[str] = deque(schedule)
        self._rng = random.Random(seed)
        self._counts: Counter[str] = Counter()
        self._n = 0
        # The last bodies received, for tests that check what a client sent.
        self.received: deque[dict[str, Any]] = deque(maxlen=64)

    def __repr__(self) -> str:
        return f"<OpenAIServer {self.url} latency={self.latency}>"

    @property
    def base_url(self) -> str:
        """The OpenAI base URL clients use: ``http://127.0.0.1:<port>/v1``."""
        return f"{self.url}/v1"

    @property
    def counts(self) -> Counter[str]:
        """Requests received so far, by kind (a copy)."""
        return Counter(self._counts)

    @property
    def total(self) -> int:
        """Requests received so far."""
        return self._n

    def inject(self, *kinds: str) -> None:
        """Give the next ``len(kinds)`` requests these kinds, in arrival order."""
        for kind in kinds:
            _check_kind(kind)
        self._schedule.extend(kinds)  # deque appends are atomic: safe from the test thread

    def reset(self) -> None:
        """Forget counts, received bodies and any scheduled kinds."""
        self._schedule.clear()
        self._counts.clear()
        self.received.clear()
        self._n = 0

    def make_app(self) -> web.Application:
        """The aiohttp application (one route)."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._handle)
        return app

    def _next_kind(self) -> str:
        try:
            return self._schedule.popleft()
        except IndexError:
            pass
        if self.rates:
            u = self._rng.random()
            for kind, rate in self.rates.items():
                if u < rate:
                    return kind
                u -= rate
        return "ok"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self._n += 1
        kind = self._next_kind()
        if self._api_key is not None and (
            request.headers.get("Authorization") != f"Bearer {self._api_key}"
        ):
            kind = "auth"
        try:
            body = json.loads(await request.read())
            messages = body["messages"]
        except (ValueError, KeyError, TypeError):
            body, messages = {}, None
        if kind == "ok" and not isinstance(messages, list):
            kind = "bad_request"
        self._counts[kind] += 1
        if body:
            self.received.append(body)
        if self.latency:
            await asyncio.sleep(self.latency)
        if kind == "ok":
            return _json_response(self._completion(body, messages or []))
        if kind == "hang":
            await self._wait_stopping(self.hang_s)
            return _json_response(self._completion(body, messages or []))
        if kind == "drop":
            return await self._drop(request, self._completion(body, messages or []))
        if kind == "malformed":
            return web.Response(body=b'{"id": "chatcmpl-x", "choices": [{"ind', content_type=_JSON)
        return self._error(kind)

    def _error(self, kind: str) -> web.Response:
        status, etype, message = {
            "rate_limit": (429, "rate_limit_exceeded", "Rate limit reached (injected)."),
            "server_error": (500, "server_error", "The server had an error (injected)."),
            "unavailable": (503, "server_error", "The server is overloaded (injected)."),
            "bad_request": (400, "invalid_request_error", "Invalid request (injected)."),
            "auth": (401, "invalid_request_error", "Incorrect API key provided."),
        }[kind]
        headers = {}
        if status in (429, 503) and self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        error = {"error": {"message": message, "type": etype, "param": None, "code": etype}}
        return _json_response(error, status=status, headers=headers)

    async def _drop(self, request: web.Request, payload: dict[str, Any]) -> web.StreamResponse:
        data = json.dumps(payload).encode()
        response = web.StreamResponse(headers={"Content-Type": _JSON})
        response.content_length = len(data)
        await response.prepare(request)
        await response.write(data[: len(data) // 2])
        # Closing the transport with the body half sent is what a crashed upstream looks like.
        if request.transport is not None:
            request.transport.close()
        return response

    def _completion(self, body: dict[str, Any], messages: list[Any]) -> dict[str, Any]:
        last_user = ""
        for m in reversed(messages):
            if isinstance(m, dict) and m.get("role") == "user":
                last_user = _text_of(m.get("content"))
                break
        text = self.text if self.text is not None else f"You said: {last_user}"
        message: dict[str, Any] = {"role": "assistant", "content": text}
        finish = "stop"
        tools = body.get("tools")
        last_role = messages[-1].get("role") if messages and isinstance(messages[-1], dict) else ""
        if self.tool_calls and tools and last_role != "tool":
            name = tools[0].get("function", {}).get("name", "tool")
            arguments = self.tool_arguments
            if arguments is None:
                arguments = json.dumps({"input": last_user})
            call = {"name": name, "arguments": arguments}
            call_id = f"call_{self._n}"
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": call_id, "type": "function", "function": call}],
            }
            text, finish = "", "tool_calls"
        if self.reasoning is not None:
            message["reasoning_content"] = self.reasoning
        choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": finish}
        if body.get("logprobs"):
            choice["logprobs"] = {"content": self._logprobs(text, body.get("top_logprobs") or 0)}
        n_in = sum(len(_text_of(m.get("content")).split()) for m in messages if isinstance(m, dict))
        n_out = len(text.split())
        return {
            "id": f"chatcmpl-{self._n}",
            "object": "chat.completion",
            "created": 1_700_000_000,  # fixed: answers are a function of the request alone
            "model": self.model or body.get("model", "deploysim-test"),
            "choices": [choice],
            "usage": {
                "prompt_tokens": n_in,
                "completion_tokens": n_out,
                "total_tokens": n_in + n_out,
            },
        }

    def _logprobs(self, text: str, top_n: int) -> list[dict[str, Any]]:
        words = text.split(" ") if text else [""]
        first = self.logprobs or {words[0]: math.log(0.9), "No": math.log(0.1)}
        top = sorted(first.items(), key=lambda kv: -kv[1])[: max(top_n, 0)]
        out = [
            {
                "token": words[0],
                "logprob": first.get(words[0], max(first.values())),
                "bytes": list(words[0].encode()),
                "top_logprobs": [
                    {"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in top
                ],
            }
        ]
        for w in words[1:]:
            token = " " + w
            out.append(
                {
                    "token": token,
                    "logprob": -0.01,
                    "bytes": list(token.encode()),
                    "top_logprobs": [],
                }
            )
        return out


def _check_kind(kind: str) -> None:
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown request kind {kind!r}; choose one of {', '.join(FAULT_KINDS)}")


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            p["text"]
            for p in content
            if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        )
    return ""


def _json_response(
    payload: Mapping[str, Any], *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=json.dumps(payload).encode(), status=status, headers=headers, content_type=_JSON
    )


def _parse_rate(text: str) -> tuple[str, float]:
    kind, sep, rate = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected KIND=RATE, got {text!r}")
    try:
        _check_kind(kind)
        return kind, float(rate)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m deploysim.testing.openai_server``: serve until interrupted."""
    parser = server_parser(
        "deploysim.testing.openai_server",
        __doc__,
        latency=0.0,
        text=None,
        text_help="fixed answer (default: echo)",
    )
    parser.add_argument("--tool-calls", action="store_true", help="call the first offered tool")
    parser.add_argument(
        "--fault",
        action="append",
        type=_parse_rate,
        default=[],
        metavar="KIND=RATE",
        help=f"inject a fault at a rate; KIND is one of {', '.join(FAULT_KINDS[1:])}",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault draws")
    parser.add_argument("--retry-after", default="1", help="Retry-After of 429/503 answers")
    args = parser.parse_args(argv)
    server = OpenAIServer(
        latency=args.latency,
        text=args.text,
        tool_calls=args.tool_calls,
        rates=dict(args.fault),
        seed=args.seed,
        retry_after=args.retry_after,
        host=args.host,
        port=args.port,
    )

    def ready() -> None:
        # SIGTERM stops as cleanly as Ctrl-C, so a benchmark can kill it and read the counts.
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, server.stop)
        print(f"serving {server.base_url}", flush=True)

    try:
        asyncio.run(server.serve_forever(on_ready=ready))
    except KeyboardInterrupt:
        pass
    finally:
        print(f"served {server.total} requests: {dict(server.counts)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
