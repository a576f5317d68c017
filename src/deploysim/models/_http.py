"""What the HTTP providers (``openai``, ``anthropic``) share: one base class and its helpers.

Both providers call an HTTP API through its official SDK, and both SDKs come from one generator:
the same client options, the same error classes (timeout, connection, status), the same raw
response access. :class:`HTTPModel` does everything that follows from that once: spec options
checked, the API key resolved (never stored in a spec or a message), one client per event loop
(:class:`LoopClient`), the call timed, SDK errors turned into :class:`ModelError` without the key
(:func:`sdk_error`), and unreadable answers made ``malformed_response``. A provider module says
only what differs: its request body, how it sends it, and how it reads the answer.

No provider module imports another; both import this one. SDKs are imported where they are
used, not here: neither provider may need the other's package.
"""

from __future__ import annotations

import abc
import asyncio
import email.utils
import importlib
import ipaddress
import json
import math
import os
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, NamedTuple, Protocol, TypeVar
from urllib.parse import parse_qsl, urlsplit

from deploysim.errors import DeploysimError, ModelError, UsageError
from deploysim.models.base import (
    GenerateConfig,
    Generation,
    Model,
    ModelSpec,
    check_options,
)
from deploysim.schema import Message, ToolDef

__all__ = [
    "DUMMY_KEY",
    "HTTPModel",
    "LoopClient",
    "SDKErrors",
    "fast_http_client",
    "is_loopback",
    "parse_retry_after",
    "require_sdk",
    "resolve_api_key",
    "scrub",
    "sdk_error",
    "status_kind",
    "written_by",
]

T = TypeVar("T")
# Sent where a loopback server needs no key; the SDKs refuse to start without one.
DUMMY_KEY = "deploysim-no-key"
# Seconds, when neither the spec nor the call sets a timeout. Always passed: without one, the
# Anthropic SDK refuses large non-streaming max_tokens.
DEFAULT_TIMEOUT_S = 600.0


class _Closable(Protocol):
    async def close(self) -> None: ...


C = TypeVar("C", bound=_Closable)


class LoopClient(Generic[C]):
    """An SDK client made on first use in each event loop, by ``make``.

    An HTTP connection pool cannot outlive the loop it was made on, and callers (the CLI,
    tests) may run several loops one after another, so a new loop gets a new client.
    """

    def __init__(self, make: Callable[[], C]) -> None:
        self._make = make
        self._client: C | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> C:
        """The running loop's client."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client, self._loop = self._make(), loop
        return self._client

    async def aclose(self) -> None:
        """Close the client (its connection pool), when it belongs to the running loop."""
        if self._client is not None:
            client, self._client = self._client, None
            if self._loop is asyncio.get_running_loop():
                await client.close()


class SDKErrors(NamedTuple):
    """An SDK's exception classes: its base, and the three :func:`sdk_error` tells apart."""

    base: type[Exception]
    timeout: type[Exception]
    connection: type[Exception]
    status: type[Exception]


class HTTPModel(Model, Generic[C]):
    """Base of the providers behind an HTTP API and its official SDK; see the module docstring.

    A subclass sets the class attributes and implements :meth:`_read_options` (which sets at
    least :attr:`defaults`), :meth:`_new_client`, :meth:`request`, :meth:`_send` and
    :meth:`_generation`.
    """

    sdk: ClassVar[str]
    """The SDK's import name, which is also its provider's name in a spec."""
    sdk_base_error: ClassVar[str]
    """The name of the SDK's base exception class (the other three are named alike in both)."""
    default_base_url: ClassVar[str]
    spec_options: ClassVar[frozenset[str]]
    defaults: GenerateConfig
    """The spec's decoding settings; a :class:`GenerateConfig` value overrides them."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        check_options(spec, self.spec_options)
        self.base_url = spec.options.get("base_url") or self.default_base_url
        # A bad option value is named before a missing key or SDK.
        self._read_options()
        require_sdk(self.sdk)
        # The key's variable, unless the spec's api_key_env names another: as both SDKs name it.
        key_env = f"{self.sdk.upper()}_API_KEY"
        self._api_key = resolve_api_key(spec, key_env, self.base_url)
        self._client: LoopClient[C] = LoopClient(self._new_client)

    @property
    def who(self) -> str:
        """``provider/name``, as error messages name the model (the options left out)."""
        return f"{self.spec.provider}/{self.spec.name}"

    @abc.abstractmethod
    def _read_options(self) -> None:
        """Read the spec's option values into attributes; :attr:`defaults` at least."""

    @abc.abstractmethod
    def _new_client(self) -> C:
        """A new SDK client (for the running event loop), which never retries."""

    @abc.abstractmethod
    def request(
        self, messages: Sequence[Message], tools: Sequence[ToolDef], config: GenerateConfig
    ) -> dict[str, Any]:
        """The request body for a call (without the timeout)."""

    @abc.abstractmethod
    async def _send(self, body: dict[str, Any], timeout: float | None) -> bytes:
        """Send ``body`` with the client; the raw response body. SDK errors propagate."""

    @abc.abstractmethod
    def _generation(self, data: dict[str, Any], latency: float) -> Generation:
        """The :class:`Generation` in a decoded response body; any lookup error propagates."""

    def _client_options(self, aiohttp_client: Callable[[], Any]) -> dict[str, Any]:
        """The client options both SDKs take alike, ``aiohttp_client`` being the SDK's
        ``DefaultAioHttpClient`` (see :func:`fast_http_client`).

        The SDK never retries: the replay engine does, with backoff, so that retries are counted
        and bounded in one place.
        """
        timeout = self.defaults.timeout_s
        return {
            "api_key": self._api_key,
            "base_url": self.base_url,
            "max_retries": 0,
            "timeout": timeout if timeout is not None else DEFAULT_TIMEOUT_S,
            "http_client": fast_http_client(aiohttp_client),
        }

    def _sdk_errors(self) -> SDKErrors:
        """The SDK's exception classes (the SDK is imported here, not at module level)."""
        sdk = importlib.import_module(self.sdk)
        return SDKErrors(
            getattr(sdk, self.sdk_base_error),
            sdk.APITimeoutError,
            sdk.APIConnectionError,
            sdk.APIStatusError,
        )

    def _sdk(self) -> C:
        return self._client.get()

    async def aclose(self) -> None:
        """Close the HTTP client (its connection pool)."""
        await self._client.aclose()

    async def generate(
        self, messages: Sequence[Message], tools: Sequence[ToolDef], config: GenerateConfig
    ) -> Generation:
        """One API call; raises :class:`ModelError` on any failure."""
        body = self.request(messages, tools, config)
        timeout = config.timeout_s if config.timeout_s is not None else self.defaults.timeout_s
        errors = self._sdk_errors()
        start = time.perf_counter()
        try:
            content = await self._send(body, timeout)
        except errors.base as e:
            raise sdk_error(
                e, self.who, timeout=timeout, secret=self._api_key, sdk=errors
            ) from None
        latency = time.perf_counter() - start
        try:
            data = json.loads(scrub(content, self._api_key))
            if not isinstance(data, dict):
                raise ValueError(f"the body is a JSON {type(data).__name__}, not an object")
            return self._generation(data, latency)
        except (ValueError, KeyError, TypeError, IndexError, AttributeError, DeploysimError) as e:
            raise ModelError(
                "malformed_response",
                f"{self.who}: unreadable response: {e}"[:500],
                retryable=True,
            ) from None


def scrub(body: bytes, secret: str) -> bytes:
    """``body`` with ``secret`` replaced: a server that echoes the key (in an error or a debug
    field) must not put it in the store."""
    if secret and secret != DUMMY_KEY and secret.encode() in body:
        return body.replace(secret.encode(), b"[redacted]")
    return body


def written_by(model: str | None, provider: str, base_url: str, default_base_url: str) -> bool:
    """Whether a message's ``model`` (a spec string) names ``provider`` at ``base_url``.

    Parsed here rather than with :meth:`ModelSpec.parse`, which refuses option names such as
    ``api_key_env`` that look like secrets but are not.
    """
    if not model:
        return False
    head, _, query = model.partition("?")
    other, sep, _ = head.partition("/")
    if not sep or other != provider:
        return False
    try:
        options = dict(parse_qsl(query, keep_blank_values=True))
    except ValueError:
        return False
    return (options.get("base_url") or default_base_url) == base_url


def require_sdk(package: str) -> None:
    """Fail with a :class:`UsageError` naming the install when an SDK is missing."""
    try:
        __import__(package)
    except ModuleNotFoundError as e:
        # The SDKs are dependencies of deploysim itself (no extra): the install is broken.
        raise UsageError(
            f"model provider {package!r} needs the package {e.name!r}, one of deploysim's own "
            "dependencies (no extra): the install is incomplete; reinstall deploysim"
        ) from e


def is_loopback(url: str) -> bool:
    """Whether ``url`` points at this machine (127.0.0.0/8, ::1 or localhost)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_api_key(spec: ModelSpec, default_env: str, base_url: str) -> str:
    """The API key from the variable the spec's ``api_key_env`` names (else ``default_env``).

    A loopback ``base_url`` without a key gets a dummy one (local servers need none); any
    other endpoint without one is a :class:`UsageError` naming the variable to set.
    """
    env = spec.options.get("api_key_env") or default_env
    key = os.environ.get(env)
    if key:
        return key
    if is_loopback(base_url):
        return DUMMY_KEY
    raise UsageError(
        f"model {str(spec)!r} needs an API key: set the environment variable {env}"
        + ("" if "api_key_env" in spec.options else " (or name another with api_key_env=NAME)")
    )


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms``.

    ``None`` when absent or unreadable; never negative. ``headers`` must look keys up
    case-insensitively (as HTTP client header objects do).
    """
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000
            if math.isfinite(value):
                return max(value, 0.0)
        except ValueError:
            pass
    text = headers.get("retry-after")
    if text is None:
        return None
    try:
        value = float(text)
        return max(value, 0.0) if math.isfinite(value) else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT
        when = when.replace(tzinfo=UTC)
    current = datetime.now(UTC).timestamp() if now is None else now
    return max(when.timestamp() - current, 0.0)


def status_kind(status: int, body: object = None) -> tuple[str, bool]:
    """``(kind, retryable)`` of an HTTP error status.

    429 ``rate_limit``, 408 ``timeout``, 409 ``conflict`` and 5xx ``server_error`` (529
    ``overloaded``) are retryable; 401/403 ``auth``, 404 ``not_found``, a prompt longer than the
    context ``context_length``, and other 4xx ``bad_request`` are not.
    """
    if status == 429:
        return "rate_limit", True
    if status == 408:
        return "timeout", True
    if status == 409:
        return "conflict", True
    if status == 529:
        return "overloaded", True
    if status >= 500:
        return "server_error", True
    if status in (401, 403):
        return "auth", False
    if status == 404:
        return "not_found", False
    text = json.dumps(body).lower() if isinstance(body, dict) else str(body or "").lower()
    if any(s in text for s in ("context_length", "context length", "prompt is too long")):
        return "context_length", False
    return "bad_request", False


def sdk_error(
    e: Exception,
    who: str,
    *,
    timeout: float | None,
    secret: str,
    sdk: SDKErrors,
) -> ModelError:
    """A :class:`ModelError` for an exception of the OpenAI or Anthropic SDK (classes ``sdk``).

    The message never holds ``secret``; the SDK exception is not chained, because it holds the
    request, whose headers hold the key.
    """
    if isinstance(e, sdk.timeout) and not _refused_or_dropped(e):
        limit = f" after {timeout:g} s" if timeout is not None else ""
        return _redacted("timeout", f"{who}: request timed out{limit}", True, None, secret)
    if isinstance(e, sdk.connection):
        cause = e.__cause__ or e.__context__
        why = f": {type(cause).__name__}: {cause}" if cause is not None else ""
        return _redacted("connection", f"{who}: connection failed{why}", True, None, secret)
    if isinstance(e, sdk.status):
        status: int = getattr(e, "status_code", 0)
        body: object = getattr(e, "body", None)
        kind, retryable = status_kind(status, body)
        response = getattr(e, "response", None)
        headers = getattr(response, "headers", None)
        after = parse_retry_after(headers) if headers is not None else None
        message = f"{who}: HTTP {status} {kind}: {e}"
        if isinstance(body, str) and body and body not in message:
            message += f": {body}"
        return _redacted(kind, message, retryable, after, secret)
    # The SDK could not read a 2xx answer, or something it checks failed.
    return _redacted("malformed_response", f"{who}: {type(e).__name__}: {e}", True, None, secret)


def _refused_or_dropped(e: BaseException) -> bool:
    """Whether an SDK "timeout" was in fact a refused or dropped connection.

    The SDKs' aiohttp transport maps every aiohttp connection error to a connect *timeout*.
    What lies under it tells them apart: a timeout has a ``TimeoutError`` in its chain (aiohttp's
    timeouts subclass it); a refused or reset connection an ``OSError`` or aiohttp's
    ``ServerDisconnectedError``, and no ``TimeoutError``.
    """
    chain: list[BaseException] = []
    cause = e.__cause__ or e.__context__
    while cause is not None and len(chain) < 16:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    if any(isinstance(c, TimeoutError) for c in chain):
        return False
    return any(
        isinstance(c, OSError) or type(c).__name__ == "ServerDisconnectedError" for c in chain
    )


def fast_http_client(factory: Callable[[], T]) -> T | None:
    """The SDK's aiohttp transport, from its ``DefaultAioHttpClient`` ``factory``, or ``None``
    (the SDK's default httpx2 one).

    The client's CPU per call is what bounds a replay against a fast local server, and the
    aiohttp transport halves it: 328 against 672 calls a second measured at 64 concurrent calls
    (50 ms latency, 2 cores). It is used only when aiohttp is installed and no proxy variable is
    set, as it ignores them.
    """
    if any(scheme != "no" for scheme in urllib.request.getproxies()):
        return None
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return None
    return factory()


def _redacted(
    kind: str, message: str, retryable: bool, retry_after: float | None, secret: str
) -> ModelError:
    if secret and secret != DUMMY_KEY:
        message = message.replace(secret, "[redacted]")
    return ModelError(kind, message[:1000], retryable=retryable, retry_after=retry_after)
