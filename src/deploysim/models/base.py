"""The model interface every provider implements: one async ``generate``.

A model is built from a *spec* string, ``provider/name?option=value&...`` (for example
``openai/gpt-4.1-mini?base_url=http://127.0.0.1:8000/v1&temperature=0``). The spec, never a
secret, is stored with every result so that any result can be reproduced from the store alone.
API keys come from the environment and never enter a spec.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Sequence
from typing import Literal, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

from pydantic import BaseModel, ConfigDict, Field

# ModelError lives in the one exception tree; re-exported here, where providers used to find it.
from deploysim.errors import ModelError as ModelError
from deploysim.errors import UsageError
from deploysim.schema import JSONValue, Message, ToolCall, ToolDef, canonical_hash

N = TypeVar("N", int, float)
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error", "unknown"]


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# Option names and URL query keys that carry secrets (an API key, a token, a password, an
# auth header): a spec is stored, hashed and printed, so none may hold one. Whole words of the
# name count ("access_token", "x-api-key"; not "max_tokens"), plus a few that hide inside words.
_SECRET_PARTS = frozenset(
    [
        "key",
        "apikey",
        "secret",
        "password",
        "passwd",
        "pwd",
        "token",
        "auth",
        "authorization",
        "bearer",
        "credential",
        "credentials",
        "cookie",
        "session",
        "sig",
        "signature",
        "header",
        "headers",
    ]
)
_SECRET_INSIDE = ("apikey", "secret", "password", "passwd")


def _secret_name(name: str) -> bool:
    low = name.lower()
    parts = re.split(r"[^a-z0-9]+", low)
    return any(p in _SECRET_PARTS for p in parts) or any(w in low for w in _SECRET_INSIDE)


def _url_secret(value: str) -> bool:
    """Whether ``value`` is a URL carrying credentials: userinfo, or a secret query key."""
    if "://" not in value:
        return False
    parts = urlsplit(value)
    if parts.username or parts.password or "@" in parts.netloc:
        return True
    return any(_secret_name(k) for k, _ in parse_qsl(parts.query, keep_blank_values=True))


class ModelSpec(_Value):
    """A parsed model spec: provider, model name, options (all strings, sorted)."""

    provider: str
    name: str
    options: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def parse(cls, spec: str) -> ModelSpec:
        """Parse ``provider/name?k=v&...``; the name may itself contain slashes."""
        head, _, query = spec.partition("?")
        provider, sep, name = head.partition("/")
        if not sep or not provider or not name:
            raise UsageError(
                f"model spec {spec!r} must look like provider/name[?option=value&...], "
                "e.g. openai/gpt-4.1-mini or llamacpp/smollm2-135m"
            )
        options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
        for key, value in options.items():
            # "*_env" options name an environment variable (e.g. api_key_env=MY_KEY): safe.
            if not key.endswith("_env") and _secret_name(key):
                raise UsageError(
                    f"model spec {provider}/{name}: option {key!r} looks like a secret; "
                    "secrets come from the environment (e.g. OPENAI_API_KEY) and are never part "
                    "of a spec"
                )
            if _url_secret(value):
                raise UsageError(
                    f"model spec {provider}/{name}: option {key!r} holds a URL with "
                    "credentials (user:password@ or a token in its query); give the bare URL "
                    "and the secret through the environment (e.g. OPENAI_API_KEY)"
                )
        return cls(provider=provider, name=name, options=dict(sorted(options.items())))

    def __str__(self) -> str:
        query = urlencode(self.options)
        return f"{self.provider}/{self.name}" + (f"?{query}" if query else "")

    @property
    def hash(self) -> str:
        """SHA-256 of the canonical spec string."""
        return canonical_hash(str(self))


class GenerateConfig(_Value):
    """Decoding settings for one call. ``None`` means the provider's default."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    logprobs: bool = False
    top_logprobs: int | None = None
    timeout_s: float | None = None


class Usage(_Value):
    """Token usage of one call."""

    input_tokens: int = 0
    output_tokens: int = 0


class Generation(_Value):
    """What a model returned: the new assistant turn and how it came about."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    reasoning: str | None = None
    finish_reason: FinishReason = "unknown"
    usage: Usage = Usage()
    latency_s: float = 0.0
    # First-token log-probabilities, when asked for: {token: logprob}. Judges read yes/no here.
    top_logprobs: dict[str, float] | None = None
    model: str | None = None
    raw: dict[str, JSONValue] = Field(default_factory=dict)

    def as_message(self) -> Message:
        """The generation as an assistant :class:`Message`."""
        from deploysim.schema import ReasoningPart, TextPart

        content: str | tuple[ReasoningPart | TextPart, ...] = self.text
        if self.reasoning:
            content = (ReasoningPart(reasoning=self.reasoning), TextPart(text=self.text))
        return Message(
            role="assistant", content=content, tool_calls=self.tool_calls, model=self.model
        )


class Model(abc.ABC):
    """Base of every provider. Subclasses implement :meth:`generate` and nothing else."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec

    @abc.abstractmethod
    async def generate(
        self, messages: Sequence[Message], tools: Sequence[ToolDef], config: GenerateConfig
    ) -> Generation:
        """Write the next assistant turn after ``messages``, with ``tools`` on offer.

        Raises :class:`ModelError` on failure (never anything else for provider errors).
        """

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release resources (HTTP clients, loaded weights)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec}>"


# --- spec options, read the same way by every provider ----------------------------------------


def check_options(spec: ModelSpec, allowed: frozenset[str]) -> None:
    """A :class:`UsageError` naming the spec's options outside ``allowed``, if any."""
    unknown = sorted(set(spec.options) - allowed)
    if unknown:
        raise UsageError(
            f"model spec {str(spec)!r}: unknown option(s) {', '.join(unknown)}; "
            f"the {spec.provider} provider takes {', '.join(sorted(allowed))}"
        )


def number_option(spec: ModelSpec, key: str, kind: type[N]) -> N | None:
    """Spec option ``key`` as ``kind`` (``None`` when absent); a :class:`UsageError` if not one."""
    value = spec.options.get(key)
    if value is None or value == "":
        return None
    try:
        return kind(value)
    except ValueError:
        raise UsageError(
            f"model spec {str(spec)!r}: option {key}={value!r} must be a"
            f"{'n integer' if kind is int else ' number'}"
        ) from None
