"""``openai/<model>``: any OpenAI-compatible Chat Completions endpoint, via the official SDK.

OpenAI itself, vLLM, SGLang, the llama.cpp server, Ollama and other compatible servers::

    openai/gpt-4.1-mini?temperature=0
    openai/Qwen/Qwen3-8B?base_url=http://127.0.0.1:8000/v1&max_tokens=512

Spec options (strings, as every spec option): ``base_url`` (default the OpenAI API; the
``OPENAI_BASE_URL`` variable is ignored so that the spec alone says where results came from),
``temperature``, ``top_p``, ``max_tokens``, ``seed``, ``timeout`` (seconds), ``api_key_env``
(the *name* of the variable holding the key, default ``OPENAI_API_KEY``; a loopback
``base_url`` without one gets a dummy key). A :class:`GenerateConfig` value overrides the
spec's.

The SDK never retries (``max_retries=0``): the replay engine retries with backoff, so that
retries are counted and bounded in one place. Every failure is a :class:`ModelError`; see
:func:`~deploysim.models._http.status_kind` for the kinds.

Compatible servers differ from OpenAI in two ways this module smooths over: for a ``base_url``
other than OpenAI's, ``developer`` messages are sent as ``system`` (most chat templates know no
``developer`` role) and the length limit as ``max_tokens`` (OpenAI's reasoning models accept
only ``max_completion_tokens``, which not every server knows).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from deploysim.ingest.common import parse_tool_call
from deploysim.ingest.openai import to_openai_message
from deploysim.models._http import HTTPModel, written_by
from deploysim.models.base import FinishReason, GenerateConfig, Generation, Usage, number_option
from deploysim.schema import Message, ToolCall, ToolDef

if TYPE_CHECKING:
    import openai
    from openai._types import RequestOptions

__all__ = ["OPENAI_BASE_URL", "OpenAIModel"]

OPENAI_BASE_URL = "https://api.openai.com/v1"
OPTIONS = frozenset(
    {"base_url", "temperature", "top_p", "max_tokens", "seed", "timeout", "api_key_env"}
)
DEFAULT_TOP_LOGPROBS = 5
# Keys a Chat Completions message may carry, per role. to_openai_message also writes
# deploysim's own keys (id, model, timestamp, error, metadata), which strict servers reject.
_ALLOWED_KEYS: dict[str, frozenset[str]] = {
    "system": frozenset({"role", "content", "name"}),
    "developer": frozenset({"role", "content", "name"}),
    "user": frozenset({"role", "content", "name"}),
    "assistant": frozenset({"role", "content", "name", "tool_calls"}),
    "tool": frozenset({"role", "content", "tool_call_id"}),
}


class OpenAIModel(HTTPModel["openai.AsyncOpenAI"]):
    """A model behind an OpenAI-compatible Chat Completions endpoint; see the module docstring."""

    sdk = "openai"
    sdk_base_error = "OpenAIError"
    default_base_url = OPENAI_BASE_URL
    spec_options = OPTIONS

    def _read_options(self) -> None:
        spec = self.spec
        self.is_openai = urlsplit(self.base_url).hostname == "api.openai.com"
        self.defaults = GenerateConfig(
            temperature=number_option(spec, "temperature", float),
            top_p=number_option(spec, "top_p", float),
            max_tokens=number_option(spec, "max_tokens", int),
            seed=number_option(spec, "seed", int),
            timeout_s=number_option(spec, "timeout", float),
        )

    def _new_client(self) -> openai.AsyncOpenAI:
        from openai import AsyncOpenAI, DefaultAioHttpClient

        return AsyncOpenAI(**self._client_options(DefaultAioHttpClient))

    def request(
        self, messages: Sequence[Message], tools: Sequence[ToolDef], config: GenerateConfig
    ) -> dict[str, Any]:
        """The Chat Completions request body for a call (without the timeout)."""
        body: dict[str, Any] = {
            "model": self.spec.name,
            "messages": [self._message(m) for m in messages],
        }
        if tools:
            body["tools"] = [
                {"type": "function", "function": t.model_dump(mode="json", exclude_none=True)}
                for t in tools
            ]
        d = self.defaults
        for key, value, default in (
            ("temperature", config.temperature, d.temperature),
            ("top_p", config.top_p, d.top_p),
            ("seed", config.seed, d.seed),
        ):
            chosen = value if value is not None else default
            if chosen is not None:
                body[key] = chosen
        max_tokens = config.max_tokens if config.max_tokens is not None else d.max_tokens
        if max_tokens is not None:
            body["max_completion_tokens" if self.is_openai else "max_tokens"] = max_tokens
        if config.stop:
            body["stop"] = list(config.stop)
        if config.logprobs:
            body["logprobs"] = True
            top = config.top_logprobs
            body["top_logprobs"] = DEFAULT_TOP_LOGPROBS if top is None else top
        return body

    def _message(self, m: Message) -> dict[str, Any]:
        out = to_openai_message(m)
        msg: dict[str, Any] = {k: v for k, v in out.items() if k in _ALLOWED_KEYS[m.role]}
        if m.role == "developer" and not self.is_openai:
            msg["role"] = "system"
        content = msg.get("content")
        if isinstance(content, list):
            # Reasoning is provider-bound: it goes back only to the endpoint and model that
            # wrote it, as the reasoning_content field such servers emit.
            parts = [p for p in content if p.get("type") != "reasoning"]
            if m.reasoning and self._wrote(m):
                msg["reasoning_content"] = m.reasoning
            if all(p.get("type") == "text" for p in parts):
                # Plain text as a string: some servers (older llama.cpp, Ollama) take no parts.
                content = "\n".join(p["text"] for p in parts)
                if not content and m.tool_calls:
                    content = None
            else:
                content = parts
            msg["content"] = content
        if m.role == "tool" and m.error and not m.text:
            msg["content"] = f"Error: {m.error}"
        return msg

    def _wrote(self, m: Message) -> bool:
        """Whether ``m`` came from this provider at this endpoint (its ``model`` is a spec)."""
        return written_by(m.model, self.spec.provider, self.base_url, OPENAI_BASE_URL)

    async def _send(self, body: dict[str, Any], timeout: float | None) -> bytes:
        import httpx2

        options: RequestOptions = {} if timeout is None else {"timeout": timeout}
        # The SDK's generic post, not chat.completions.create: create() walks every message
        # through its TypedDict transform, a third of the client's CPU per call, to no effect
        # on a body built here. Auth, timeouts and error mapping are the SDK's all the same.
        response = await self._sdk().post(
            "/chat/completions", cast_to=httpx2.Response, body=body, options=options
        )
        return response.content

    def _generation(self, data: dict[str, Any], latency: float) -> Generation:
        choice = data["choices"][0]
        msg = choice["message"]
        content = msg.get("content")
        if isinstance(content, list):  # some servers answer with parts
            text = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        else:
            text = content if isinstance(content, str) else ""
        reasoning = msg.get("reasoning_content") or msg.get("reasoning")
        calls: list[ToolCall] = []
        for i, c in enumerate(msg.get("tool_calls") or ()):
            fn = c["function"]
            calls.append(
                parse_tool_call(
                    str(c.get("id") or f"call_{i}"), fn.get("name"), fn.get("arguments")
                )
            )
        usage = data.get("usage") or {}
        return Generation(
            text=text,
            tool_calls=tuple(calls),
            reasoning=reasoning if isinstance(reasoning, str) and reasoning else None,
            finish_reason=_FINISH.get(str(choice.get("finish_reason")), "unknown"),
            usage=Usage(
                input_tokens=int(usage.get("prompt_tokens") or 0),
                output_tokens=int(usage.get("completion_tokens") or 0),
            ),
            latency_s=latency,
            top_logprobs=_first_token_logprobs(choice.get("logprobs")),
            model=str(self.spec),
            raw=data,
        )


def _first_token_logprobs(logprobs: Any) -> dict[str, float] | None:
    """``{token: logprob}`` of the first generated token: its alternatives and itself."""
    if not isinstance(logprobs, dict) or not logprobs.get("content"):
        return None
    first = logprobs["content"][0]
    out: dict[str, float] = {}
    for alt in first.get("top_logprobs") or ():
        # Two byte sequences can decode to one string: keep the likelier.
        out[alt["token"]] = max(float(alt["logprob"]), out.get(alt["token"], -math.inf))
    token = first.get("token")
    if isinstance(token, str) and token not in out and first.get("logprob") is not None:
        out[token] = float(first["logprob"])
    return out


# The API's finish_reason values, as deploysim names them (anything else: "unknown").
_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}
