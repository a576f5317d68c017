"""The anthropic provider against a loopback fake of the Messages API (no network)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter, deque
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from deploysim.errors import UsageError
from deploysim.models import GenerateConfig, Generation, ModelError, ModelSpec, _http, get_model
from deploysim.models.anthropic import AnthropicModel
from deploysim.schema import (
    ImagePart,
    Message,
    OtherPart,
    ReasoningPart,
    TextPart,
    ToolCall,
    ToolDef,
)
from deploysim.testing import LoopbackServer

JSON = "application/json"
KEY = "sk-ant-deploysim-FAKE-55e1b0-do-not-leak"
HI = [Message(role="user", content="hello there")]
CFG = GenerateConfig()


def _error(status: int, etype: str, message: str, **headers: str) -> web.Response:
    body = {"type": "error", "error": {"type": etype, "message": message}}
    return web.json_response(body, status=status, headers=headers)


def _bearer(request: web.Request) -> str:
    return request.headers.get("Authorization", "").removeprefix("Bearer ")


class FakeAnthropic(LoopbackServer):
    """``POST /v1/messages``: checks the key, answers ``reply`` blocks (default an echo of
    the last user text), or the next injected fault."""

    def __init__(self) -> None:
        super().__init__()
        self.faults: deque[str] = deque()
        self.reply: list[dict[str, Any]] | None = None
        self.stop_reason = "end_turn"
        self.received: list[dict[str, Any]] = []
        self.counts: Counter[str] = Counter()

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/messages", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        kind = self.faults.popleft() if self.faults else "ok"
        # SDK 2.x sends the key as a bearer token; the API also takes x-api-key.
        if KEY not in (request.headers.get("x-api-key"), _bearer(request)):
            kind = "auth"
        self.counts[kind] += 1
        body = await request.json()
        self.received.append(body)
        if kind == "auth":
            return _error(401, "authentication_error", "invalid x-api-key")
        if kind == "rate_limit":
            return _error(429, "rate_limit_error", "slow down", **{"retry-after": "3"})
        if kind == "overloaded":
            return _error(529, "overloaded_error", "Overloaded")
        if kind == "server_error":
            return _error(500, "api_error", "Internal server error")
        if kind == "bad_request":
            return _error(400, "invalid_request_error", "messages: roles must alternate")
        if kind == "too_long":
            return _error(400, "invalid_request_error", "prompt is too long: 210000 tokens")
        if kind == "hang":
            await asyncio.sleep(30)
        if kind == "malformed":
            return web.Response(body=b'{"id": "msg_1", "content": [', content_type=JSON)
        last = body["messages"][-1]["content"]
        text = last if isinstance(last, str) else last[-1].get("text", "")
        answer = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": self.reply or [{"type": "text", "text": f"You said: {text}"}],
            "stop_reason": self.stop_reason,
            "usage": {"input_tokens": 10, "output_tokens": 4, "cache_read_input_tokens": 5},
        }
        data = json.dumps(answer).encode()
        if kind == "drop":
            response = web.StreamResponse(headers={"Content-Type": JSON})
            response.content_length = len(data)
            await response.prepare(request)
            await response.write(data[:20])
            assert request.transport is not None
            request.transport.close()
            return response
        return web.Response(body=data, content_type=JSON)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as srv:
        yield srv


@pytest.fixture
def srv(server: FakeAnthropic) -> FakeAnthropic:
    server.faults.clear()
    server.received.clear()
    server.counts.clear()
    server.reply, server.stop_reason = None, "end_turn"
    return server


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)


def model(base_url: str, **options: str) -> AnthropicModel:
    options = {"base_url": base_url, **options}
    m = get_model(ModelSpec(provider="anthropic", name="claude-test", options=options))
    assert isinstance(m, AnthropicModel)
    return m


def generate(
    m: AnthropicModel,
    messages: list[Message] = HI,
    tools: tuple[ToolDef, ...] = (),
    config: GenerateConfig = CFG,
) -> Generation:
    async def go() -> Generation:
        try:
            return await m.generate(messages, tools, config)
        finally:
            await m.aclose()

    return asyncio.run(go())


def failure(m: AnthropicModel, config: GenerateConfig = CFG) -> ModelError:
    with pytest.raises(ModelError) as info:
        generate(m, config=config)
    return info.value


def test_completion_is_parsed(srv: FakeAnthropic) -> None:
    g = generate(model(srv.url))
    assert g.text == "You said: hello there"
    assert g.finish_reason == "stop"
    # Cached prompt tokens count as input: input_tokens leaves them out.
    assert (g.usage.input_tokens, g.usage.output_tokens) == (15, 4)
    assert g.top_logprobs is None and g.latency_s > 0
    body = srv.received[-1]
    assert body["model"] == "claude-test" and body["max_tokens"] == 4096
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": HI[0].text}]}]
    assert "system" not in body and "tools" not in body


def test_thinking_and_tool_use_are_parsed(srv: FakeAnthropic) -> None:
    srv.reply = [
        {"type": "thinking", "thinking": "Weather needs a lookup.", "signature": "sig1"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
    ]
    srv.stop_reason = "tool_use"
    g = generate(model(srv.url, thinking="1024"))
    assert g.reasoning == "Weather needs a lookup."
    assert g.text == "Checking."
    assert g.tool_calls == (
        ToolCall(id="toolu_1", function="weather", arguments={"city": "Paris"}),
    )
    assert g.finish_reason == "tool_calls"
    assert srv.received[-1]["thinking"] == {"type": "enabled", "budget_tokens": 1024}


def test_request_mapping(srv: FakeAnthropic) -> None:
    m = model(srv.url, thinking="adaptive")
    calls = (
        ToolCall(id="t1", function="weather", arguments={"city": "Paris"}),
        ToolCall(id="t2", function="clock", raw_arguments="{bad", parse_error="x"),
    )
    messages = [
        Message(role="system", content="Be brief."),
        Message(role="developer", content="Use tools."),
        Message(role="user", content="Weather and time in Paris?", metadata={"k": 1}),
        Message(
            role="assistant",
            content=(
                ReasoningPart(reasoning="Need both.", signature="sigA"),
                ReasoningPart(reasoning="opaque-data", redacted=True),
                TextPart(text="Let me check."),
            ),
            tool_calls=calls,
            model=str(m.spec),  # written by this provider at this endpoint: thinking goes back
        ),
        Message(role="tool", tool_call_id="t1", function="weather", content="Sunny"),
        Message(role="tool", tool_call_id="t2", function="clock", error="clock is down"),
        Message(role="user", content="And tomorrow?"),
        Message(
            role="assistant",
            content=(ReasoningPart(reasoning="other", signature="s"), TextPart(text="Rain.")),
            model="openai/gpt-x",
        ),
        Message(role="user", content=""),
        Message(role="user", content="Thanks"),
    ]
    tools = (
        ToolDef(name="weather", description="Weather now.", parameters={"type": "object"}),
        ToolDef(name="clock"),
    )
    cfg = GenerateConfig(temperature=0.2, top_p=0.9, max_tokens=99, seed=5, stop=("###",))
    generate(m, messages, tools, cfg)
    body = srv.received[-1]
    assert body["system"] == "Be brief.\n\nUse tools."
    assert body["max_tokens"] == 99 and body["stop_sequences"] == ["###"]
    assert body["thinking"] == {"type": "adaptive"}
    # API version 2026-10-21 rejects any sampling parameter; it never had a seed.
    assert not {"temperature", "top_p", "top_k", "seed"} & set(body)
    assert body["tools"] == [
        {"name": "weather", "description": "Weather now.", "input_schema": {"type": "object"}},
        {"name": "clock", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather and time in Paris?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Need both.", "signature": "sigA"},
                {"type": "redacted_thinking", "data": "opaque-data"},
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "t1", "name": "weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "t2", "name": "clock", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "Sunny"},
                {
                    "type": "tool_result",
                    "tool_use_id": "t2",
                    "content": "Error: clock is down",
                    "is_error": True,
                },
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
        # Another provider's reasoning is dropped; the empty user message too.
        {"role": "assistant", "content": [{"type": "text", "text": "Rain."}]},
        {"role": "user", "content": [{"type": "text", "text": "Thanks"}]},
    ]


def test_images_and_unsupported_parts(srv: FakeAnthropic) -> None:
    m = model(srv.url)
    picture = Message(
        role="user",
        content=(
            ImagePart(image="data:image/png;base64,iVBORw0KGgo="),
            ImagePart(image="https://example.invalid/cat.png"),
            TextPart(text="What is this?"),
        ),
    )
    generate(m, [picture])
    assert srv.received[-1]["messages"][0]["content"][:2] == [
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.invalid/cat.png"}},
    ]
    audio = Message(role="user", content=(OtherPart(kind="input_audio", data={"x": 1}),))
    with pytest.raises(ModelError) as info:
        generate(m, [audio])
    assert (info.value.kind, info.value.retryable) == ("bad_request", False)


@pytest.mark.parametrize(
    ("fault", "kind", "retryable", "retry_after"),
    [
        ("rate_limit", "rate_limit", True, 3.0),
        ("overloaded", "overloaded", True, None),
        ("server_error", "server_error", True, None),
        ("hang", "timeout", True, None),
        ("drop", "connection", True, None),
        ("malformed", "malformed_response", True, None),
        ("bad_request", "bad_request", False, None),
        ("too_long", "context_length", False, None),
    ],
)
@pytest.mark.parametrize("transport", ["aiohttp", "httpx2"])
def test_faults_map_to_model_errors(
    srv: FakeAnthropic,
    monkeypatch: pytest.MonkeyPatch,
    transport: str,
    fault: str,
    kind: str,
    retryable: bool,
    retry_after: float | None,
) -> None:
    if transport == "httpx2":  # as when a proxy is configured or aiohttp is missing
        monkeypatch.setattr(_http, "fast_http_client", lambda factory: None)
    srv.faults.append(fault)
    m = model(srv.url)
    # A short timeout only where the server hangs (a busy CI machine once took over 0.3 s for
    # a first call elsewhere, as in the OpenAI provider's test).
    err = failure(m, GenerateConfig(timeout_s=0.3 if fault == "hang" else 10.0))
    assert (err.kind, err.retryable, err.retry_after) == (kind, retryable, retry_after)
    assert srv.counts == {fault: 1}  # no SDK retries
    assert generate(m).text == "You said: hello there"


def test_wrong_key_is_an_auth_error_and_never_leaks(
    srv: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = "sk-ant-another-key-9999"
    monkeypatch.setenv("MY_ANTHROPIC_KEY", other)
    m = model(srv.url, api_key_env="MY_ANTHROPIC_KEY")
    err = failure(m)
    assert (err.kind, err.retryable) == ("auth", False)
    assert other not in str(err) and other not in repr(m)
    assert err.__cause__ is None


def test_key_is_scrubbed_from_echoing_answers(srv: FakeAnthropic) -> None:
    srv.reply = [{"type": "text", "text": f"your key is {KEY}"}]
    m = model(srv.url)
    g = generate(m)
    assert g.text == "your key is [redacted]"
    assert KEY not in g.model_dump_json() and KEY not in repr(m)


def test_logged_claude_reasoning_goes_back_to_the_anthropic_api() -> None:
    m = get_model("anthropic/claude-x")  # the real endpoint: request() only, nothing is sent
    assert isinstance(m, AnthropicModel)

    def blocks(writer: str) -> list[dict[str, Any]]:
        thought = ReasoningPart(reasoning="hmm", signature="sig")
        said = Message(role="assistant", content=(thought, TextPart(text="ok")), model=writer)
        body = m.request([*HI, said, Message(role="user", content="go on")], (), CFG)
        content: list[dict[str, Any]] = body["messages"][1]["content"]
        return content

    assert blocks("claude-3-7-sonnet-20250219")[0] == {
        "type": "thinking",
        "thinking": "hmm",
        "signature": "sig",
    }
    text_only = [{"type": "text", "text": "ok"}]
    assert blocks("gpt-4o") == text_only
    assert blocks("anthropic/claude-x?base_url=http://127.0.0.1:1") == text_only


def test_missing_key_and_bad_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(UsageError, match="ANTHROPIC_API_KEY"):
        get_model("anthropic/claude-x")
    with pytest.raises(UsageError, match="unknown option"):
        get_model("anthropic/claude-x?base_url=http://127.0.0.1:9&thinkin=1")
    with pytest.raises(UsageError, match="no sampling parameters"):
        get_model("anthropic/claude-x?base_url=http://127.0.0.1:9&temperature=0")
    with pytest.raises(UsageError, match="thinking"):
        get_model("anthropic/claude-x?base_url=http://127.0.0.1:9&thinking=lots")
