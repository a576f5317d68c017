"""One replayed turn: model calls with retries, and the agent loop over the tool layer.

Without tools (or with tool mode ``none``) a turn is one model call. With tool mode ``replay``,
every tool call the candidate makes is answered by the :class:`~deploysim.tools.ToolLayer` and
the model is called again, until it ends its turn (no tool calls) or the step limit is hit
(finish reason ``step_limit``). Candidate mistakes (unknown tools, malformed arguments, loops)
are data: they are answered with errors and stored, not raised.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from deploysim.models import GenerateConfig, Generation, Model, ModelError
from deploysim.schema import Message, ToolDef
from deploysim.tools import ToolLayer


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter: ``base * 2**(attempt-1)`` capped, times U(0.5, 1)."""

    max_attempts: int = 5
    base_s: float = 0.5
    cap_s: float = 30.0
    max_retry_after_s: float = 120.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before attempt ``attempt + 1``."""
        backoff: float = min(self.cap_s, self.base_s * 2.0 ** (attempt - 1))
        backoff *= rng.uniform(0.5, 1.0)
        if retry_after is not None:
            return max(backoff, min(float(retry_after), self.max_retry_after_s))
        return backoff


@dataclass
class TurnOutcome:
    """A replayed turn: its new messages, or the failure that ended it."""

    messages: list[Message] = field(default_factory=list)
    finish_reason: str | None = None
    attempts: int = 0
    steps: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    latency_s: float = 0.0
    error_kind: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the turn completed (possibly at the step limit)."""
        return self.error_kind is None


@dataclass(frozen=True)
class Caller:
    """How a turn calls its model: the model, the generation settings, the retry policy and
    the randomness of the backoff (jitter only: results never depend on it)."""

    model: Model
    config: GenerateConfig
    retry: RetryPolicy
    rng: random.Random


async def call_with_retries(
    caller: Caller, messages: Sequence[Message], tools: Sequence[ToolDef]
) -> tuple[Generation | None, int, str | None, str | None]:
    """One model call with retries: (generation, attempts, error kind, error message)."""
    model, config, retry, rng = caller.model, caller.config, caller.retry, caller.rng
    timeout = config.timeout_s
    for attempt in range(1, retry.max_attempts + 1):
        try:
            call = model.generate(messages, tools, config)
            return await (asyncio.wait_for(call, timeout) if timeout else call), attempt, None, None
        except ModelError as e:
            kind, message, retryable, after = e.kind, str(e), e.retryable, e.retry_after
        except TimeoutError:
            kind, message, retryable, after = "timeout", f"no answer in {timeout} s", True, None
        except Exception as e:  # a provider bug must not lose the other prefixes
            kind, message, retryable, after = "internal", f"{type(e).__name__}: {e}", False, None
        if not retryable or attempt == retry.max_attempts:
            return None, attempt, kind, message[:500]
        await asyncio.sleep(retry.delay(attempt, after, rng))
    raise AssertionError("unreachable")  # pragma: no cover


async def run_turn(
    caller: Caller,
    messages: Sequence[Message],
    tools: Sequence[ToolDef],
    *,
    layer: ToolLayer | None = None,
    max_steps: int = 1,
    conversation: str | None = None,
    continuation: str = "",
    salt: str = "",
) -> TurnOutcome:
    """Replay one assistant turn after ``messages`` (see the module docstring)."""
    out = TurnOutcome()
    history = list(messages)
    if layer is not None and not tools:
        # Logs that record calls but no definitions (tau-bench): offer the logged tools, or
        # the candidate cannot call them.
        tools = layer.offered
    while True:
        gen, attempts, kind, error = await call_with_retries(caller, history, tools)
        out.attempts += attempts
        out.steps += 1
        if gen is None:
            out.error_kind, out.error = kind, error
            return out
        out.input_tokens += gen.usage.input_tokens
        out.output_tokens += gen.usage.output_tokens
        out.latency_s += gen.latency_s
        reply = gen.as_message()
        out.messages.append(reply)
        history.append(reply)
        out.finish_reason = gen.finish_reason
        if layer is None or not reply.tool_calls:
            return out
        for i, call in enumerate(reply.tool_calls):
            result = await layer.resolve(
                call,
                offered=tools,
                conversation=conversation,
                continuation=continuation,
                salt=f"{salt}:{out.steps}:{i}",
                history=history,
            )
            tool_message = result.message(call)
            out.messages.append(tool_message)
            history.append(tool_message)
        if out.steps >= max_steps:
            out.finish_reason = "step_limit"
            return out
