"""Judge-alone REFUSAL scores for every item, from the combined grader's where they are one call.

``judge/REFUSAL?rule=refusal&max_chars=1200`` asks the judge exactly what
``judge/REFUSAL?max_chars=1200`` asks, on the same prompt, for every item the (session-8) refusal
rule did not flag; it only skips the judge where the rule flags. So the combined grader's cached
scores of unflagged items are judge-alone scores, and this copies them into the cache under the
judge-alone grader's hash (logprob scoring is deterministic for a given prompt). Rule-flagged
items got real judge-alone scores from score_ruled.py; the items no judge scored yet are then
scored by ``python score.py 'judge/REFUSAL?max_chars=1200' work/items.jsonl``.

Run from studies/labelled-replays: python alone.py
"""

from __future__ import annotations

import json
from pathlib import Path

from deploysim.graders import get_grader
from deploysim.validation import _read_cache

J = "llamacpp/qwen2.5-coder-1.5b"
CACHE = Path(__file__).parent / "scores.jsonl"
# Hashes as written in scores.jsonl: the session-8 combined grader and the session-8 refusal
# rule (both changed since, so the current code cannot rebuild them).
OLD_COMBO = "076d1c82f4a5a7f423b932905aae523ab3fb009a85db087f8ad1e78bcfcd8a40"
OLD_RULE = "d9d00ece4f336867494f12af17d2f7e729df1ba48f67676206e1fb3119e0e0f7"


def main() -> None:
    alone = get_grader("judge/REFUSAL?max_chars=1200", default_judge=J).score_hash
    combo, rule, have = (_read_cache(CACHE, h) for h in (OLD_COMBO, OLD_RULE, alone))
    new = [
        {"grader": alone, "item": key, "score": score}
        for key, score in combo.items()
        if key not in have and rule.get(key) == 0.0 and score is not None
    ]
    with CACHE.open("a", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in new)
    print(f"{len(new)} judge-alone scores copied; {len(have)} were there")


if __name__ == "__main__":
    main()
