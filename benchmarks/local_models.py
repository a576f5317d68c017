"""Speed of the three embedded local models on real replayed turns.

For each model: time to verify/assemble the weights (first run only; later runs trust the cache
marker) and to load them, then a few real prefixes from the HH-RLHF sample (each conversation's
``chosen`` transcript minus its last assistant turn) replayed greedily with a cap on the answer.
Prints generated tokens/s (end to end, prompt processing included), seconds per replayed turn,
and prompt tokens/s from a one-token call on a fresh prefix.

    .venv/bin/python benchmarks/local_models.py [--turns 3] [--max-tokens 128] [--threads N]
        [MODEL ...]

Other processes on the machine matter a lot: llama.cpp's threads wait for each other at every
layer, so with the cores busy elsewhere more threads can be several times slower (compare
``--threads 1`` and ``--threads 2``). Run it on a quiet machine, and print ``uptime`` beside the
numbers. On a busy one, tokens per CPU-second with ``--threads 1`` (no thread ever waits for
another) is less distorted by the load than tokens per second, though still not an idle figure.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from deploysim.models.base import GenerateConfig, ModelSpec
from deploysim.models.llamacpp import LlamaCppModel, unload_all
from deploysim.models.local_weights import LOCAL_MODELS
from deploysim.schema import Message

HH = Path(__file__).resolve().parents[2] / "shared/data/chat/hh-rlhf-harmless-test.sample20.jsonl"


def prefixes(n: int, skip: int = 0) -> list[list[Message]]:
    """``n`` real prefixes: HH conversations without their final assistant turn."""
    out: list[list[Message]] = []
    for line in HH.read_text(encoding="utf-8").splitlines()[skip : skip + n]:
        messages: list[Message] = []
        for chunk in json.loads(line)["chosen"].split("\n\nHuman: ")[1:]:
            human, _, assistant = chunk.partition("\n\nAssistant: ")
            messages += [
                Message(role="user", content=human.strip()),
                Message(role="assistant", content=assistant.strip()),
            ]
        out.append(messages[:-1])
    return out


def bench(name: str, turns: int, max_tokens: int, threads: int | None) -> None:
    """Print one model's load time, tokens/s and seconds per replayed turn."""
    t0 = time.perf_counter()
    query = f"?n_threads={threads}" if threads else ""
    model = LlamaCppModel(ModelSpec.parse(f"llamacpp/{name}{query}"))
    t1 = time.perf_counter()
    model.load()
    t2 = time.perf_counter()
    config = GenerateConfig(temperature=0, max_tokens=max_tokens, seed=0)
    out_tokens, seconds = 0, 0.0
    cpu = time.process_time()
    for prefix in prefixes(turns):
        gen = model.generate_sync(prefix, [], config)
        out_tokens += gen.usage.output_tokens
        seconds += gen.latency_s
    cpu = time.process_time() - cpu
    probe = prefixes(1, skip=turns)[0]
    gen = model.generate_sync(probe, [], GenerateConfig(temperature=0, max_tokens=1))
    print(
        f"{name:20s} verify {t1 - t0:5.1f} s  load {t2 - t1:4.1f} s  "
        f"{out_tokens / seconds:6.1f} tok/s  {seconds / turns:5.2f} s/turn "
        f"({turns} turns, {out_tokens} tokens)  "
        f"prompt {gen.usage.input_tokens / gen.latency_s:6.0f} tok/s  "
        f"CPU {cpu:5.1f} s ({out_tokens / cpu:5.1f} tok/CPU-s)",
        flush=True,
    )
    unload_all()


def main() -> None:
    """Benchmark the models named on the command line (all three by default)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=list(LOCAL_MODELS))
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument(
        "--threads", type=int, help="n_threads (default: the model's, usable CPUs but one)"
    )
    args = parser.parse_args()
    for name in args.models:
        bench(name, args.turns, args.max_tokens, args.threads)


if __name__ == "__main__":
    main()
