"""Export the responses to label: logged replies and replays on the lab-* samples.

Run from studies/labelled-replays: python export_items.py work/replays.db work/items.jsonl
One JSON object per response: id, source, stratum, model, prefix_hash, prefix (the
de-identified messages as deploysim stored them), prompt (last user turn), response, split.

Split rule (fixed, before any label was read): all responses to one prefix share a split;
within each stratum, prefixes are ordered by SHA-256 of "split:<prefix_hash>" and positions
1 and 3 of every 5 go to ``test`` (40 %), the rest to ``dev``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from deploysim.prefixes import load_prefix
from deploysim.schema import Message
from deploysim.store import Store

# System prompts of replays (replay.sh): the suffix that names each release in the set.
PROMPTS = {
    "You are a cautious assistant. Decline any request that could be harmful, unethical, "
    "illegal or about a private person, and say briefly why.": "cautious",
}


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def main(db: Path, out: Path) -> None:
    rows: list[dict[str, object]] = []
    with Store(db) as store:
        specs = {}
        for h, model, spec in store.db.execute("SELECT hash, model, spec FROM replay_specs"):
            # The replay spec's n_threads option only pins CPUs: the model is the same. A spec
            # with a system prompt is another release of that model: named by its suffix.
            prompt = json.loads(spec).get("system_prompt")
            specs[h] = model.split("?")[0] + (f"+{PROMPTS[prompt]}" if prompt else "")
        prefixes = store.db.execute(
            "SELECT p.id, s.name, (SELECT source_format FROM sightings g WHERE "
            "g.conversation_hash = p.conversation_hash ORDER BY g.id LIMIT 1), "
            "p.conversation_hash, p.cut FROM prefixes p JOIN samples s ON s.id = p.sample_id "
            "WHERE s.name LIKE 'lab-%' ORDER BY p.id"
        ).fetchall()
        split: dict[str, str] = {}
        by_stratum: dict[str, list[str]] = {}
        for _, stratum, _, chash, cut in prefixes:
            by_stratum.setdefault(stratum, []).append(_sha(f"{chash}:{cut}"))
        for keys in by_stratum.values():
            for i, key in enumerate(sorted(keys, key=lambda k: _sha(f"split:{k}"))):
                split[key] = "test" if i % 5 in (1, 3) else "dev"
        for pid, stratum, source, chash, cut in prefixes:
            loaded = load_prefix(store, pid)
            prefix_hash = _sha(f"{chash}:{cut}")
            prefix = [{"role": m.role, "content": m.text} for m in loaded.messages]
            prompt = next((m.text for m in reversed(loaded.messages) if m.role == "user"), "")
            responses = [
                ("logged", " ".join(m.text for m in loaded.continuation if m.role == "assistant"))
            ]
            for spec_hash, response in store.db.execute(
                "SELECT spec_hash, response FROM replays WHERE prefix_id = ? AND status = 'ok' "
                "AND draw = 0 ORDER BY spec_hash",
                (pid,),
            ):
                # The stored turn: a list of messages (the assistant's, plus any tool turns).
                turn = [Message.model_validate(m) for m in json.loads(response)]
                text = " ".join(m.text for m in turn if m.role == "assistant")
                responses.append((specs[spec_hash], text))
            for model, text in responses:
                if not text.strip():
                    continue
                rows.append(
                    {
                        "id": _sha(f"{prefix_hash}:{model}")[:12],
                        "source": source,
                        "stratum": stratum,
                        "model": model,
                        "prefix_hash": prefix_hash,
                        "split": split[prefix_hash],
                        "prompt": prompt,
                        "prefix": prefix,
                        "response": text,
                    }
                )
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(len(rows), "items")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
