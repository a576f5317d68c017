"""A synthetic run store built with direct SQL inserts: 100,000 replays in seconds.

Shapes follow the real store (content-addressed messages, one shared system prompt, samples,
prefixes, replay specs, replays, graders, grades) with known counts, so tests can check what the
report and the exports say against what was inserted. Used by the report tests and by
``benchmarks/report.py``.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploysim.forecast import _h3_outcome, _hypotheses
from deploysim.schema import canonical_hash, canonical_json
from deploysim.store import Store

#: Text that would run script if any part of the page put it into HTML unescaped.
XSS = (
    '</script><script>window.__xss=1</script><img src=x onerror="window.__xss=2"><!-- & \u2028 -->'
)
CATEGORIES = ("REFUSAL", "PROFANITY", "TOOL")


@dataclass
class Synthetic:
    """What was inserted."""

    path: Path
    prefixes: int = 0
    replays: int = 0
    failed: int = 0
    grades: int = 0
    ungradable: int = 0
    flagged: int = 0
    flagged_prefixes: int = 0
    models: list[str] = field(default_factory=list)
    spec_hashes: list[str] = field(default_factory=list)
    grader_hashes: dict[str, str] = field(default_factory=dict)


def build(
    path: Path,
    *,
    replays: int,
    models: int = 4,
    seed: int = 0,
    hostile: bool = False,
    extras: bool = False,
) -> Synthetic:
    """A store with ``replays`` replays over ``replays // models`` prefixes.

    Model ``m1`` refuses often (30%), the others rarely (2%); TOOL is graded on every third
    prefix only (so its filter selects a different set); 1% of replays fail (``timeout``) and
    0.5% of grades are ungradable. ``hostile`` puts script-injection text into transcripts,
    rationales and a model name; ``extras`` adds a forecast, a scorecard and de-identification
    meta keys.
    """
    rng = random.Random(seed)
    syn = Synthetic(path)
    n_prefixes = replays // models
    now = time.time()
    with Store(path) as store:
        db = store.db
        db.execute("BEGIN")
        sha = canonical_hash({"synthetic": seed, "replays": replays})
        db.execute(
            "INSERT INTO inputs(sha256, path, format, size, status, records, kept, skipped, "
            "conversations, options, tool_version, started_at, finished_at) VALUES "
            "(?, 'synthetic.jsonl', 'openai', 1, 'complete', ?, ?, 0, ?, '{}', 'test', ?, ?)",
            (sha, n_prefixes, n_prefixes, n_prefixes, now, now),
        )
        system = {"role": "system", "content": "You are a helpful airline agent. " * 20}
        system_hash = canonical_hash(system)
        db.execute(
            "INSERT INTO messages(hash, role, body) VALUES (?, 'system', ?)",
            (system_hash, canonical_json(system)),
        )
        db.execute(
            "INSERT INTO samples(name, spec, spec_hash, population, size, created_at) "
            "VALUES ('default', ?, ?, ?, ?, ?)",
            (
                canonical_json({"mode": "turn", "seed": seed, "size": n_prefixes}),
                canonical_hash({"mode": "turn", "seed": seed}),
                n_prefixes * 10,
                n_prefixes,
                now,
            ),
        )
        names = [f"synthetic/m{i}" for i in range(models)]
        if hostile:
            names[-1] = f"evil/<img src=x onerror=window.__xss=3>{XSS}"
        for i, name in enumerate(names):
            h = canonical_hash({"model": name})
            syn.models.append(name)
            syn.spec_hashes.append(h)
            db.execute(
                "INSERT INTO replay_specs(hash, model, spec, created_at) VALUES (?, ?, ?, ?)",
                (h, name, canonical_json({"model": name}), now + i),
            )
        for c in CATEGORIES:
            gh = canonical_hash({"grader": c})
            syn.grader_hashes[c] = gh
            db.execute(
                "INSERT INTO graders(hash, spec, category, definition, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (gh, f"rule/{c.lower()}", c, canonical_json({"kind": "rule", "rule": c}), now),
            )
        msg_rows, conv_rows, sight_rows, prefix_rows = [], [], [], []
        for p in range(n_prefixes):
            text = f"Question {p}: can you help me with booking {p % 97}?"
            if hostile and p % 5 == 0:
                text += XSS
            user = {"role": "user", "content": text}
            answer = {"role": "assistant", "content": f"Logged answer {p}."}
            hashes = [system_hash, canonical_hash(user), canonical_hash(answer)]
            msg_rows += [
                (hashes[1], "user", canonical_json(user)),
                (hashes[2], "assistant", canonical_json(answer)),
            ]
            chash = canonical_hash({"conv": hashes})
            conv_rows.append((chash, json.dumps(hashes)))
            sight_rows.append((sha, p, chash, f"c_{p:08x}"))
            # Two strata with different inclusion probabilities, as stratified samples have.
            prefix_rows.append((chash, "short" if p % 2 else "long", 0.01 if p % 2 else 0.02))
        db.executemany("INSERT INTO messages(hash, role, body) VALUES (?, ?, ?)", msg_rows)
        db.executemany(
            "INSERT INTO conversations(hash, message_hashes, tools, refs, roles, n_messages, "
            "n_user_turns, n_assistant_turns, n_tool_calls, n_tools, multimodal) "
            "VALUES (?, ?, '[]', '[]', 'sua', 3, 1, 1, 0, 0, 0)",
            conv_rows,
        )
        db.executemany(
            "INSERT INTO sightings(input_sha256, record, conversation_hash, source_format, "
            "source_id, metadata) VALUES (?, ?, ?, 'openai', ?, '{}')",
            sight_rows,
        )
        db.executemany(
            "INSERT INTO prefixes(sample_id, conversation_hash, cut, reference_index, stratum, "
            "inclusion_prob) VALUES (1, ?, 2, 2, ?, ?)",
            prefix_rows,
        )
        syn.prefixes = n_prefixes
        replay_rows, grade_rows = [], []
        flagged_prefixes: set[int] = set()
        replay_id = 0
        for pid in range(1, n_prefixes + 1):
            targets: list[tuple[str, int, int]] = [("reference", pid, -1)]
            for m, spec_hash in enumerate(syn.spec_hashes):
                replay_id += 1
                failed = rng.random() < 0.01
                content = f"Answer of m{m} to prefix {pid}."
                if hostile and pid % 7 == 0:
                    content += XSS
                replay_rows.append(
                    (
                        replay_id,
                        pid,
                        spec_hash,
                        "failed" if failed else "ok",
                        None if failed else json.dumps([{"role": "assistant", "content": content}]),
                        None if failed else "stop",
                        "timeout" if failed else None,
                        "request timed out after 120 s" if failed else None,
                        now,
                    )
                )
                syn.replays += 1
                if failed:
                    syn.failed += 1
                else:
                    targets.append(("replay", replay_id, m))
            for target, tid, m in targets:
                for c in CATEGORIES:
                    if c == "TOOL" and pid % 3:
                        continue
                    ungr = rng.random() < 0.005
                    rate = 0.3 if (m == 1 and c == "REFUSAL") else 0.02
                    flagged = (not ungr) and rng.random() < rate
                    rationale = f"{c} check on {target} {tid}"
                    if hostile and flagged:
                        rationale += XSS
                    grade_rows.append(
                        (
                            target,
                            tid,
                            syn.grader_hashes[c],
                            c,
                            "ungradable" if ungr else "ok",
                            None if ungr else float(flagged),
                            None if ungr else int(flagged),
                            None if ungr else rationale,
                            "judge returned no verdict" if ungr else None,
                            now,
                        )
                    )
                    syn.grades += 1
                    syn.ungradable += ungr
                    syn.flagged += flagged
                    if flagged:
                        flagged_prefixes.add(pid)
        db.executemany(
            "INSERT INTO replays(id, prefix_id, spec_hash, draw, status, response, "
            "finish_reason, error_kind, error, attempts, created_at) "
            "VALUES (?, ?, ?, 0, ?, ?, ?, ?, ?, 1, ?)",
            replay_rows,
        )
        db.executemany(
            "INSERT INTO grades(target, target_id, grader_hash, category, status, score, "
            "flagged, rationale, error, attempts, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)",
            grade_rows,
        )
        syn.flagged_prefixes = len(flagged_prefixes)
        if extras:
            _extras(store, syn)
        db.execute("COMMIT")
    return syn


def _extras(store: Store, syn: Synthetic) -> None:
    """A registered forecast, its scorecard and de-identification meta keys."""
    gh = syn.grader_hashes["REFUSAL"]
    body = {
        "candidate": syn.models[1],
        "deployed": "logged",
        "registered_at": "2026-01-01T00:00:00Z",
        "sample": {"name": "default", "prefix_manifest_hash": "f" * 64},
        "forecasts": [
            {
                "category": "REFUSAL",
                "grader_hash": gh,
                "method": method,
                "rate": rate,
                "ci_low": rate / 2,
                "ci_high": rate * 1.5,
                "baseline_rate": 0.02,
                "direction": "up" if rate > 0.02 else "down",
                "ratio": rate / 0.02,
                "k": 30,
                "n": 100,
            }
            for method, rate in (("sim", 0.3), ("no_change", 0.02))
        ],
        "hypotheses": _hypotheses("sim", 0.1, None, 100),
    }
    manifest = {**body, "content_hash": canonical_hash(body)}
    store.db.execute(
        "INSERT INTO forecasts(content_hash, candidate, registered_at, manifest) "
        "VALUES (?, ?, ?, ?)",
        (manifest["content_hash"], syn.models[1], body["registered_at"], canonical_json(manifest)),
    )
    card = {
        "forecast": manifest["content_hash"],
        "candidate": syn.models[1],
        "methods": {"sim": {"categories": 1, "direction_eligible": 1, "direction_correct": 1}},
        "categories": [
            {
                "category": "REFUSAL",
                "method": "sim",
                "forecast": 0.3,
                "realised_k": 28,
                "realised_n": 100,
                "realised_rate": 0.2822,
                "sme": 1.06,
                "direction_eligible": True,
                "direction_correct": True,
                "nll": 2.1,
                "nll_regret": 0.01,
                "in_noise_band": True,
            }
        ],
        "hypotheses": {
            "H1": {
                "method": "sim",
                "baseline": "no_change",
                "alpha": 0.1,
                "categories": 1,
                "nll_method": 2.1,
                "nll_baseline": 9.7,
                "mean_nll_difference": 7.6,
                "p_value": 0.5,
                "exact": True,
                "outcome": "not supported",
            },
            "H3": _h3_outcome(body["hypotheses"]["H3"], None),
        },
    }
    store.db.execute(
        "INSERT INTO scorecards(forecast_hash, created_at, scorecard) VALUES (?, ?, ?)",
        (manifest["content_hash"], time.time(), canonical_json(card)),
    )
    store.set_meta("deid_version", "deid-1")
    store.set_meta("deid_entities_replaced", "1234")


#: Methods of the synthetic backtest: the plotted ones and no-change (tabled only).
BACKTEST_PLOTTED = ("sim", "challenging_scaled", "bias_corrected")


def backtest_result(*, hostile_name: str = XSS) -> dict[str, Any]:
    """A made-up ``backtest`` analysis result: 3 releases, 2 pairs, 2 categories; sim,
    challenging_scaled and no_change on both pairs, bias_corrected on the second only.

    The third release's name (a pair's candidate) and the first's system prompt are
    ``hostile_name``, to check that the section escapes them.
    """
    names = ["rel-a", "rel-b", hostile_name]
    # (deployed, candidate) -> category -> (baseline rate, realised k, realised n)
    realised = {
        (names[0], names[1]): {"REFUSAL": (0.02, 61, 1000), "PROFANITY": (6e-5, 3, 100_000)},
        (names[1], names[2]): {"REFUSAL": (0.02, 55, 1000), "PROFANITY": (3e-5, 2, 100_000)},
    }
    forecasts = {
        "sim": (1.2, 0.8),
        "challenging_scaled": (0.5, 2.5),
        "bias_corrected": (1.05, 1.3),
    }
    rows: list[dict[str, Any]] = []
    pairs: list[dict[str, Any]] = []
    for i, ((deployed, candidate), cats) in enumerate(realised.items()):
        methods = ["sim", "challenging_scaled", "no_change"] + (["bias_corrected"] if i else [])
        for category, (base, k, n) in cats.items():
            rate = (k + 0.5) / (n + 1)
            moved = max(rate / base, base / rate) >= 1.5
            for method in methods:
                if method == "no_change":
                    f = base
                else:
                    f = rate * forecasts[method][0 if category == "REFUSAL" else 1]
                right = (f > base) == (rate > base) if method != "no_change" else False
                rows.append(
                    {
                        "deployed": deployed,
                        "candidate": candidate,
                        "category": category,
                        "grader": f"rule/{category.lower()}",
                        "method": method,
                        "forecast": f,
                        "forecast_low": f / 1.5 if method == "sim" else None,
                        "forecast_high": f * 1.5 if method == "sim" else None,
                        "realised_rate": rate,
                        "realised_low": rate / 1.3,
                        "realised_high": rate * 1.3,
                        "realised_k": k,
                        "realised_n": n,
                        "baseline_rate": base,
                        "moved": moved,
                        "direction_correct": right if moved else None,
                        "sme": max(f / rate, rate / f),
                        "nll": 3.0 + i,
                        "in_noise_band": max(f / rate, rate / f) < 1.5,
                    }
                )
        hypotheses: dict[str, Any] = {
            "H1": {"outcome": "supported" if i else "not supported", "p_value": 0.04 + 0.5 * i},
            "H3": {"outcome": "not tested"},
        }
        if i:
            hypotheses["H2"] = {"outcome": "not supported", "p_value": 0.31}
        pairs.append(
            {
                "deployed": deployed,
                "candidate": candidate,
                "forecast": canonical_hash({"pair": i}),
                "registered_at": f"2026-0{i + 1}-01T00:00:00Z",
                "hypotheses": hypotheses,
            }
        )
    aggregate: dict[str, Any] = {}
    for method in ("sim", "challenging_scaled", "no_change", "bias_corrected"):
        mine = [r for r in rows if r["method"] == method]
        eligible = [r for r in mine if r["moved"]]
        correct = sum(bool(r["direction_correct"]) for r in eligible)
        smes = sorted(r["sme"] for r in mine)
        aggregate[method] = {
            "rows": len(mine),
            "direction_eligible": len(eligible),
            "direction_correct": correct,
            "directional_accuracy": (
                correct / len(eligible) if eligible and method != "no_change" else None
            ),
            "directional_accuracy_ci": [0.1, 0.9] if eligible and method != "no_change" else None,
            "sme_median": smes[len(smes) // 2],
            "sme_median_ci": [1.0, smes[-1]],
            "sme_p90": smes[-1],
            "sme_p90_ci": None,
            "sme_max": smes[-1],
            "nll": 3.5,
        }
    funnel = []
    for e in range(-50, 1):
        r = 10 ** (e / 10)
        width = 1 + 4 / (r * 1e5) ** 0.5
        funnel.append({"realised": r, "low": r / width, "high": min(1.0, r * width)})
    return {
        "releases": [
            {
                "name": n,
                "model": f"synthetic/m{j}",
                "system_prompt": hostile_name if j == 0 else (None if j == 1 else "Be brief."),
                "label": n,
            }
            for j, n in enumerate(names)
        ],
        "pairs": pairs,
        "rows": rows,
        "aggregate": aggregate,
        "funnel": funnel,
        "bootstrap": {"replicates": 2000, "unit": "conversation", "level": 0.95, "seed": 7},
        "hypotheses": {
            "H1": {
                "method": "sim",
                "baseline": "no_change",
                "alpha": 0.1,
                "rows": 4,
                "p_value": 0.0625,
                "outcome": "supported",
            }
        },
        "methods": ["sim", "bias_corrected", "no_change", "challenging_raw", "challenging_scaled"],
    }
