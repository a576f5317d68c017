"""The openai provider against the real loopback server (deploysim.testing.openai_server)."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import math
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from aiohttp import web

from deploysim.errors import UsageError
from deploysim.models import (
    GenerateConfig,
    Generation,
    Model,
    ModelError,
    ModelSpec,
    _http,
    get_model,
)
from deploysim.models._http import parse_retry_after, status_kind
from deploysim.models.openai_compat import OpenAIModel
from deploysim.schema import Message, ReasoningPart, TextPart, ToolCall, ToolDef
from deploysim.testing import LoopbackServer, OpenAIServer

T = TypeVar("T")
KEY = "sk-deploysim-FAKE-7f3a9c1e-do-not-leak"
KEY_ENV = "DEPLOYSIM_TEST_OPENAI_KEY"
HI = [Message(role="user", content="hello there")]
CFG = GenerateConfig()


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def model(base_url: str, **options: str) -> OpenAIModel:
    # Built from a ModelSpec, not parsed: ModelSpec.parse refuses option names with "key" in them.
    spec = ModelSpec(
        provider="openai",
        name="test-model",
        options={"base_url": base_url, "api_key_env": KEY_ENV, **options},
    )
    m = get_model(spec)
    assert isinstance(m, OpenAIModel)
    return m


async def call(m: Model, *args: Any) -> Generation:
    try:
        return await m.generate(*args)
    finally:
        await m.aclose()


def generate(
    m: OpenAIModel,
    messages: list[Message] = HI,
    tools: tuple[ToolDef, ...] = (),
    config: GenerateConfig = CFG,
) -> Generation:
    return run(call(m, messages, tools, config))


def failure(m: OpenAIModel, config: GenerateConfig = CFG) -> ModelError:
    with pytest.raises(ModelError) as info:
        generate(m, config=config)
    return info.value


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIServer]:
    # The server checks the key: every passing call proves the key was sent.
    with OpenAIServer(api_key=KEY) as srv:
        yield srv


@pytest.fixture
def srv(server: OpenAIServer) -> OpenAIServer:
    server.reset()
    server.text = None
    server.retry_after = 1
    return server


def test_completion_is_parsed(srv: OpenAIServer) -> None:
    g = generate(model(srv.base_url))
    assert g.text == "You said: hello there"
    assert g.finish_reason == "stop"
    assert g.usage.input_tokens == 2 and g.usage.output_tokens == 4
    assert g.latency_s > 0
    assert g.tool_calls == () and g.reasoning is None and g.top_logprobs is None
    assert g.model is not None and g.model.startswith("openai/test-model?")
    assert g.raw["id"] == "chatcmpl-1"
    assert srv.counts == {"ok": 1}


def test_messages_are_sent_without_deploysim_keys(srv: OpenAIServer) -> None:
    messages = [
        Message(role="developer", content="Be brief.", metadata={"k": "v"}, id="m0"),
        Message(role="user", content=(TextPart(text="a"), TextPart(text="b")), timestamp="t"),
        Message(role="assistant", content="hi", model="gpt-4o", error="x", name="bot"),
        Message(role="user", content="again"),
    ]
    generate(model(srv.base_url), messages)
    sent = srv.received[-1]["messages"]
    assert sent == [
        # A compatible server gets developer as system: chat templates know no developer role.
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "a\nb"},
        {"role": "assistant", "content": "hi", "name": "bot"},
        {"role": "user", "content": "again"},
    ]


def test_spec_defaults_and_config_overrides(srv: OpenAIServer) -> None:
    m = model(srv.base_url, temperature="0.3", max_tokens="7", seed="11", top_p="0.5")
    generate(m, config=GenerateConfig(temperature=0.9, stop=("END",)))
    body = srv.received[-1]
    assert body["model"] == "test-model"
    assert body["temperature"] == 0.9  # config wins
    assert body["top_p"] == 0.5 and body["seed"] == 11 and body["max_tokens"] == 7
    assert body["stop"] == ["END"]
    assert "logprobs" not in body and "tools" not in body


def test_official_endpoint_gets_max_completion_tokens_and_developer_role(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    m = get_model("openai/gpt-4.1-mini?max_tokens=9")
    assert isinstance(m, OpenAIModel)
    body = m.request([Message(role="developer", content="d"), *HI], (), CFG)
    assert body["max_completion_tokens"] == 9 and "max_tokens" not in body
    assert body["messages"][0]["role"] == "developer"


def test_tool_calls_are_sent_and_parsed(srv: OpenAIServer) -> None:
    srv.tool_calls = True
    tools = (
        ToolDef(name="lookup", description="Look it up.", parameters={"type": "object"}),
        ToolDef(name="bare"),
    )
    try:
        g = generate(model(srv.base_url), tools=tools)
    finally:
        srv.tool_calls = False
    assert srv.received[-1]["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "description": "Look it up.",
                "parameters": {"type": "object"},
            },
        },
        {"type": "function", "function": {"name": "bare"}},
    ]
    assert g.finish_reason == "tool_calls" and g.text == ""
    assert g.tool_calls == (
        ToolCall(id="call_1", function="lookup", arguments={"input": "hello there"}),
    )


def test_unparseable_tool_arguments_are_kept_raw(srv: OpenAIServer) -> None:
    srv.tool_calls, srv.tool_arguments = True, '{"city": "Par'
    try:
        g = generate(model(srv.base_url), tools=(ToolDef(name="weather"),))
    finally:
        srv.tool_calls, srv.tool_arguments = False, None
    (c,) = g.tool_calls
    assert c.function == "weather" and c.arguments is None
    assert c.raw_arguments == '{"city": "Par' and c.parse_error


def test_tool_history_is_sent_in_openai_shape(srv: OpenAIServer) -> None:
    call = ToolCall(id="c1", function="lookup", arguments={"q": 1})
    messages = [
        *HI,
        Message(role="assistant", tool_calls=(call,)),
        Message(role="tool", tool_call_id="c1", function="lookup", error="no such thing"),
        Message(role="tool", tool_call_id="c1", function="lookup", content="42"),
    ]
    generate(model(srv.base_url), messages)
    sent = srv.received[-1]["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "lookup", "arguments": '{"q": 1}'},
            }
        ],
    }
    assert sent[2] == {"role": "tool", "content": "Error: no such thing", "tool_call_id": "c1"}
    assert sent[3] == {"role": "tool", "content": "42", "tool_call_id": "c1"}


def test_first_token_logprobs(srv: OpenAIServer) -> None:
    srv.text, srv.logprobs = "Yes", {"Yes": -0.1, "No": -2.5, "Maybe": -4.0}
    try:
        g = generate(model(srv.base_url), config=GenerateConfig(logprobs=True, top_logprobs=2))
    finally:
        srv.logprobs = None
    body = srv.received[-1]
    assert body["logprobs"] is True and body["top_logprobs"] == 2
    assert g.top_logprobs == {"Yes": -0.1, "No": -2.5}
    assert math.isclose(sum(math.exp(v) for v in g.top_logprobs.values()), 0.987, abs_tol=1e-3)


def test_reasoning_is_parsed_and_goes_back_only_to_its_writer(srv: OpenAIServer) -> None:
    srv.reasoning = "Let me think."
    m = model(srv.base_url)
    try:
        g = generate(m)
    finally:
        srv.reasoning = None
    assert g.reasoning == "Let me think."
    ours = g.as_message()
    theirs = Message(
        role="assistant",
        content=(ReasoningPart(reasoning="Other thoughts.", signature="sig"), TextPart(text="x")),
        model="anthropic/claude-x",
    )
    generate(m, [*HI, ours, Message(role="user", content="more")])
    sent = srv.received[-1]["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": "You said: hello there",
        "reasoning_content": "Let me think.",
    }
    generate(m, [*HI, theirs, Message(role="user", content="more")])
    assert srv.received[-1]["messages"][1] == {"role": "assistant", "content": "x"}


@pytest.fixture(params=["aiohttp", "httpx2"])
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both HTTP transports the SDK may use: aiohttp (the default here) and httpx2 (used when a
    proxy is configured or aiohttp is missing). They raise different errors for one fault."""
    if request.param == "httpx2":
        monkeypatch.setattr(_http, "fast_http_client", lambda factory: None)
    return str(request.param)


@pytest.mark.parametrize(
    ("fault", "kind", "retryable", "retry_after"),
    [
        ("rate_limit", "rate_limit", True, 1.0),
        ("server_error", "server_error", True, None),
        ("unavailable", "server_error", True, 1.0),
        ("hang", "timeout", True, None),
        ("drop", "connection", True, None),
        ("malformed", "malformed_response", True, None),
        ("bad_request", "bad_request", False, None),
    ],
)
def test_faults_map_to_model_errors(
    srv: OpenAIServer,
    transport: str,
    fault: str,
    kind: str,
    retryable: bool,
    retry_after: float | None,
) -> None:
    srv.inject(fault)
    m = model(srv.base_url)
    # A short timeout only where the server hangs: elsewhere a first call on a busy CI machine
    # (client set-up, connection) took over 0.3 s once and read as a timeout.
    err = failure(m, GenerateConfig(timeout_s=0.3 if fault == "hang" else 10.0))
    assert (err.kind, err.retryable, err.retry_after) == (kind, retryable, retry_after)
    assert KEY not in str(err)
    # Exactly one request: the SDK's own retries are off (retrying is the caller's job).
    assert srv.counts == {fault: 1}
    assert generate(m).text == "You said: hello there"  # the next call is served


def test_wrong_key_is_an_auth_error(srv: OpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-some-other-key-0000")
    err = failure(model(srv.base_url))
    assert (err.kind, err.retryable) == ("auth", False)
    assert srv.counts == {"auth": 1}


def test_retry_after_http_date(srv: OpenAIServer) -> None:
    srv.retry_after = email.utils.formatdate(time.time() + 30, usegmt=True)
    srv.inject("rate_limit")
    err = failure(model(srv.base_url))
    assert err.kind == "rate_limit"
    assert err.retry_after is not None and 25 <= err.retry_after <= 31


def test_connection_refused_is_retryable(transport: str) -> None:
    with OpenAIServer() as gone:
        url = gone.base_url
    err = failure(model(url))
    assert (err.kind, err.retryable) == ("connection", True)


def test_parse_retry_after() -> None:
    now = 1_000_000.0
    date = email.utils.formatdate(now + 120, usegmt=True)
    cases: list[tuple[dict[str, str], float | None]] = [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": date}, 120.0),
        ({"retry-after": email.utils.formatdate(now - 60, usegmt=True)}, 0.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "nan"}, None),
        ({}, None),
    ]
    for headers, expected in cases:
        assert parse_retry_after(headers, now=now) == expected, headers


def test_aiohttp_transport_only_without_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    def make() -> str:
        return "aiohttp client"

    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "localhost")
    assert _http.fast_http_client(make) == "aiohttp client"
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    assert _http.fast_http_client(make) is None


def test_status_kinds() -> None:
    assert status_kind(404) == ("not_found", False)
    assert status_kind(403) == ("auth", False)
    assert status_kind(422) == ("bad_request", False)
    assert status_kind(408) == ("timeout", True)
    assert status_kind(529) == ("overloaded", True)
    assert status_kind(502) == ("server_error", True)
    body = {"message": "This model's maximum context length is 8192 tokens", "code": None}
    assert status_kind(400, body) == ("context_length", False)


class _EchoingServer(LoopbackServer):
    """A careless server that echoes the request's Authorization header in its answers."""

    def __init__(self, status: int) -> None:
        super().__init__()
        self.status = status

    def make_app(self) -> web.Application:
        async def handle(request: web.Request) -> web.Response:
            auth = request.headers.get("Authorization", "")
            if self.status != 200:
                return web.json_response({"error": {"message": f"bad {auth}"}}, status=self.status)
            message = {"role": "assistant", "content": f"you sent {auth}"}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            return web.json_response({"choices": [choice], "debug": {"auth": auth}})

        app = web.Application()
        app.router.add_post("/v1/chat/completions", handle)
        return app


@pytest.mark.parametrize("status", [200, 400, 500])
def test_api_key_never_leaks(status: int) -> None:
    with _EchoingServer(status) as srv:
        m = model(srv.url + "/v1")
        assert KEY not in repr(m) and KEY not in str(m.spec)
        if status == 200:
            g = generate(m)
            assert "[redacted]" in g.text
            assert KEY not in g.model_dump_json()
        else:
            err = failure(m)
            assert "[redacted]" in str(err)
            assert KEY not in str(err) and KEY not in repr(err)
            # The SDK error (its request holds the key in a header) is not chained.
            assert err.__cause__ is None and err.__suppress_context__


def test_missing_key_is_a_usage_error_except_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(UsageError, match="OPENAI_API_KEY"):
        get_model("openai/gpt-4.1-mini")
    with OpenAIServer() as srv:  # no key required, none set
        g = run(call(get_model(f"openai/local?base_url={srv.base_url}"), HI, (), CFG))
    assert g.text == "You said: hello there"


def test_bad_options_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="unknown option"):
        get_model("openai/m?base_url=http://127.0.0.1:1/v1&temprature=0")
    with pytest.raises(UsageError, match="max_tokens"):
        get_model("openai/m?base_url=http://127.0.0.1:1/v1&max_tokens=lots")


def test_one_model_serves_several_event_loops(srv: OpenAIServer) -> None:
    # As the CLI does: one asyncio.run per stage, the model closed at the end of each.
    m = model(srv.base_url)
    for _ in range(2):
        assert run(call(m, HI, (), CFG)).text == "You said: hello there"


def test_64_concurrent_calls_overlap() -> None:
    with OpenAIServer(latency=0.05) as srv:
        m = model(srv.base_url)

        async def burst() -> list[Generation]:
            try:
                prompts = [[Message(role="user", content=f"q{i}")] for i in range(64)]
                return await asyncio.gather(*(m.generate(p, (), CFG) for p in prompts))
            finally:
                await m.aclose()

        start = time.perf_counter()
        results = run(burst())
        elapsed = time.perf_counter() - start
        assert [g.text for g in results] == [f"You said: q{i}" for i in range(64)]
        assert srv.counts == {"ok": 64}
    # Served one after another this would take 64 * 0.05 = 3.2 s.
    assert elapsed < 1.0, elapsed


def test_fault_rates_are_deterministic_per_seed() -> None:
    def kinds(seed: int) -> dict[str, int]:
        with OpenAIServer(rates={"server_error": 0.3, "rate_limit": 0.2}, seed=seed) as srv:
            body = json.dumps({"model": "m", "messages": []}).encode()
            for _ in range(40):
                req = urllib.request.Request(
                    srv.base_url + "/chat/completions", data=body, method="POST"
                )
                with contextlib.suppress(urllib.error.HTTPError):  # the injected faults
                    urllib.request.urlopen(req, timeout=5).read()
            return dict(srv.counts)

    first = kinds(3)
    assert first == kinds(3)
    assert sum(first.values()) == 40 and first["server_error"] > 0 and first["rate_limit"] > 0


def test_unknown_fault_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown request kind"):
        OpenAIServer(schedule=["explode"])


def test_server_runs_as_a_module() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "deploysim.testing.openai_server", "--latency", "0.01"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("serving http://127.0.0.1:"), line
        base_url = line.split()[1]
        assert generate(model(base_url)).text == "You said: hello there"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "served 1 requests: {'ok': 1}" in err
    assert "Warning" not in err, err
