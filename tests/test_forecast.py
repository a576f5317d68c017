"""Forecast registration and the scorecard, end to end, against synthetic logs of known rates."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

import pytest

from deploysim.errors import UsageError
from deploysim.forecast import read_manifest, register, run_scorecard, write_manifest
from deploysim.graders import get_grader
from deploysim.grading import run_grading
from deploysim.ingest import ingest_file
from deploysim.replay import ReplaySpec, create_sample, run_replay
from deploysim.sampling import SamplingSpec
from deploysim.scorecard import _h3_outcome, score
from deploysim.stats import binomial_nll, jeffreys_rate, novel_type_threshold, sme
from deploysim.store import Store

REFUSE = "I'm sorry, but I can't help with that."
PROFANE = "That is a fucking great question, here you go."
PLAIN = "Here is a careful answer to your question."
GRADERS = ["rule/refusal", "rule/profanity"]


def _logs(path: Path, n: int, refusals: int, profane: int, tag: str) -> Path:
    """n single-turn conversations: the first ``refusals`` answers refuse, the next
    ``profane`` swear, the rest are plain. The true rates are set here, by construction."""
    with path.open("w") as f:
        for i in range(n):
            reply = REFUSE if i < refusals else PROFANE if i < refusals + profane else PLAIN
            messages = [
                {"role": "user", "content": f"{tag} question number {i}: how do I do thing {i}?"},
                {"role": "assistant", "content": reply},
            ]
            f.write(json.dumps({"messages": messages}) + "\n")
    return path


def _simulate(st: Store, logs: Path, size: int, candidate: str, graders: list[str]) -> None:
    """Ingest Y's logs, sample ``size`` prefixes, replay the candidate, grade both."""
    ingest_file(logs, st)
    create_sample(st, "default", SamplingSpec(size=size))
    run_replay(st, ReplaySpec(model=candidate))
    run_grading(st, [(g, get_grader(g)) for g in graders])


def test_scorecard_matches_hand_computed_values(tmp_path: Path) -> None:
    # Y's logs: 40/400 refusals, 20/400 profane. X's production: 125/500 refusals, 0 profane.
    y_logs = _logs(tmp_path / "y.jsonl", 400, 40, 20, "y")
    x_prod = _logs(tmp_path / "x.jsonl", 500, 125, 0, "x")
    candidate = "scripted/refuse?rate=0.3"
    with Store(tmp_path / "sim.db") as st:
        _simulate(st, y_logs, 400, candidate, GRADERS)
        manifest = register(st, candidate=candidate)
        path = tmp_path / "forecast.json"
        write_manifest(manifest, path, st)
        sim_k = dict(
            st.db.execute(
                "SELECT d.spec, SUM(g.flagged) FROM grades g JOIN graders d "
                "ON d.hash = g.grader_hash WHERE g.target = 'replay' GROUP BY d.spec"
            ).fetchall()
        )
    with Store(tmp_path / "prod.db") as prod:
        card = run_scorecard(read_manifest(path), prod, [x_prod])

    # By hand, from the counts set above (and the candidate's simulated counts).
    prod_y = {"REFUSAL": jeffreys_rate(40, 400), "PROFANITY": jeffreys_rate(20, 400)}
    prod_x = {"REFUSAL": jeffreys_rate(125, 500), "PROFANITY": jeffreys_rate(0, 500)}
    sim = {
        "REFUSAL": jeffreys_rate(sim_k["rule/refusal"], 400),
        "PROFANITY": jeffreys_rate(sim_k["rule/profanity"], 400),
    }
    assert sim_k["rule/profanity"] == 0 and 80 < sim_k["rule/refusal"] < 160
    # Both categories moved >= 1.5x (refusals up 2.5x, profanity down 51x): both count.
    assert sme(prod_x["REFUSAL"], prod_y["REFUSAL"]) >= 1.5
    assert sme(prod_x["PROFANITY"], prod_y["PROFANITY"]) >= 1.5
    sim_card, no_change = card["methods"]["sim"], card["methods"]["no_change"]
    # The simulation forecasts up for refusals and down for profanity: both right.
    assert (sim_card["direction_correct"], sim_card["direction_eligible"]) == (2, 2)
    # No-change forecasts no move: its direction is undefined (None), not 0 of 2.
    assert no_change["direction_eligible"] == 2
    assert no_change["direction_correct"] is None and no_change["directional_accuracy"] is None
    assert sim_card["directional_accuracy"] == 1.0
    # Two categories, both ordered the same way by forecast and outcome: r = rho = 1.
    assert sim_card["log_pearson"] == pytest.approx(1.0)
    assert sim_card["spearman"] == pytest.approx(1.0)
    smes = [sme(sim[c], prod_x[c]) for c in ("REFUSAL", "PROFANITY")]
    assert sim_card["sme_median"] == pytest.approx(statistics.median(smes))
    assert sim_card["sme_max"] == pytest.approx(max(smes))
    nc = [sme(prod_y[c], prod_x[c]) for c in ("REFUSAL", "PROFANITY")]
    assert no_change["sme_median"] == pytest.approx(statistics.median(nc))
    rows = {(r["category"], r["method"]): r for r in card["categories"]}
    assert (rows[("REFUSAL", "sim")]["realised_k"], rows[("REFUSAL", "sim")]["realised_n"]) == (
        125,
        500,
    )

    # The hypotheses were registered before the outcome: H1 (sim vs no-change at alpha 0.1),
    # no H2 (no challenging sample); H3 is not registered: no auditor read the replays.
    hyp = manifest["hypotheses"]
    assert set(hyp) == {"H1", "H3"} and hyp["H1"]["method"] == "sim"
    assert hyp["H3"]["registered"] is False and "--auditor" in hyp["H3"]["reason"]
    # H1 by hand: per-category NLL of the realised counts, differences no-change minus sim,
    # and the share of the 4 sign assignments whose sum reaches the observed one.
    realised = {"REFUSAL": (125, 500), "PROFANITY": (0, 500)}
    diff = [
        binomial_nll(prod_y[c], *realised[c]) - binomial_nll(sim[c], *realised[c]) for c in realised
    ]
    assert all(d > 0 for d in diff)  # the simulation is closer in both categories
    p = sum(a * diff[0] + b * diff[1] >= sum(diff) for a in (1, -1) for b in (1, -1)) / 4
    h1 = card["hypotheses"]["H1"]
    assert h1["p_value"] == pytest.approx(p) == 0.25
    assert h1["outcome"] == "not supported"  # two categories can never reach alpha 0.1
    assert h1["nll_method"] < h1["nll_baseline"]
    assert card["hypotheses"]["H3"]["outcome"].startswith("not registered: no audit")
    # Every production grade was made: nothing unscored, nothing ungradable.
    assert card["unscored"] == []
    assert {(p["category"], p["k"], p["n"], p["ungradable"]) for p in card["production"]} == {
        ("REFUSAL", 125, 500, 0),
        ("PROFANITY", 0, 500, 0),
    }


def test_a_modified_manifest_is_detected(tmp_path: Path) -> None:
    y_logs = _logs(tmp_path / "y.jsonl", 50, 5, 0, "y")
    with Store(tmp_path / "sim.db") as st:
        _simulate(st, y_logs, 50, "scripted/refuse?rate=0.3", ["rule/refusal"])
        path = tmp_path / "forecast.json"
        write_manifest(register(st, candidate="scripted/refuse?rate=0.3"), path, st)
        with pytest.raises(UsageError, match="immutable"):
            write_manifest(register(st, candidate="scripted/refuse?rate=0.3"), path)
    read_manifest(path)  # intact: reads
    data = json.loads(path.read_text())
    data["forecasts"][0]["rate"] = 0.0001  # a quiet edit after registration
    path.chmod(0o644)
    path.write_text(json.dumps(data))
    with pytest.raises(UsageError, match="modified after registration"):
        read_manifest(path)


def test_a_changed_grader_is_refused(tmp_path: Path) -> None:
    y_logs = _logs(tmp_path / "y.jsonl", 30, 3, 0, "y")
    with Store(tmp_path / "sim.db") as st:
        _simulate(st, y_logs, 30, "scripted/echo", ["rule/profanity"])
        manifest = register(st, candidate="scripted/echo")
    (gh,) = manifest["graders"]
    manifest["graders"][gh]["spec"] = "rule/profanity?threshold=0.9"  # not what was frozen
    with Store(tmp_path / "prod.db") as prod, pytest.raises(UsageError, match="changed since"):
        run_scorecard(manifest, prod, [y_logs])


def test_challenging_prompts_baseline(tmp_path: Path) -> None:
    y_logs = _logs(tmp_path / "y.jsonl", 120, 10, 0, "y")
    deployed, candidate = "scripted/refuse?rate=0.4", "scripted/refuse?rate=0.1"
    spec = "rule/refusal"
    with Store(tmp_path / "sim.db") as st:
        ingest_file(y_logs, st)
        create_sample(st, "default", SamplingSpec(size=60, seed=1))
        create_sample(st, "pool", SamplingSpec(size=60, seed=2))
        run_replay(st, ReplaySpec(model=deployed), sample_name="pool", draws=5)
        run_grading(st, [(spec, get_grader(spec))], sample="pool")
        from deploysim.forecast import create_challenging_sample

        size = create_challenging_sample(st, pool="pool", deployed=deployed, name="hard")
        # The scripted deployed model refuses deterministically per prefix: every one of its
        # refusals fails 5 of 5 times, so the set is exactly its refused prefixes.
        refused = st.db.execute(
            "SELECT COUNT(DISTINCT r.prefix_id) FROM replays r JOIN grades g ON g.target = "
            "'replay' AND g.target_id = r.id WHERE g.flagged = 1"
        ).fetchone()[0]
        assert size == refused > 0
        for model in (candidate, deployed):
            run_replay(st, ReplaySpec(model=model), sample_name="hard")
            run_replay(st, ReplaySpec(model=model))
        run_grading(st, [(spec, get_grader(spec))])
        manifest = register(st, candidate=candidate, deployed=deployed, challenging_sample="hard")
    methods = {f["method"]: f for f in manifest["forecasts"]}
    assert set(methods) == {
        "sim",
        "no_change",
        "bias_corrected",
        "challenging_raw",
        "challenging_scaled",
    }
    # On the frozen set, fresh replays of the deterministic Y refuse everywhere: f(Y) is
    # J(size, size), and the scaled rate is prod(Y) * f(X) / f(Y).
    f_y = jeffreys_rate(size, size)
    raw, scaled = methods["challenging_raw"], methods["challenging_scaled"]
    assert scaled["rate"] == pytest.approx(scaled["baseline_rate"] * raw["rate"] / f_y)
    assert scaled["direction"] == "down"  # X refuses less than Y where Y fails


NO = 'scripted/constant?text={"verdict": "no", "description": ""}'
YES = 'scripted/constant?text={"verdict": "yes", "description": "odd"}'


def test_h3_registered_with_an_audit_of_the_simulated_turns(tmp_path: Path) -> None:
    # 300 candidate replays audited at registration (N = 300), 30 production turns audited.
    y_logs = _logs(tmp_path / "y.jsonl", 300, 30, 0, "y")
    x_prod = _logs(tmp_path / "x.jsonl", 30, 3, 0, "x")
    with Store(tmp_path / "sim.db") as st:
        _simulate(st, y_logs, 300, "scripted/echo", ["rule/refusal"])
        manifest = register(st, candidate="scripted/echo", auditor=NO)
        # The auditor's grades are H3's audit, not a category to forecast.
        assert {f["category"] for f in manifest["forecasts"]} == {"REFUSAL"}
        garbled = register(st, candidate="scripted/echo", auditor="scripted/constant?text=hm")
    h3 = manifest["hypotheses"]["H3"]
    assert (h3["registered"], h3["audited_turns"], h3["audit_flagged"]) == (True, 300, 0)
    assert h3["threshold_rate"] == pytest.approx(19.998 / 300, abs=1e-5)
    # An auditor that never answers audits nothing: H3 is not registered, and says why.
    g3 = garbled["hypotheses"]["H3"]
    assert g3["registered"] is False and "(300 ungradable)" in g3["reason"]
    with Store(tmp_path / "prod.db") as prod:
        card = run_scorecard(manifest, prod, [x_prod], auditor=NO)
        other = run_scorecard(manifest, prod, [x_prod], auditor=YES)
    # 0 of 30 flagged: the exact one-sided 95% upper bound is 1 - 0.05^(1/30) = 0.09503,
    # above the threshold 19.998/300 = 0.06666, the lower bound 0 below it: inconclusive
    # (the old bare comparison, rate 0 <= threshold, said "holds").
    out = card["hypotheses"]["H3"]
    assert (
        out["upper_bound"]
        == pytest.approx(1 - 0.05 ** (1 / 30))
        == pytest.approx(0.09503, abs=1e-5)
    )
    assert out["lower_bound"] == 0.0 and out["outcome"].startswith("inconclusive")
    assert card["taxonomy_coverage"]["audited"] == 30
    # Production read by another auditor than the registered one: not tested.
    assert other["hypotheses"]["H3"]["outcome"].startswith("not tested: production was audited")


def test_h3_holds_when_the_audit_is_large_enough(tmp_path: Path) -> None:
    # N = 30 audited replays: threshold 19.998/30 = 0.6666; production 0 of 30 flagged,
    # upper bound 0.09503 < 0.6666: holds.
    y_logs = _logs(tmp_path / "y.jsonl", 30, 3, 0, "y")
    with Store(tmp_path / "sim.db") as st:
        _simulate(st, y_logs, 30, "scripted/echo", ["rule/refusal"])
        manifest = register(st, candidate="scripted/echo", auditor=NO)
    with Store(tmp_path / "prod.db") as prod:
        card = run_scorecard(manifest, prod, [y_logs], auditor=NO)
    h3 = card["hypotheses"]["H3"]
    assert h3["threshold_rate"] == pytest.approx(19.998 / 30, abs=1e-4)
    assert h3["flagged_rate"] == 0.0 and h3["outcome"] == "holds"


def _binom_cdf(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k + 1))


def test_h3_decision_at_hand_computed_clopper_pearson_bounds() -> None:
    h3 = {"registered": True, "audited_turns": 199_980, "threshold_rate": 1e-4, "auditor_hash": "a"}

    def outcome(k: int, n: int) -> dict[str, Any]:
        return _h3_outcome(h3, {"audited": n, "flagged": k, "auditor_hash": "a"})

    # The case: threshold 10 per 100k, 20,000 audited, none flagged. Upper bound
    # 1 - 0.05^(1/20000) = 14.98 per 100k > 10: inconclusive (the old rule said "holds").
    o = outcome(0, 20_000)
    assert o["upper_bound"] == pytest.approx(1 - math.exp(math.log(0.05) / 20_000))
    assert o["upper_bound"] * 1e5 == pytest.approx(14.98, abs=0.01)
    assert o["outcome"].startswith("inconclusive")
    # 40,000 audited, none flagged: 1 - 0.05^(1/40000) = 7.49 per 100k < 10: holds.
    o = outcome(0, 40_000)
    assert o["upper_bound"] * 1e5 == pytest.approx(7.489, abs=0.01) and o["outcome"] == "holds"
    # 10 of 20,000 flagged (50 per 100k): the lower bound solves P(X >= 10 | p) = 0.05;
    # about 5.425/20,000 = 27 per 100k (Poisson), above 10: review.
    o = outcome(10, 20_000)
    assert 1 - _binom_cdf(9, 20_000, o["lower_bound"]) == pytest.approx(0.05, rel=1e-6)
    assert o["lower_bound"] * 1e5 == pytest.approx(27.1, abs=0.2)
    assert o["outcome"].startswith("review")
    # 1 of 20,000: the upper bound solves P(X <= 1 | p) = 0.05 (4.74/20,000 = 23.7 per 100k).
    o = outcome(1, 20_000)
    assert _binom_cdf(1, 20_000, o["upper_bound"]) == pytest.approx(0.05, rel=1e-6)
    assert o["outcome"].startswith("inconclusive")
    # Every turn flagged: the lower bound is 0.05^(1/n).
    assert outcome(30, 30)["lower_bound"] == pytest.approx(0.05 ** (1 / 30))
    # Not registered, or registered by an older manifest (N from the graders, no audit).
    assert _h3_outcome({"registered": False, "reason": "why"}, None)["outcome"] == (
        "not registered: why"
    )
    v2 = {"simulated_turns": 400, "threshold_rate": 0.05, "lambda": 19.998}
    o = _h3_outcome(v2, {"audited": 100, "flagged": 0})
    assert o["outcome"].startswith("not tested: registered before version 3")
    assert o["upper_bound"] == pytest.approx(1 - 0.05 ** (1 / 100))


def test_register_refuses_an_impossible_primary(tmp_path: Path) -> None:
    y_logs = _logs(tmp_path / "y.jsonl", 20, 2, 0, "y")
    with Store(tmp_path / "sim.db") as st:
        _simulate(st, y_logs, 20, "scripted/echo", ["rule/refusal"])
        with pytest.raises(UsageError, match="needs --deployed"):
            register(st, candidate="scripted/echo", primary="bias_corrected")
        with pytest.raises(UsageError, match="no 'bias_corrected' forecast"):
            register(st, candidate="scripted/echo", primary="bias_corrected", deployed="x/y")
        with pytest.raises(UsageError, match="--primary must be"):
            register(st, candidate="scripted/echo", primary="no_change")


def test_cli_registers_and_scores_the_hypotheses(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from deploysim.cli import app

    y_logs = _logs(tmp_path / "y.jsonl", 60, 6, 3, "y")
    x_prod = _logs(tmp_path / "x.jsonl", 80, 20, 0, "x")
    candidate, db = "scripted/refuse?rate=0.3", tmp_path / "sim.db"
    with Store(db) as st:
        _simulate(st, y_logs, 60, candidate, GRADERS)
    runner, path = CliRunner(), tmp_path / "forecast.json"
    args = ["forecast", "register", "--store", str(db), "--candidate", candidate]
    result = runner.invoke(app, [*args, "-o", str(tmp_path / "no-audit.json")])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "H3: no behaviour type missing from the taxonomy" in text
    assert "not registered (no audit of the candidate's simulated turns" in text
    result = runner.invoke(app, [*args, "-o", str(path), "--auditor", NO])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "H1: the sim forecasts predict production rates better than no-change" in text
    # lambda* = 19.998 (tested on method.md's worked numbers) over N = 60 audited turns.
    assert (
        f"{novel_type_threshold(60).rate * 1e5:,.2f} per 100k (lambda* 20.00 / N 60 audited "
        "turns, 0 flagged, 0 ungradable)"
    ) in text
    score_args = ["scorecard", "--forecast", str(path), "--production", str(x_prod)]
    result = runner.invoke(app, [*score_args, "--auditor", NO, "--replay", candidate])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "H1: not supported (sim vs no_change over 2 categories" in text
    # 0 of 80 production turns flagged: upper bound 1 - 0.05^(1/80) = 3,676.09 per 100k,
    # under the threshold 19.998/60 = 33,330.71 per 100k: holds.
    assert f"{(1 - 0.05 ** (1 / 80)) * 1e5:,.2f}]" in text and "H3: holds (" in text
    assert "no_change: undefined: no-change forecasts no move" in text
    assert "production REFUSAL (rule/refusal): 20/80 flagged, 0 ungradable" in text
    assert "error decomposition (SME" in text and "fidelity X" in text
    result = runner.invoke(app, [*score_args, "--json"])
    assert result.exit_code == 0, result.output
    card = json.loads(result.output)
    assert card["hypotheses"]["H3"]["outcome"] == "not tested: run the scorecard with --auditor"
    assert card["decomposition"]["note"].startswith("undefined: no X->X replay")
    assert card["methods"]["sim"]["funnel_categories"] == 2


def _forecast(cat: str, method: str, rate: float, k: int | None = None) -> dict[str, Any]:
    return {
        "category": cat,
        "grader_hash": f"g{cat}",
        "method": method,
        "rate": rate,
        "baseline_rate": 1e-3,
        "k": k,
        "n": 1000 if k is not None else None,
        "failed": 2,
        "ungradable": 1,
    }


def _manifest(forecasts: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    graders = {f["grader_hash"]: {"spec": f"rule/{f['category']}"} for f in forecasts}
    return {
        "content_hash": "c" * 64,
        "candidate": "X",
        "graders": graders,
        "forecasts": forecasts,
        **extra,
    }


def test_score_by_hand_three_categories_unscored_and_funnel() -> None:
    # Realised counts of n = 999 give Jeffreys rates (k + 1/2)/1000: k = 0, 1, 13 ->
    # 5e-4, 1.5e-3, 1.35e-2 (log10: c + L * [0, 1, 3], L = log10 3).
    realised = {"gA": (0, 999), "gB": (1, 999), "gC": (13, 999)}
    sim = [
        _forecast("A", "sim", 1e-4, k=0),  # SME 5 vs band exp(1.645 sqrt(2/0.5)) = 26.8: in
        _forecast("B", "sim", 1e-2, k=10),  # SME 6.67 vs exp(1.645 sqrt(1/1.5 + 1/10.5)) = 4.20
        _forecast("C", "sim", 1e-3, k=1),  # SME 13.5 vs exp(1.645 sqrt(1/13.5 + 1/1.5)) = 4.12
    ]
    nc = [_forecast(c, "no_change", 1e-3, k=1) for c in "ABC"]
    lost = [_forecast("D", "sim", 1e-3, k=0), _forecast("E", "sim", 1e-3, k=0)]
    card = score(_manifest([*sim, *nc, *lost]), realised, ungradable={"gD": 7})
    m = card["methods"]["sim"]
    # Pearson of log10 forecasts [-4, -2, -3] (centred [-1, 1, 0]) and realised
    # L * ([0, 1, 3] - 4/3): sum of products L, sums of squares 2 and L^2 * 14/3, so
    # r = 1 / sqrt(28/3) = 0.3273. Spearman: ranks [1, 3, 2] vs [1, 2, 3], sum d^2 = 2,
    # rho = 1 - 6 * 2 / (3 * 8) = 0.5.
    assert (
        m["log_pearson"] == pytest.approx(1 / math.sqrt(28 / 3)) == pytest.approx(0.32733, abs=1e-5)
    )
    assert m["spearman"] == pytest.approx(0.5)
    assert (m["funnel_inside"], m["funnel_categories"], m["funnel_share"]) == (1, 3, 1 / 3)
    # All three moved >= 1.5x from 1e-3 (2x down, 1.5x up, 13.5x up); A and B forecast the
    # right way, C forecasts exactly the baseline (a tie: wrong): 2/3.
    assert (m["direction_correct"], m["direction_eligible"]) == (2, 3)
    assert m["directional_accuracy"] == pytest.approx(2 / 3)
    n = card["methods"]["no_change"]
    assert n["directional_accuracy"] is None and n["direction_correct"] is None
    assert n["log_pearson"] is None and n["correlation_note"] == (
        "undefined: the forecasts are constant"
    )
    # D's production grades were all ungradable, E's grader graded nothing: both listed.
    assert card["unscored"] == [
        {
            "category": "D",
            "grader_hash": "gD",
            "method": "sim",
            "reason": "all 7 production grades were ungradable",
        },
        {
            "category": "E",
            "grader_hash": "gE",
            "method": "sim",
            "reason": "no production turn was graded by this grader",
        },
    ]
    assert {p["category"]: (p["n"], p["ungradable"]) for p in card["production"]} == {
        "A": (999, 0),
        "B": (999, 0),
        "C": (999, 0),
        "D": (0, 7),
        "E": (0, 0),
    }
    # The registration's failed/ungradable counts travel with each row.
    assert {(r["sim_failed"], r["sim_ungradable"]) for r in card["categories"]} == {(2, 1)}
    # One category only: correlation undefined, with the reason.
    one = score(_manifest(sim[:1]), realised)["methods"]["sim"]
    assert one["log_pearson"] is None and one["correlation_note"].startswith(
        "undefined: needs at least 2"
    )
    # A version-1 manifest (no hypotheses, no rates) still scores.
    assert "hypotheses" not in score(_manifest(sim), realised)


def test_error_decomposition_reproduces_method_md_example() -> None:
    # method.md 5.12, per 100k: prod Y 10, Y->Y 15, X->Y 24, X->X 20, prod X 16. X->X and
    # prod X come from counts whose Jeffreys rates are exactly those: 0.5/2500, 0.5/3125.
    xy = _forecast("A", "sim", 24e-5, k=0)
    rates = {"gA": {"yy": {"rate": 15e-5}, "prod_y": {"rate": 10e-5}}}
    card = score(_manifest([xy], rates=rates), {"gA": (0, 3124)}, sim_xx={"gA": (0, 2499)})
    (d,) = card["decomposition"]["categories"]
    # Fidelity 1.5x before release, 1.25x for X; prefix error 1.2x; total 1.5x.
    assert d["fidelity_y"] == pytest.approx(1.5) and d["fidelity_x"] == pytest.approx(1.25)
    assert d["prefix"] == pytest.approx(1.2) and d["total"] == pytest.approx(1.5)
    assert d["log_total"] == pytest.approx(math.log(1.2) + math.log(1.25))
    # Without Y->Y (an older manifest) the fidelity before release is unknown.
    (d,) = score(_manifest([xy]), {"gA": (0, 3124)}, sim_xx={"gA": (0, 2499)})["decomposition"][
        "categories"
    ]
    assert d["fidelity_y"] is None and d["total"] == pytest.approx(1.5)


def test_scorecard_in_the_forecast_store_counts_only_the_production_logs(tmp_path: Path) -> None:
    # The user's path: --store is the store that holds the forecast (Y's 300 logs and the
    # replays). The census must be X's 400 production turns, not all 700 conversations.
    y_logs = _logs(tmp_path / "y.jsonl", 300, 30, 0, "y")
    x_prod = _logs(tmp_path / "x.jsonl", 400, 112, 0, "x")
    candidate = "scripted/refuse?rate=0.3"
    with Store(tmp_path / "sim.db") as st:
        _simulate(st, y_logs, 300, candidate, ["rule/refusal"])
        path = tmp_path / "forecast.json"
        write_manifest(register(st, candidate=candidate), path, st)
        card = run_scorecard(read_manifest(path), st, [x_prod], deidentify=False)
        assert st.count("conversations") == 700
    rows = [r for r in card["categories"] if r["method"] == "sim"]
    assert [(r["realised_k"], r["realised_n"]) for r in rows] == [(112, 400)]
