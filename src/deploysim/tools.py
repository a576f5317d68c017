"""The tool layer: answers the tool calls a candidate makes during an agentic replay.

Resolution order, recorded on every result (``metadata["tool_source"]``):

1. ``unknown_tool`` / ``malformed``: candidate mistakes are data, answered with an error the
   way a real tool runtime would;
2. ``recorded``: the call matches (tool name + normalised arguments) a call/result pair in the
   ingested corpus, preferring the same conversation's own record (its world state);
3. ``unknown_id``: a call naming an id the trajectory's state never showed (the logged prefix's
   system and user texts and successful tool results, and this replay's own) is answered with
   a "not found" error in the logged errors' shape (:mod:`deploysim.tool_state`), never by
   the simulator, which would invent a success for it;
4. ``injected``: failure injection. Each tool fails in replay at the rate its results failed in
   the logs (configurable), so tools do not behave better in replay than in production (the
   method's biggest miss came from exactly that). Recorded answers carry their own logged
   failures, so injection applies to simulated answers only.
5. ``simulated``: a simulator model sees the tool definition, recorded results of that tool,
   the tool results of the session so far, what actually happened next in the log (unless the
   policy hides it: the method's ablation), and the call; its output must have the format of the
   recorded results (JSON with their common fields when they are JSON objects), retried on
   mismatch, recorded as ``simulator_error`` after that;

``scripted`` tools (a dict of canned answers) serve tests.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from deploysim.graders.judge import parse_json_object
from deploysim.models import GenerateConfig, Model, ModelError, get_model
from deploysim.schema import (
    Conversation,
    JSONValue,
    Message,
    ToolCall,
    ToolDef,
    canonical_hash,
    canonical_json,
)
from deploysim.tool_state import State, is_failure, logged_failures, not_found_shape

Source = Literal[
    "recorded",
    "simulated",
    "scripted",
    "injected",
    "unknown_tool",
    "malformed",
    "unknown_id",
    "simulator_error",
]


class ToolPolicy(BaseModel):
    """How a replay answers tool calls. Part of the replay spec (and its hash)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Literal["none", "replay"] = "none"  # none: the turn ends at the first tool call
    simulator: str | None = None  # model spec; None: unmatched calls get a tool error
    max_steps: int = 8  # model calls per replayed turn
    inject_failures: bool = True
    failure_rate_scale: float = 1.0
    max_attempts: int = 3
    seed: int = 0
    # ids: calls naming ids the state never showed get the logged "not found" error; off: the
    # simulator answers them (the behaviour before state checks; defaults keep spec hashes).
    state: Literal["ids", "off"] = "ids"
    show_continuation: bool = True  # False: the simulator never sees the logged continuation


@dataclass(frozen=True, slots=True)
class ToolResult:
    """The answer to one call, and where it came from."""

    content: str
    source: Source
    error: str | None = None

    def message(self, call: ToolCall) -> Message:
        """The tool message answering ``call``."""
        return Message(
            role="tool",
            content=self.content,
            tool_call_id=call.id,
            function=call.function,
            error=self.error,
            metadata={"tool_source": self.source},
        )


def normalise_arguments(arguments: Any) -> str:
    """Canonical text of call arguments: sorted keys, strings stripped."""

    def norm(v: Any) -> Any:
        if isinstance(v, str):
            return v.strip()
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, list):
            return [norm(x) for x in v]
        return v

    return canonical_json(norm(arguments))


@dataclass
class ToolDatabase:
    """Recorded call/result pairs and per-tool statistics from ingested conversations."""

    records: dict[tuple[str, str], list[tuple[str, Message]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    failures: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    definitions: dict[str, ToolDef] = field(default_factory=dict)
    # Per tool: each argument's JSON types and how many logged calls passed it (for tools the
    # logs call but never define, as tau-bench's trajectories).
    arguments: dict[str, dict[str, Counter[str]]] = field(default_factory=dict)

    def add(self, conv: Conversation) -> None:
        """Record every answered call of a conversation."""
        chash = conv.content_hash()
        for t in conv.tools:
            self.definitions.setdefault(t.name, t)
        for call, result in conv.tool_results():
            if result is None or call.parse_error:
                continue
            if isinstance(call.arguments, dict):
                for name, value in call.arguments.items():
                    per_tool = self.arguments.setdefault(call.function, {})
                    per_tool.setdefault(name, Counter())[_json_type(value)] += 1
            key = (call.function, normalise_arguments(call.arguments))
            self.records[key].append((chash, result))
            self.calls[call.function] += 1
            if is_failure(result):
                self.failures[call.function].append(result.text or result.error or "Error")
            elif len(self.examples[call.function]) < 5:
                self.examples[call.function].append(result.text)

    def offered(self) -> tuple[ToolDef, ...]:
        """The tools to offer a candidate whose logged prefix defines none: each logged
        definition, else one inferred from the logged calls (the arguments they passed, with
        the JSON types seen; required when every call passed it)."""
        out = []
        for tool in sorted(set(self.calls) | set(self.definitions)):
            if tool in self.definitions:
                out.append(self.definitions[tool])
                continue
            args = self.arguments.get(tool, {})
            n = self.calls[tool]
            properties: dict[str, JSONValue] = {
                name: {"type": sorted(types)[0] if len(types) == 1 else sorted(types)}
                for name, types in sorted(args.items())
            }
            required: list[JSONValue] = [
                name for name, types in sorted(args.items()) if sum(types.values()) >= n
            ]
            out.append(
                ToolDef(
                    name=tool,
                    description=f"(definition inferred from {n} logged calls)",
                    parameters={"type": "object", "properties": properties, "required": required},
                )
            )
        return tuple(out)

    def error_rate(self, tool: str) -> float:
        """Share of the tool's logged calls that failed."""
        n = self.calls.get(tool, 0)
        return len(self.failures.get(tool, [])) / n if n else 0.0

    def known(self, tool: str) -> bool:
        """Whether the tool was ever called in the logs (or defined)."""
        return tool in self.calls or tool in self.definitions

    def lookup(self, call: ToolCall, conversation: str | None) -> Message | None:
        """The recorded result for a call, the same conversation's first."""
        found = self.records.get((call.function, normalise_arguments(call.arguments)))
        if not found:
            return None
        for chash, result in found:
            if chash == conversation:
                return result
        return found[0][1]

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per tool: calls, error rate, and whether its results are JSON."""
        return {
            t: {
                "calls": n,
                "error_rate": self.error_rate(t),
                "json": result_shape(self.examples.get(t, []))[0] != "text",
            }
            for t, n in sorted(self.calls.items())
        }


def _shown_examples(examples: Sequence[str], budget: int = 4000, whole: int = 3000) -> list[str]:
    """The recorded outputs the simulator sees: shortest first, whole (a clipped JSON example
    teaches broken JSON), up to ``budget`` characters; at least one, clipped past ``whole``."""
    shown: list[str] = []
    used = 0
    for e in sorted(examples, key=len)[:3]:
        if shown and used + len(e) > budget:
            break
        shown.append(e[:whole])
        used += len(e)
    return shown


def _output_budget(shown: Sequence[str], arguments: str) -> int:
    """Tokens for a simulated output: room for the longest example shown plus the call's
    arguments, which outputs often echo (a booking of five flights for three passengers is
    longer than any recorded one); about 2 characters a token for JSON, 512 to 2,048."""
    longest = max((len(e) for e in shown), default=0)
    return max(512, min(2048, (longest + len(arguments)) // 2))


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "null"


def result_shape(examples: Sequence[str]) -> tuple[str, frozenset[str]]:
    """The format recorded results share: ("object", common keys), ("array"|"number"|"text")."""
    parsed: list[Any] = []
    for text in examples:
        try:
            parsed.append(json.loads(text))
        except (json.JSONDecodeError, TypeError):
            return "text", frozenset()
    if not parsed:
        return "text", frozenset()
    if all(isinstance(p, dict) for p in parsed):
        keys = frozenset.intersection(*(frozenset(p) for p in parsed))
        return "object", keys
    if all(isinstance(p, list) for p in parsed):
        return "array", frozenset()
    if all(isinstance(p, int | float) and not isinstance(p, bool) for p in parsed):
        return "number", frozenset()
    return "text", frozenset()


def matches_shape(text: str, shape: tuple[str, frozenset[str]]) -> str | None:
    """The output normalised to the recorded format, or None when it does not fit."""
    kind, keys = shape
    body = text.strip()
    if body.startswith("```"):
        body = body.strip("`")
        body = body[body.find("\n") + 1 :] if "\n" in body else body
    if kind == "text":
        return body or None
    try:
        value = json.loads(body)
    except json.JSONDecodeError:
        obj = parse_json_object(body) if kind == "object" else None
        if obj is None:
            return None
        value = obj
    if kind == "object" and isinstance(value, dict) and keys <= set(value):
        return json.dumps(value)
    if kind == "array" and isinstance(value, list):
        return json.dumps(value)
    if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return json.dumps(value)
    return None


def render_state(history: Sequence[Message], budget: int = 2000) -> str:
    """The successful tool results of the session so far, shown oldest first: whole ones,
    newest first, while they fit in ``budget`` characters. Only a newest result longer than
    the budget is cut, and marked as cut."""
    lines: list[str] = []
    used = 0
    for m in reversed(history):
        if m.role != "tool" or is_failure(m) or not m.text.strip():
            continue
        line = f"{m.function or 'tool'}: {m.text}"
        if used + len(line) > budget:
            # Never a silent cut: a small simulator copies a record cut mid-key into its
            # answer, which is then broken JSON (session 10, benchmarks/simulator.py).
            if not lines:
                lines.append(line[:budget] + " ... (cut)")
            break
        lines.append(line)
        used += len(line)
    return "\n".join(reversed(lines))


SIMULATOR_SYSTEM = (
    "You simulate a software tool of an application. Reply with the tool's output only: "
    "no explanations, no code fences."
)
SIMULATOR_PROMPT = (
    "Tool: {name}\nDefinition: {definition}\n\n"
    "Real outputs of this tool, for the format:\n{examples}\n\n"
    "Earlier tool results in this session (the state of the world; stay consistent with it):"
    "\n{state}\n\n"
    "What actually happened next in the original session (for the state of the world):\n"
    "{continuation}\n\n"
    "Call: {name}({arguments})\n\n"
    "Output of the tool for this call, in exactly the same format as the real outputs:"
)


class ToolLayer:
    """Answers a candidate's tool calls for one replay run; see the module docstring."""

    def __init__(
        self,
        db: ToolDatabase,
        policy: ToolPolicy,
        *,
        simulator: Model | None = None,
        scripted: Mapping[str, str] | None = None,
    ) -> None:
        self.db = db
        self.policy = policy
        self.scripted = dict(scripted or {})
        self.simulator = simulator
        if simulator is None and policy.simulator:
            self.simulator = get_model(policy.simulator)

    @cached_property
    def offered(self) -> tuple[ToolDef, ...]:
        """The tools offered when a prefix defines none (:meth:`ToolDatabase.offered`, once)."""
        return self.db.offered()

    async def resolve(
        self,
        call: ToolCall,
        *,
        offered: Sequence[ToolDef],
        conversation: str | None,
        continuation: str,
        salt: str,
        history: Sequence[Message] | None = None,
    ) -> ToolResult:
        """Answer one call (``salt`` makes failure injection deterministic per call) made
        after ``history``: the prefix and the replay so far, the state its ids are checked
        against (None: the state is not known, no check)."""
        offered_names = {t.name for t in offered}
        if call.function in self.scripted:
            return ToolResult(self.scripted[call.function], "scripted")
        known = call.function in offered_names or (not offered and self.db.known(call.function))
        if not known:
            message = f"Error: unknown tool '{call.function}'"
            return ToolResult(message, "unknown_tool", error=message)
        if call.parse_error or not isinstance(call.arguments, dict | type(None)):
            message = f"Error: the arguments of '{call.function}' are not a valid JSON object"
            return ToolResult(message, "malformed", error=message)
        recorded = self.db.lookup(call, conversation)
        if recorded is not None:
            return ToolResult(recorded.text, "recorded", error=recorded.error)
        if self.policy.state == "ids" and history is not None:
            unknown = State.of(history).unknown(call.arguments)
            if unknown is not None:
                corpus = [text for texts in self.db.failures.values() for text in texts]
                text = not_found_shape(logged_failures(history), corpus).render(unknown)
                return ToolResult(text, "unknown_id", error=text)
        if self.policy.inject_failures and self.db.failures.get(call.function):
            rate = min(1.0, self.db.error_rate(call.function) * self.policy.failure_rate_scale)
            rng = random.Random(canonical_hash([self.policy.seed, salt]))
            if rng.random() < rate:
                text = rng.choice(self.db.failures[call.function])
                return ToolResult(text, "injected", error=text)
        if self.simulator is None:
            message = f"Error: no recorded result for this call to '{call.function}'"
            return ToolResult(message, "simulator_error", error=message)
        if not self.policy.show_continuation:
            continuation = ""
        return await self.simulate(call, offered, continuation, history or ())

    async def simulate(
        self,
        call: ToolCall,
        offered: Sequence[ToolDef],
        continuation: str,
        history: Sequence[Message],
    ) -> ToolResult:
        """The simulator's answer to ``call`` (no recorded lookup, no state check, no injected
        failure): shown the tool's definition and recorded examples, the state ``history``
        establishes and ``continuation`` (the logged one, or "" when it must not see it)."""
        assert self.simulator is not None
        examples = self.db.examples.get(call.function, [])
        shape = result_shape(examples)
        shown = _shown_examples(examples)
        arguments = json.dumps(call.arguments)
        definition = next((t for t in offered if t.name == call.function), None)
        definition = definition or self.db.definitions.get(call.function)
        prompt = SIMULATOR_PROMPT.format(
            name=call.function,
            definition=definition.model_dump_json(exclude_none=True) if definition else "unknown",
            examples="\n".join(f"- {e}" for e in shown) or "(none recorded)",
            state=render_state(history) or "(none)",
            continuation=continuation[:3000] or "(nothing)",
            arguments=arguments,
        )
        messages = [
            Message(role="system", content=SIMULATOR_SYSTEM),
            Message(role="user", content=prompt),
        ]
        problem = "no attempt"
        for attempt in range(self.policy.max_attempts):
            try:
                gen = await self.simulator.generate(
                    messages,
                    (),
                    GenerateConfig(
                        temperature=0.0 if attempt == 0 else 0.7,
                        max_tokens=_output_budget(shown, arguments),
                        seed=attempt,
                    ),
                )
            except ModelError as e:
                problem = f"{e.kind}: {e}"
                continue
            fitted = matches_shape(gen.text, shape)
            if fitted is not None:
                return ToolResult(fitted, "simulated")
            problem = f"output did not match the recorded {shape[0]} format"
        message = f"Error: tool simulator failed ({problem})"
        return ToolResult(message, "simulator_error", error=message)

    async def aclose(self) -> None:
        """Release the simulator model."""
        if self.simulator is not None:
            await self.simulator.aclose()
