"""A state-consistent tool simulator on tau-bench: made-up ids fail, supported calls stay valid.

Two measurements over the shared tau-bench airline trajectories (tasks 0-24), split by task into
a dev part (tasks 0-12, tuned on) and a test part (tasks 13-24, reported untouched):

1. **Unknown ids.** Every logged call that names an airline id (``user_id``, ``reservation_id``,
   ``payment_id``, ``flight_number``: this benchmark's own list, not the tool layer's
   recognition rules) is altered: one such id, chosen with a seeded draw, is replaced by a
   fresh value of the same pattern (digits by other digits, capitals by other capitals) that
   occurs nowhere in the data. The tool layer answers it after the logged prefix; the answer
   counts when it is an error of the logged "not found" shape (a regex built from the logged
   errors: their id and thing replaced by wildcards) that names the altered id. Target >= 90%.
2. **Supported calls.** Logged calls with a successful JSON result whose ids the prefix shows,
   sampled evenly; their recorded answers hidden, the simulator model answers with the prefix
   (its tool results are the state) but without the logged continuation (it holds the answer).
   Counted valid when the layer accepted the output as the recorded format (JSON with every
   key the tool's recorded objects share) and it parses again here. Target >= 95%.

Also printed: real successful calls the state check would reject (false "not found"s).

    nice -n 10 .venv/bin/python benchmarks/simulator.py [SIMULATOR] [N_SUPPORTED_PER_PART]
        [--baseline N]   # also N altered calls with state checks off: what the simulator says
        [--out FILE.jsonl]  # one row per supported call (its attempts' raw outputs); rerun
                            # with the same file and simulator to resume after a crash
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploysim.ingest import ingest_file
from deploysim.models.base import GenerateConfig, Generation, Model
from deploysim.schema import Conversation, Message, ToolCall, ToolDef
from deploysim.stats import jeffreys_interval
from deploysim.store import Store
from deploysim.tool_state import State, is_failure
from deploysim.tools import ToolDatabase, ToolLayer, ToolPolicy, result_shape
from tools import TAU  # benchmarks/tools.py: the shared tau-bench file

ID_FIELDS = ("user_id", "reservation_id", "payment_id", "flight_number")
DEV_TASKS = range(13)


@dataclass(frozen=True)
class Case:
    """One logged call, the prefix before it, its logged result and its part (dev/test)."""

    part: str
    conv: Conversation
    history: tuple[Message, ...]
    call: ToolCall
    result: Message


class _Recorder(Model):
    """The simulator model, keeping each attempt's raw output (why an answer was invalid)."""

    def __init__(self, inner: Model) -> None:
        super().__init__(inner.spec)
        self.inner = inner
        self.attempts: list[dict[str, Any]] = []

    async def generate(
        self, messages: Sequence[Message], tools: Sequence[ToolDef], config: GenerateConfig
    ) -> Generation:
        gen = await self.inner.generate(messages, tools, config)
        self.attempts.append(
            {
                "text": gen.text,
                "finish_reason": gen.finish_reason,
                "output_tokens": gen.usage.output_tokens,
                "max_tokens": config.max_tokens,
            }
        )
        return gen

    async def aclose(self) -> None:
        await self.inner.aclose()


def _why(attempt: dict[str, Any], keys: list[str]) -> str:
    """Why one simulator attempt was not a result of the recorded format."""
    if attempt["finish_reason"] == "length":
        return f"cut at the token budget ({attempt['max_tokens']})"
    body = attempt["text"].strip().strip("`")
    value: Any = None
    for start in (0, body.find("{")):  # as it is, else from its first brace (after prose)
        try:
            value = json.loads(body[max(0, start) :])
            break
        except json.JSONDecodeError:
            continue
    else:
        return "not JSON" + (" (prose)" if not body.startswith(("{", "[")) else "")
    if isinstance(value, dict) and not keys:
        return "an object, not the recorded array or number"  # objects share some keys here
    if isinstance(value, dict):
        missing = sorted(set(keys) - set(value))
        return f"missing keys {missing}" if missing else "valid"
    if isinstance(value, list | int | float) and not keys:
        return "valid"  # an array or number tool (those share no keys)
    return f"a JSON {type(value).__name__}, not an object"


def _done(path: Path | None, simulator: str) -> dict[str, dict[str, Any]]:
    """Rows already in ``path`` for this simulator, by call key (a resumed run skips them)."""
    if path is None or not path.exists():
        return {}
    rows = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return {r["key"]: r for r in rows if r["simulator"] == simulator}


def _cases(convs: list[Conversation], task_of: dict[str, int]) -> list[Case]:
    out = []
    for conv in convs:
        first_user = next((m.text for m in conv.messages if m.role == "user"), "")
        part = "dev" if task_of.get(first_user, -1) in DEV_TASKS else "test"
        for i, m in enumerate(conv.messages):
            for call in m.tool_calls:
                later = conv.messages[i + 1 :]
                result = next((r for r in later if r.tool_call_id == call.id), None)
                if result is not None and not call.parse_error:
                    out.append(Case(part, conv, conv.messages[:i], call, result))
    return out


def _id_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths to the benchmark's airline id fields inside a call's arguments."""
    if isinstance(value, dict):
        return [
            p
            for k, v in value.items()
            for p in (
                [(*path, k)] if k in ID_FIELDS and isinstance(v, str) else _id_paths(v, (*path, k))
            )
        ]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _id_paths(v, (*path, i))]
    return []


def _fresh(value: str, rng: random.Random, corpus: str) -> str:
    """A value of the same pattern that the data never holds."""
    if not any(c.isdigit() or c.isupper() for c in value):
        value += "7"  # nothing to redraw: a digit to redraw
    while True:
        new = "".join(
            rng.choice("0123456789")
            if c.isdigit()
            else rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
            if c.isupper()
            else c
            for c in value
        )
        if new != value and new.lower() not in corpus:
            return new


def _alter(args: Any, path: tuple[Any, ...], new: str) -> Any:
    args = json.loads(json.dumps(args))
    node = args
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = new
    return args


def _logged_shapes(failures: list[str]) -> list[re.Pattern[str]]:
    """The logged "not found" errors as patterns: the id and the thing become wildcards."""
    shapes = set()
    for text in failures:
        m = re.fullmatch(r"(\W*\w+\W+)(.*?)\s+not found(\W*)", text.strip())
        if m is None:
            continue
        words = m.group(2).split()
        named = bool(words) and any(c.isdigit() for c in words[-1])
        thing = r"[a-z][a-z ]*" + (r" (?P<id>\S+)" if named else "")
        shapes.add(re.escape(m.group(1)) + thing + r" not found" + re.escape(m.group(3)))
    return [re.compile(s) for s in sorted(shapes)]


def _is_logged_shape(text: str, value: str, shapes: list[re.Pattern[str]]) -> bool:
    for shape in shapes:
        m = shape.fullmatch(text.strip())
        if m is not None and m.groupdict().get("id", value) == value:
            return True
    return False


def _valid(text: str, shape: tuple[str, frozenset[str]]) -> bool:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return False
    if shape[0] == "object":
        return isinstance(value, dict) and shape[1] <= set(value)
    if shape[0] == "array":
        return isinstance(value, list)
    return isinstance(value, int | float)


async def _resolve(layer: ToolLayer, case: Case, call: ToolCall) -> tuple[str, str]:
    r = await layer.resolve(
        call,
        offered=case.conv.tools,
        conversation=case.conv.content_hash(),
        continuation="",
        salt="bench",
        history=case.history,
    )
    return r.source, r.content


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("simulator", nargs="?", default="llamacpp/qwen2.5-coder-1.5b")
    parser.add_argument("n_supported", nargs="?", type=int, default=20)
    parser.add_argument("--baseline", type=int, default=0)
    parser.add_argument("--parts", default="dev,test")
    parser.add_argument("--out", type=Path, default=None)
    opts = parser.parse_args()
    raw = json.loads(TAU.read_text())
    task_of = {
        next(m["content"] for m in r["traj"] if m["role"] == "user"): r["task_id"] for r in raw
    }
    corpus_text = TAU.read_text().lower()
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "s.db") as st:
        ingest_file(TAU, st)
        convs = list(st.conversations(with_tool_calls=True))
    db = ToolDatabase()
    for conv in convs:
        db.add(conv)
    cases = [c for c in _cases(convs, task_of) if c.part in opts.parts.split(",")]
    failures = [text for texts in db.failures.values() for text in texts]
    shapes = _logged_shapes(failures)
    print(f"{len(convs)} trajectories, {len(cases)} answered calls; logged shapes:")
    for s in shapes:
        print("  ", s.pattern)

    # The state check on real calls: successful ones it would refuse are false "not found"s.
    for part in opts.parts.split(","):
        real = [c for c in cases if c.part == part and not is_failure(c.result)]
        refused = [c for c in real if State.of(c.history).unknown(c.call.arguments) is not None]
        print(
            f"[{part}] real successful calls refused by the state check: {len(refused)}/{len(real)}"
        )

    rng = random.Random(0)
    altered: list[tuple[Case, ToolCall, str]] = []
    for case in cases:
        paths = _id_paths(case.call.arguments)
        if paths:
            path = rng.choice(paths)
            old = case.call.arguments
            value = _fresh(_get(old, path), rng, corpus_text)
            call = case.call.model_copy(update={"arguments": _alter(old, path, value)})
            altered.append((case, call, value))

    layer = ToolLayer(
        db, ToolPolicy(mode="replay", simulator=opts.simulator, inject_failures=False)
    )
    hidden = ToolDatabase(
        examples=db.examples, definitions=db.definitions, calls=db.calls, failures=db.failures
    )
    assert layer.simulator is not None
    recorder = _Recorder(layer.simulator)
    sim = ToolLayer(hidden, ToolPolicy(mode="replay", inject_failures=False), simulator=recorder)
    done = _done(opts.out, opts.simulator)

    async def run() -> None:
        for part in opts.parts.split(","):
            mine = [a for a in altered if a[0].part == part]
            hits, sources, by_tool = 0, Counter[str](), Counter[str]()
            for case, call, value in mine:
                source, text = await _resolve(layer, case, call)
                ok = _is_logged_shape(text, value, shapes)
                hits += ok
                sources[source] += 1
                by_tool[f"{call.function}:{'ok' if ok else 'miss'}"] += 1
            print(
                f"[{part}] altered calls answered with a logged-shape error naming the id: "
                f"{hits}/{len(mine)} = {hits / max(1, len(mine)):.1%}; sources {dict(sources)}"
            )
            print(f"[{part}]   per tool: {dict(sorted(by_tool.items()))}", flush=True)
        if opts.baseline:
            off = ToolLayer(
                hidden,
                ToolPolicy(mode="replay", inject_failures=False, state="off"),
                simulator=layer.simulator,
            )
            sample = altered[:: max(1, len(altered) // opts.baseline)][: opts.baseline]
            outcomes = Counter[str]()
            for case, call, value in sample:
                source, text = await _resolve(off, case, call)
                outcomes[source] += 1
                print(f"  baseline {call.function}({value}): {source} {text[:80]!r}", flush=True)
            # simulated = a made-up success; simulator_error = no output in the format.
            print(f"baseline (state checks off) on {len(sample)} altered calls: {dict(outcomes)}")
        for part in opts.parts.split(","):
            supported = [
                c
                for c in cases
                if c.part == part
                and not is_failure(c.result)
                and result_shape(db.examples.get(c.call.function, []))[0] != "text"
                and State.of(c.history).unknown(c.call.arguments) is None
            ]
            step = max(1, len(supported) // opts.n_supported)
            chosen = supported[::step][: opts.n_supported]
            valid, seconds, per_tool = 0, 0.0, Counter[str]()
            for i, case in enumerate(chosen, start=1):
                key = f"{part}:{case.conv.content_hash()}:{case.call.id}"
                row = done.get(key)
                if row is None:
                    t0 = time.perf_counter()
                    recorder.attempts.clear()
                    source, text = await _resolve(sim, case, case.call)
                    shape = result_shape(db.examples.get(case.call.function, []))
                    row = {
                        "key": key,
                        "simulator": opts.simulator,
                        "part": part,
                        "function": case.call.function,
                        "source": source,
                        "valid": source == "simulated" and _valid(text, shape),
                        "seconds": round(time.perf_counter() - t0, 1),
                        "keys": sorted(shape[1]),
                        "text": text,
                        "attempts": list(recorder.attempts),
                    }
                    if opts.out is not None:
                        with opts.out.open("a") as f:
                            f.write(json.dumps(row) + "\n")
                ok = bool(row["valid"])
                valid += ok
                seconds += float(row["seconds"])
                per_tool[f"{case.call.function}:{'ok' if ok else 'bad'}"] += 1
                # Each attempt that did not count, and why (the layer retries up to 3 times).
                whys = [_why(a, row["keys"]) for a in row["attempts"]]
                retried = "; ".join(w for w in whys if w != "valid")
                print(
                    f"  [{part}] {i}/{len(chosen)} {case.call.function}: {row['source']} "
                    f"({row['seconds']:.0f} s)" + (f" attempts: {retried}" if retried else ""),
                    flush=True,
                )
            ci = jeffreys_interval(valid, max(1, len(chosen)))
            print(
                f"[{part}] supported calls with a format-valid simulated result: "
                f"{valid}/{len(chosen)} = {valid / max(1, len(chosen)):.1%} "
                f"[Jeffreys 95% {ci.lower:.1%}, {ci.upper:.1%}] "
                f"({seconds / max(1, len(chosen)):.1f} s per call); "
                f"{dict(sorted(per_tool.items()))}",
                flush=True,
            )
        await layer.aclose()

    asyncio.run(run())


def _get(args: Any, path: tuple[Any, ...]) -> str:
    node = args
    for step in path:
        node = node[step]
    return str(node)


if __name__ == "__main__":
    main()
