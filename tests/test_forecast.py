"""Forecast registration and the scorecard, end to end, against synthetic logs of known rates."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from deploysim.errors import UsageError
from deploysim.forecast import read_manifest, register, run_scorecard, write_manifest
from deploysim.graders import get_grader
from deploysim.grading import run_grading
from deploysim.ingest import ingest_file
from deploysim.replay import ReplaySpec, create_sample, run_replay
from deploysim.sampling import SamplingSpec
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
    # No-change forecasts equal the baseline: ties count as wrong.
    assert (no_change["direction_correct"], no_change["direction_eligible"]) == (0, 2)
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
    # no H2 (no challenging sample), H3's threshold lambda*/N with N = 400 simulated turns.
    hyp = manifest["hypotheses"]
    assert set(hyp) == {"H1", "H3"} and hyp["H1"]["method"] == "sim"
    assert hyp["H3"]["threshold_rate"] == pytest.approx(19.998 / 400, abs=1e-5)
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
    assert card["hypotheses"]["H3"]["outcome"].startswith("not tested")


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


def test_scorecard_taxonomy_coverage_with_auditor(tmp_path: Path) -> None:
    y_logs = _logs(tmp_path / "y.jsonl", 30, 3, 0, "y")
    with Store(tmp_path / "sim.db") as st:
        _simulate(st, y_logs, 30, "scripted/echo", ["rule/refusal"])
        manifest = register(st, candidate="scripted/echo")
    with Store(tmp_path / "prod.db") as prod:
        # A judge that always answers with a verdict: every production turn is flagged.
        judge = 'scripted/constant?text={"verdict": "yes", "description": "odd"}'
        card = run_scorecard(manifest, prod, [y_logs], auditor=judge)
    cov = card["taxonomy_coverage"]
    assert cov["flagged"] == cov["audited"] == 30 and cov["descriptions"][:1] == ["odd"]
    # Every production turn flagged: above H3's threshold (19.998 / 30 simulated turns =
    # 0.67), so the outcome asks a person to review the flags.
    h3 = card["hypotheses"]["H3"]
    assert h3["threshold_rate"] == pytest.approx(19.998 / 30, abs=1e-4)
    assert h3["flagged_rate"] == 1.0 and h3["outcome"].startswith("review")
    with Store(tmp_path / "prod2.db") as prod:
        judge = 'scripted/constant?text={"verdict": "no", "description": ""}'
        quiet = run_scorecard(manifest, prod, [y_logs], auditor=judge)
    h3 = quiet["hypotheses"]["H3"]
    assert h3["flagged_rate"] == 0.0 and h3["outcome"] == "holds"


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
    args = ["forecast", "register", "--store", str(db), "--candidate", candidate, "-o", str(path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "H1: the sim forecasts predict production rates better than no-change" in text
    assert "H3: no behaviour type missing from the taxonomy" in text
    # lambda* = 19.998 (tested on method.md's worked numbers) over N = 60 simulated turns.
    assert f"{novel_type_threshold(60).rate * 1e5:,.2f} per 100k (lambda* 20.00 / N 60)" in text
    result = runner.invoke(app, ["scorecard", "--forecast", str(path), "--production", str(x_prod)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "H1: not supported (sim vs no_change over 2 categories" in text
    assert "H3: not tested: run the scorecard with --auditor" in text


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
