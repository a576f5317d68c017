"""``anthropic/<model>``: the Anthropic Messages API, via the official SDK.

::

    anthropic/claude-sonnet-4-5?max_tokens=1024
    anthropic/claude-sonnet-4-5?thinking=2048&max_tokens=4096

Spec options: ``base_url`` (default the Anthropic API; ``ANTHROPIC_BASE_URL`` is ignored so that
the spec alone says where results came from), ``max_tokens`` (required by the API: default
4096), ``timeout`` (seconds), ``thinking`` (``adaptive``, ``disabled``, or a token budget for
manual extended thinking; absent: the model's default), ``api_key_env`` (the *name* of the
variable holding the key, default ``ANTHROPIC_API_KEY``; a loopback ``base_url`` without one
gets a dummy key).

The API version the SDK sends (2026-10-21) has no sampling parameters: a request with
``temperature``, ``top_p`` or ``top_k`` is rejected, even at their defaults. So the spec refuses
them, and a :class:`GenerateConfig`'s ``temperature``, ``top_p`` and ``seed`` are not sent. The
API has no log-probabilities either: ``top_logprobs`` is always ``None``.

Mapping (``formats.md``, read in reverse): system and developer messages become the
``system`` prompt; tool messages become ``tool_result`` blocks (``is_error`` when the tool
failed) at the head of a user message; tool calls become ``tool_use`` blocks whose ``input`` is
the parsed arguments (``{}`` when they are not a JSON object); consecutive messages of one role
merge, as the API requires alternation. Reasoning goes back as ``thinking`` blocks only when it
has a signature and came from Anthropic; ``redacted`` reasoning as ``redacted_thinking``.

Errors: as the openai provider (:func:`~deploysim.models._http.status_kind`), with 529
``overloaded``; the SDK never retries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from deploysim.errors import ModelError, UsageError
from deploysim.ingest.common import parse_tool_call
from deploysim.models._http import DEFAULT_TIMEOUT_S, HTTPModel, written_by
from deploysim.models.base import (
    FinishReason,
    GenerateConfig,
    Generation,
    ModelSpec,
    Usage,
    number_option,
)
from deploysim.schema import ImagePart, Message, OtherPart, ReasoningPart, TextPart, ToolDef

if TYPE_CHECKING:
    import anthropic

__all__ = ["ANTHROPIC_BASE_URL", "AnthropicModel"]

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
OPTIONS = frozenset({"base_url", "max_tokens", "timeout", "thinking", "api_key_env"})
_SAMPLING = frozenset({"temperature", "top_p", "top_k"})
DEFAULT_MAX_TOKENS = 4096
# Content blocks the API takes verbatim from an OtherPart of that kind.
_PASSTHROUGH_BLOCKS = frozenset({"document", "search_result"})


class AnthropicModel(HTTPModel["anthropic.AsyncAnthropic"]):
    """A model behind the Anthropic Messages API; see the module docstring."""

    sdk = "anthropic"
    sdk_base_error = "AnthropicError"
    default_base_url = ANTHROPIC_BASE_URL
    spec_options = OPTIONS

    def __init__(self, spec: ModelSpec) -> None:
        sampling = sorted(set(spec.options) & _SAMPLING)
        if sampling:  # named apart from other unknown options: they used to be valid
            raise UsageError(
                f"model spec {str(spec)!r}: the Anthropic API takes no sampling parameters "
                f"({', '.join(sampling)}) since API version 2026-10-21; drop them"
            )
        super().__init__(spec)

    def _read_options(self) -> None:
        self.defaults = GenerateConfig(
            max_tokens=number_option(self.spec, "max_tokens", int),
            timeout_s=number_option(self.spec, "timeout", float),
        )
        self.thinking = _thinking(self.spec)

    def _new_client(self) -> anthropic.AsyncAnthropic:
        from anthropic import AsyncAnthropic, DefaultAioHttpClient

        # No spans: with content tracing they would copy prompts to a collector.
        options = self._client_options(DefaultAioHttpClient)
        return AsyncAnthropic(**options, open_telemetry=False)

    def request(
        self, messages: Sequence[Message], tools: Sequence[ToolDef], config: GenerateConfig
    ) -> dict[str, Any]:
        """The Messages API request body for a call (without the timeout)."""
        system = [m.text for m in messages if m.role in ("system", "developer") and m.text]
        d = self.defaults
        max_tokens = config.max_tokens if config.max_tokens is not None else d.max_tokens
        body: dict[str, Any] = {
            "model": self.spec.name,
            "max_tokens": max_tokens if max_tokens is not None else DEFAULT_MAX_TOKENS,
            "messages": self._messages(messages),
        }
        if system:
            body["system"] = "\n\n".join(system)
        if tools:
            body["tools"] = [
                {
                    "name": t.name,
                    **({"description": t.description} if t.description else {}),
                    "input_schema": t.parameters or {"type": "object", "properties": {}},
                }
                for t in tools
            ]
        if config.stop:
            body["stop_sequences"] = list(config.stop)
        if self.thinking is not None:
            body["thinking"] = self.thinking
        return body

    def _messages(self, messages: Sequence[Message]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for m in messages:
            if m.role in ("system", "developer"):
                continue
            role = "assistant" if m.role == "assistant" else "user"
            if m.role == "tool":
                blocks = [self._tool_result(m)]
            elif m.role == "user":
                blocks = self._user_blocks(m)
            else:
                blocks = self._assistant_blocks(m)
            if not blocks:  # the API rejects empty messages; an empty one says nothing
                continue
            if out and out[-1]["role"] == role:
                out[-1]["content"].extend(blocks)
            else:
                out.append({"role": role, "content": blocks})
        return out

    @staticmethod
    def _tool_result(m: Message) -> dict[str, Any]:
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": m.tool_call_id or ""}
        text = m.text or (f"Error: {m.error}" if m.error else "")
        if text:
            block["content"] = text
        if m.error:
            block["is_error"] = True
        return block

    def _user_blocks(self, m: Message) -> list[dict[str, Any]]:
        if isinstance(m.content, str):
            return [{"type": "text", "text": m.content}] if m.content else []
        blocks: list[dict[str, Any]] = []
        for p in m.content:
            if isinstance(p, TextPart):
                if p.text:
                    blocks.append({"type": "text", "text": p.text})
            elif isinstance(p, ImagePart):
                blocks.append({"type": "image", "source": _image_source(p.image)})
            elif isinstance(p, OtherPart):
                if p.kind not in _PASSTHROUGH_BLOCKS:
                    raise ModelError(
                        "bad_request",
                        f"{self.spec.provider}/{self.spec.name}: a {p.kind!r} content part "
                        "has no Anthropic equivalent",
                        retryable=False,
                    )
                blocks.append({"type": p.kind, **p.data})
        return blocks

    def _assistant_blocks(self, m: Message) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        parts = (TextPart(text=m.content),) if isinstance(m.content, str) else m.content
        ours = self._wrote(m)
        for p in parts:
            if isinstance(p, ReasoningPart):
                # Thinking blocks are checked by their signature: only Anthropic's own go back.
                if ours and p.redacted:
                    blocks.append({"type": "redacted_thinking", "data": p.reasoning})
                elif ours and p.signature:
                    blocks.append(
                        {"type": "thinking", "thinking": p.reasoning, "signature": p.signature}
                    )
            elif isinstance(p, TextPart) and p.text:
                blocks.append({"type": "text", "text": p.text})
        for c in m.tool_calls:
            blocks.append(
                {
                    "type": "tool_use",
                    "id": c.id,
                    "name": c.function,
                    "input": c.arguments if isinstance(c.arguments, dict) else {},
                }
            )
        return blocks

    def _wrote(self, m: Message) -> bool:
        """Whether ``m`` came from Anthropic: this provider and endpoint, or a logged ``claude-*``
        model (reasoning in real Anthropic logs carries Anthropic signatures)."""
        if m.model and m.model.startswith("claude"):
            return self.base_url == ANTHROPIC_BASE_URL
        return written_by(m.model, self.spec.provider, self.base_url, ANTHROPIC_BASE_URL)

    async def _send(self, body: dict[str, Any], timeout: float | None) -> bytes:
        raw = await self._sdk().messages.with_raw_response.create(
            **body, timeout=timeout if timeout is not None else DEFAULT_TIMEOUT_S
        )
        content: bytes = await raw.read()
        return content

    def _generation(self, data: dict[str, Any], latency: float) -> Generation:
        texts: list[str] = []
        thoughts: list[str] = []
        calls = []
        blocks = data["content"]
        if not isinstance(blocks, list):
            raise TypeError("'content' is not a list of blocks")
        for b in blocks:
            kind = b.get("type")
            if kind == "text":
                texts.append(b["text"])
            elif kind == "thinking":
                thoughts.append(b["thinking"])
            elif kind == "tool_use":
                calls.append(parse_tool_call(str(b["id"]), b.get("name"), b.get("input")))
        usage = data.get("usage") or {}
        return Generation(
            text="".join(texts),
            tool_calls=tuple(calls),
            reasoning="\n".join(thoughts) if thoughts else None,
            finish_reason=_FINISH.get(str(data.get("stop_reason")), "unknown"),
            usage=Usage(
                # input_tokens leaves out cached tokens; the prompt's size is all three.
                input_tokens=sum(
                    int(usage.get(k) or 0)
                    for k in (
                        "input_tokens",
                        "cache_creation_input_tokens",
                        "cache_read_input_tokens",
                    )
                ),
                output_tokens=int(usage.get("output_tokens") or 0),
            ),
            latency_s=latency,
            model=str(self.spec),
            raw=data,
        )


def _thinking(spec: ModelSpec) -> dict[str, Any] | None:
    """The ``thinking`` request field of the spec's ``thinking`` option."""
    value = spec.options.get("thinking")
    if not value:
        return None
    if value in ("adaptive", "disabled"):
        return {"type": value}
    budget = number_option(spec, "thinking", int)
    return {"type": "enabled", "budget_tokens": budget}


def _image_source(image: str) -> dict[str, Any]:
    """An image block's source: base64 data for a data URI, else a URL."""
    if image.startswith("data:") and ";base64," in image:
        media_type, _, data = image[5:].partition(";base64,")
        return {"type": "base64", "media_type": media_type, "data": data}
    return {"type": "url", "url": image}


# The API's stop_reason values, as deploysim names them (anything else: "unknown").
_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
