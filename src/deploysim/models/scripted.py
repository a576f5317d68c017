"""``scripted/<name>``: a deterministic model for tests (users' tests too).

Responses are a pure function of (script, prefix): the same prefix always gets the same answer,
whatever the order or concurrency of calls. Scripts:

- ``scripted/echo``: "You said: <last user text>".
- ``scripted/constant?text=...``: always ``text``.
- ``scripted/refuse?rate=0.3``: refuses a deterministic ``rate`` share of prefixes (by hash),
  answers the rest.
- ``scripted/yes?p=0.8``: a judge stand-in; answers "Yes" with first-token logprobs
  ``{"Yes": log p, "No": log(1-p)}``.
- ``scripted/fail?rate=0.2&kind=rate_limit``: raises a retryable :class:`ModelError` on a
  deterministic share of prefixes.
- ``scripted/call?tool=NAME&args=JSON&times=1``: an agent stand-in: calls ``tool`` with
  ``args`` (raw text, so malformed JSON can be tested) until ``times`` tool results follow the
  last user message, then answers "Done: <last tool result>".

Options ``latency`` (seconds, slept with asyncio) and ``insert``/``insert_rate`` (append a
distinctive text to a deterministic share of responses) help tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

from deploysim.errors import ModelError, UsageError
from deploysim.ingest.common import parse_tool_call
from deploysim.models.base import GenerateConfig, Generation, Model, ModelSpec, Usage
from deploysim.schema import Message, ToolDef, canonical_hash

SCRIPTS = ("echo", "constant", "refuse", "yes", "fail", "call")
REFUSAL = "I'm sorry, but I can't help with that."


class ScriptedModel(Model):
    """A deterministic model driven by a named script; see the module docstring."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        if spec.name not in SCRIPTS:
            raise UsageError(f"unknown scripted model {spec.name!r}; choose one of {SCRIPTS}")
        self.latency = float(spec.options.get("latency", 0))

    def _share(self, messages: Sequence[Message], salt: str) -> float:
        """A deterministic number in [0, 1) from the prefix."""
        h = canonical_hash([salt, *(m.content_hash() for m in messages)])
        return int(h[:12], 16) / float(1 << 48)

    async def generate(
        self, messages: Sequence[Message], tools: Sequence[ToolDef], config: GenerateConfig
    ) -> Generation:
        if self.latency:
            await asyncio.sleep(self.latency)
        opts = self.spec.options
        last_user = next((m.text for m in reversed(messages) if m.role == "user"), "")
        name = self.spec.name
        logprobs: dict[str, float] | None = None
        if name == "fail" and self._share(messages, "fail") < float(opts.get("rate", 1)):
            kind = opts.get("kind", "rate_limit")
            raise ModelError(kind, f"scripted failure ({kind})", retryable=kind != "bad_request")
        if name == "call":
            return self._call(messages)
        if name == "echo" or name == "fail":
            text = f"You said: {last_user}"
        elif name == "constant":
            text = opts.get("text", "OK")
        elif name == "refuse":
            refuse = self._share(messages, "refuse") < float(opts.get("rate", 0.5))
            text = REFUSAL if refuse else f"Sure. Here is help with: {last_user[:200]}"
        else:  # yes
            p = min(max(float(opts.get("p", 0.5)), 1e-6), 1 - 1e-6)
            text = "Yes" if p >= 0.5 else "No"
            logprobs = {"Yes": math.log(p), "No": math.log(1 - p)}
        insert = opts.get("insert")
        if insert and self._share(messages, "insert") < float(opts.get("insert_rate", 1)):
            text = f"{text} {insert}"
        if config.max_tokens is not None:
            words = text.split(" ")
            if len(words) > config.max_tokens:
                text = " ".join(words[: config.max_tokens])
                return self._gen(messages, text, "length", logprobs)
        return self._gen(messages, text, "stop", logprobs)

    def _call(self, messages: Sequence[Message]) -> Generation:
        opts = self.spec.options
        results: list[Message] = []
        for m in messages:
            results = [] if m.role == "user" else [*results, m] if m.role == "tool" else results
        if len(results) >= int(opts.get("times", 1)):
            last = results[-1].text if results else ""
            return self._gen(messages, f"Done: {last}", "stop", None)
        raw = opts.get("args", "{}")
        call = parse_tool_call(f"call_{len(results)}", opts.get("tool", "lookup"), raw)
        return Generation(
            tool_calls=(call,), finish_reason="tool_calls", model=str(self.spec), latency_s=0.0
        )

    def _gen(
        self,
        messages: Sequence[Message],
        text: str,
        finish: str,
        logprobs: dict[str, float] | None,
    ) -> Generation:
        return Generation(
            text=text,
            finish_reason="length" if finish == "length" else "stop",
            usage=Usage(
                input_tokens=sum(len(m.text.split()) for m in messages),
                output_tokens=len(text.split()),
            ),
            latency_s=self.latency,
            top_logprobs=logprobs,
            model=str(self.spec),
        )
