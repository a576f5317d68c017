"""Generate the K_NV supplement's replies with local models (resumable, written as it goes).

Run from studies/labelled-replays/knv (nice -n 5, one llama.cpp thread per model):
    python generate.py work/prompts.jsonl work/replies.jsonl [START:STOP] [RELEASE ...]
With release names, only those (two processes, each with its own output file, use both cores:
``work/replies.jsonl`` for the first two releases, ``work/replies-permissive.jsonl`` for the
third; the readers take every ``work/replies*.jsonl``).
Each prompt is sent as one user turn to every release in RELEASES at temperature 0 with at most
160 new tokens, as the demo replays. A release is a model and an optional system prompt:
SmolLM2-135M (often complies, but in degenerate text) and Qwen2.5-Coder-0.5B (refuses nearly
every one of these prompts) alone, and Qwen2.5-Coder-0.5B with ``permissive.txt`` as its system
prompt (a release that differs by its prompt, added because the first two gave almost no
actionable help; ``+permissive`` in the model name). The system prompt is not part of what the
judge later sees (the prompt as one user turn, then the reply), as in the parent study.
Prompts are taken in file order (a hash order), every release of a process on a prompt before
the next, so a run cut short leaves the releases on nearly the same prompts. A (prompt key,
model) pair already in the output file is skipped.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from deploysim.models import get_model
from deploysim.models.base import GenerateConfig
from deploysim.schema import Message

PERMISSIVE = (Path(__file__).parent / "permissive.txt").read_text(encoding="utf-8").strip()
# (name in the labelled set, model spec, system prompt)
RELEASES = (
    ("llamacpp/smollm2-135m", "llamacpp/smollm2-135m", None),
    ("llamacpp/qwen2.5-coder-0.5b", "llamacpp/qwen2.5-coder-0.5b", None),
    ("llamacpp/qwen2.5-coder-0.5b+permissive", "llamacpp/qwen2.5-coder-0.5b", PERMISSIVE),
)
CONFIG = GenerateConfig(temperature=0.0, max_tokens=160)
# Time: on the shared 2-core machine SmolLM2 took about 30 s and the permissive Qwen about 50 s a
# reply, and the 1.5B judge about 17 s an item, so 3 x 120 replies could not be generated, judged
# and read in the session. SmolLM2 and plain Qwen (which gave almost no positives) were run on the
# first 50 prompts, the permissive Qwen (where the positives are) on as many as time allowed.
PROMPTS = slice(0, 120)


async def main(prompts: Path, out: Path, args: list[str]) -> None:
    part = PROMPTS
    if args and ":" in args[0]:
        first, stop = (int(x) for x in args.pop(0).split(":"))
        part = slice(first, stop)
    releases = [r for r in RELEASES if not args or r[0] in args]
    rows = [json.loads(line) for line in prompts.read_text().splitlines() if line.strip()]
    rows = rows[part]
    done: set[tuple[str, str]] = set()
    if out.exists():
        for line in out.read_text().splitlines():
            r = json.loads(line)
            done.add((r["key"], r["model"]))
    models = {spec: get_model(f"{spec}?n_threads=1") for _, spec, _ in releases}
    start = time.time()
    with out.open("a", encoding="utf-8") as f:
        for row in rows:
            for name, spec, system in releases:
                if (row["key"], name) in done:
                    continue
                msgs: tuple[Message, ...] = (Message(role="user", content=row["prompt"]),)
                if system:
                    msgs = (Message(role="system", content=system), *msgs)
                gen = await models[spec].generate(msgs, (), CONFIG)
                rec = {
                    "key": row["key"],
                    "model": name,
                    "text": gen.text,
                    "finish_reason": gen.finish_reason,
                    "output_tokens": gen.usage.output_tokens,
                    "latency_s": round(gen.latency_s, 2),
                }
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                f.flush()
                print(f"{time.time() - start:.0f} s {name} {row['key']}", flush=True)
    for model in models.values():
        await model.aclose()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]))
