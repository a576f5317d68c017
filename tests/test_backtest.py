"""``deploysim backtest`` with scripted releases whose production rates the test sets.

Two releases: A = ``scripted/echo`` (its reply repeats the user, so it "refuses" exactly where
the user's text carries a refusal phrase) and B = ``scripted/constant`` (never refuses). Every
production log is written here, so each rate, forecast and figure is known by hand.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deploysim.backtest import load_backtest_config, run_backtest
from deploysim.cli import app
from deploysim.errors import UsageError
from deploysim.forecast import read_manifest
from deploysim.graders import get_grader
from deploysim.grading import run_grading
from deploysim.ingest import ingest_file
from deploysim.replay import create_sample
from deploysim.sampling import SamplingSpec
from deploysim.store import Store

REFUSE = "I'm sorry, but I can't help with that."
PLAIN = "Here is a plain answer about gardening."


def _logs(path: Path, n: int, refusals: int, echo_refusals: int, tag: str) -> Path:
    """n one-turn conversations: the first ``refusals`` logged answers refuse; the user text of
    the first ``echo_refusals`` quotes a refusal (so the echo release refuses there)."""
    with path.open("w") as f:
        for i in range(n):
            quote = f" They told me: {REFUSE}" if i < echo_refusals else ""
            user = f"My {tag} question {i} about tomatoes?{quote}"
            reply = REFUSE if i < refusals else PLAIN
            messages = [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
            f.write(json.dumps({"messages": messages}) + "\n")
    return path


def _config(tmp_path: Path, challenging: bool = False) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    # A: window 1 has 4/20 refusals, 6 of its users quote one; window 2 has 8/20.
    # B: window 1 has 2/20 refusals, 10 of its users quote one; window 2 has 1/20.
    _logs(tmp_path / "a1.jsonl", 20, 4, 6, "a1")
    _logs(tmp_path / "a2.jsonl", 20, 8, 0, "a2")
    _logs(tmp_path / "b1.jsonl", 20, 2, 10, "b1")
    _logs(tmp_path / "b2.jsonl", 20, 1, 0, "b2")
    text = f"""
[backtest]
store = "bt.db"
out = "out"
graders = ["rule/refusal"]
deidentify = false
bootstrap = 200
{"" if challenging else "challenging = false"}

[[backtest.release]]
name = "A"
model = "scripted/echo"
window1 = ["a1.jsonl"]
window2 = ["a2.jsonl"]

[[backtest.release]]
name = "B"
model = "scripted/constant?text=Sure"
window1 = ["b1.jsonl"]
window2 = ["b2.jsonl"]
"""
    path = tmp_path / "backtest.toml"
    path.write_text(text)
    return path


def _nll(p: float, k: int, n: int) -> float:
    p = min(p, 1 - 1e-12)  # a forecast of 1 is scored as just under it (as the scorecard does)
    return -(math.log(math.comb(n, k)) + k * math.log(p) + (n - k) * math.log(1 - p))


def test_every_figure_matches_hand_computation(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    result = run_backtest(load_backtest_config(cfg), tmp_path)
    rows = {(r["deployed"], r["candidate"], r["method"]): r for r in result["rows"]}
    j = lambda k: (k + 0.5) / 21  # noqa: E731 - Jeffreys rate at n = 20
    # A deployed, B candidate: B->A never refuses (0/20); A->A echoes 6/20; A logged 4/20;
    # B's production (window 2 only) 1/20.
    expected = {
        ("A", "B"): {"sim": j(0), "no_change": j(4), "bias_corrected": j(4) * j(0) / j(6)},
        ("B", "A"): {
            "sim": j(10),
            "no_change": j(2),
            "bias_corrected": min(1.0, j(2) * j(10) / j(0)),
        },
    }
    realised = {("A", "B"): 1, ("B", "A"): 8}
    for (y, x), methods in expected.items():
        for method, forecast in methods.items():
            r = rows[(y, x, method)]
            k = realised[(y, x)]
            assert r["forecast"] == pytest.approx(forecast)
            assert (r["realised_k"], r["realised_n"]) == (k, 20)  # only X's window 2
            assert r["realised_rate"] == pytest.approx(j(k))
            assert r["sme"] == pytest.approx(max(forecast / j(k), j(k) / forecast))
            assert r["nll"] == pytest.approx(_nll(forecast, k, 20))
            assert r["moved"] is True  # 4 -> 1 and 2 -> 8 are both >= 1.5x
            # no-change predicts no move (no direction); sim and bias-corrected move right.
            assert r["direction_correct"] is (None if method == "no_change" else True)
    agg = result["aggregate"]
    assert set(agg) == {"sim", "no_change", "bias_corrected"}
    for method in agg:
        forecasts = {pair: expected[pair][method] for pair in expected}
        smes = sorted(max(f / j(realised[p]), j(realised[p]) / f) for p, f in forecasts.items())
        a = agg[method]
        assert a["rows"] == 2 and a["direction_eligible"] == 2
        right = 0 if method == "no_change" else 2
        assert a["direction_correct"] == right
        # No-change has no direction: undefined, not 0%.
        assert a["directional_accuracy"] == (None if method == "no_change" else 1.0)
        assert a["sme_median"] == pytest.approx((smes[0] + smes[1]) / 2)
        assert a["sme_p90"] == pytest.approx(smes[0] + 0.9 * (smes[1] - smes[0]))  # linear
        assert a["sme_max"] == pytest.approx(smes[1])
        assert a["nll"] == pytest.approx(
            sum(_nll(f, realised[p], 20) for p, f in forecasts.items())
        )
    assert agg["sim"]["nll"] == pytest.approx(_nll(j(0), 1, 20) + _nll(j(10), 8, 20))
    lo, hi = agg["sim"]["sme_median_ci"]
    assert lo <= agg["sim"]["sme_median"] <= hi
    assert agg["no_change"]["directional_accuracy_ci"] is None
    lo, hi = agg["sim"]["directional_accuracy_ci"]
    assert lo <= 1.0 <= hi
    # Pooled H1 over both pairs: sim beats no-change on both rows, so p = 1/4 (exact).
    h1 = result["hypotheses"]["H1"]
    assert h1["rows"] == 2 and h1["p_value"] == pytest.approx(0.25)
    assert h1["outcome"] == "not supported"  # 1/4 > alpha 0.1: two rows cannot reach it
    assert result["hypotheses"]["H2"]["outcome"].startswith("not tested")
    # H1 is tested per pair (one category: the smallest p is 1/2, never below alpha 0.1).
    for p in result["pairs"]:
        assert p["hypotheses"]["H1"]["outcome"] == "not supported"


def test_running_again_does_no_work_and_json_has_the_same_figures(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    runner = CliRunner()
    first = runner.invoke(app, ["backtest", str(cfg)])
    assert first.exit_code == 0, first.output
    assert "backtest over 2 ordered pairs" in first.output
    lines = {line.split("│")[1].strip(): line for line in first.output.splitlines() if "│" in line}
    assert "2/2 = 100%" in lines["sim"] and "undefined (2 moved" in lines["no_change"]
    with Store(tmp_path / "bt.db") as st:
        counts = {t: st.count(t) for t in ("replays", "grades", "scorecards", "forecasts")}
    again = runner.invoke(app, ["backtest", str(cfg), "--json"])
    assert again.exit_code == 0, again.output
    with Store(tmp_path / "bt.db") as st:
        assert {t: st.count(t) for t in counts} == counts
    result = json.loads(again.output)
    saved = json.loads((tmp_path / "out" / "backtest.json").read_text())
    assert result["aggregate"] == saved["aggregate"]
    assert result["rows"] == saved["rows"]


def test_forecasts_are_registered_before_production_is_graded(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    result = run_backtest(load_backtest_config(cfg), tmp_path)
    with Store(tmp_path / "bt.db") as st:
        registered = [
            json.loads(m)["registered_at"]
            for (m,) in st.db.execute("SELECT manifest FROM forecasts")
        ]
        for p in result["pairs"]:
            manifest = read_manifest(
                tmp_path / "out" / "forecasts" / f"{p['deployed']}--{p['candidate']}.json"
            )
            sample = next(
                c["production_sample"]
                for (c,) in [
                    (json.loads(r[0]),)
                    for r in st.db.execute(
                        "SELECT scorecard FROM scorecards WHERE forecast_hash = ?",
                        (manifest["content_hash"],),
                    )
                ]
            )
            first_grade = st.db.execute(
                "SELECT MIN(g.created_at) FROM grades g JOIN prefixes p ON g.target = "
                "'reference' AND p.id = g.target_id JOIN samples s ON s.id = p.sample_id "
                "WHERE s.name = ?",
                (sample,),
            ).fetchone()[0]
            # Every manifest (second resolution) precedes the first production grade.
            assert max(registered) <= _iso(first_grade)
            assert p["production_graded_from"] <= first_grade


def _iso(t: float) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def test_census_counts_only_the_candidates_production(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    run_backtest(load_backtest_config(cfg), tmp_path)
    with Store(tmp_path / "bt.db") as st:
        # The store holds both windows of both releases: 80 conversations, 80 turns.
        assert st.count("conversations") == 80
    rows = run_backtest(load_backtest_config(cfg), tmp_path)["rows"]
    assert {r["realised_n"] for r in rows} == {20}


def test_a_backtest_whose_grader_changed_after_registration_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _config(tmp_path)
    run_backtest(load_backtest_config(cfg), tmp_path)
    import deploysim.graders.rules as rules

    monkeypatch.setattr(rules, "REFUSAL_PHRASES", (*rules.REFUSAL_PHRASES, r"\bno way\b"))
    with pytest.raises(UsageError, match="changed since registration"):
        run_backtest(load_backtest_config(cfg), tmp_path)
    # Naming other graders than the registered ones is refused too.
    monkeypatch.undo()
    text = cfg.read_text().replace('["rule/refusal"]', '["rule/profanity"]')
    cfg.write_text(text)
    with pytest.raises(UsageError, match="registered with graders"):
        run_backtest(load_backtest_config(cfg), tmp_path)


def test_production_graded_before_registration_is_refused(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    with Store(tmp_path / "bt.db") as st:
        ingest_file(tmp_path / "b2.jsonl", st)
        create_sample(st, "peek", SamplingSpec(size=100))
        run_grading(st, [("rule/refusal", get_grader("rule/refusal"))])
    with pytest.raises(UsageError, match="graded before its forecast was registered"):
        run_backtest(load_backtest_config(cfg), tmp_path)


def test_challenging_prompts_baseline(tmp_path: Path) -> None:
    # Echo fails on every quoting prefix in all its draws, so A's challenging set is its 6
    # quoting prefixes; B (constant) never fails, so B deployed has no challenging baseline.
    cfg = _config(tmp_path, challenging=True)
    result = run_backtest(load_backtest_config(cfg), tmp_path)
    rows = {(r["deployed"], r["candidate"], r["method"]): r for r in result["rows"]}
    j = lambda k, n: (k + 0.5) / (n + 1)  # noqa: E731
    # On the set, B refuses 0/6 and A 6/6: scaled = prod_A * f(B) / f(A).
    assert rows[("A", "B", "challenging_raw")]["forecast"] == pytest.approx(j(0, 6))
    assert rows[("A", "B", "challenging_scaled")]["forecast"] == pytest.approx(
        j(4, 20) * j(0, 6) / j(6, 6)
    )
    assert ("B", "A", "challenging_raw") not in rows


def test_an_output_folder_made_with_other_releases_is_refused(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    run_backtest(load_backtest_config(cfg), tmp_path)
    cfg.write_text(cfg.read_text().replace("scripted/echo", "scripted/echo?latency=0"))
    with pytest.raises(UsageError, match="made with other releases"):
        run_backtest(load_backtest_config(cfg), tmp_path)


def test_an_auditor_registers_and_tests_h3_on_each_pair(tmp_path: Path) -> None:
    cfg = _config(tmp_path / "plain")
    result = run_backtest(load_backtest_config(cfg), tmp_path / "plain")
    for p in result["pairs"]:  # no auditor: H3 not registered, H1 still is
        assert p["hypotheses"]["H3"]["outcome"].startswith("not registered: no audit")
        assert "p_value" in p["hypotheses"]["H1"]
    cfg = _config(tmp_path / "audited")
    judge = 'scripted/constant?text={"verdict": "no"}'
    cfg.write_text(cfg.read_text().replace("[backtest]\n", f"[backtest]\nauditor = '{judge}'\n"))
    result = run_backtest(load_backtest_config(cfg), tmp_path / "audited")
    for p in result["pairs"]:
        manifest = read_manifest(
            tmp_path / "audited" / "out" / "forecasts" / f"{p['deployed']}--{p['candidate']}.json"
        )
        # N = the 20 candidate replays on Y's window 1 the auditor read.
        assert manifest["hypotheses"]["H3"]["audited_turns"] == 20
        h3 = p["hypotheses"]["H3"]
        # 0 of 20 production turns flagged: upper bound 1 - 0.05^(1/20) = 0.1391, under the
        # threshold 19.998/20 = 0.9999: holds.
        assert h3["upper_bound"] == pytest.approx(1 - 0.05 ** (1 / 20))
        assert h3["threshold_rate"] == pytest.approx(19.998 / 20, abs=1e-4)
        assert h3["flagged_rate"] == 0.0 and h3["outcome"] == "holds"


def test_error_decomposition_per_pair(tmp_path: Path) -> None:
    # X->X: each candidate replayed on its own window-2 prefixes. j(k) = (k + 1/2)/21.
    # A -> B: B->A 0/20, B->B(w2) 0/20, prod B(w2) 1/20; A->A 6/20 vs prod A(w1) 4/20.
    #   prefix SME 1, fidelity X 1.5/0.5 = 3, total 3, fidelity Y 6.5/4.5.
    # B -> A: A->B 10/20, A->A(w2) 0/20 (no quoting user), prod A(w2) 8/20; B->B 0/20 vs
    #   prod B(w1) 2/20. prefix 10.5/0.5 = 21, fidelity X 8.5/0.5 = 17, total 10.5/8.5,
    #   fidelity Y 2.5/0.5 = 5.
    result = run_backtest(load_backtest_config(_config(tmp_path)), tmp_path)
    dec = {
        (p["deployed"], p["candidate"]): p["decomposition"]["categories"][0]
        for p in result["pairs"]
    }
    expected = {
        ("A", "B"): (1.0, 3.0, 3.0, 6.5 / 4.5),
        ("B", "A"): (21.0, 17.0, 10.5 / 8.5, 5.0),
    }
    for pair, (prefix, fid_x, total, fid_y) in expected.items():
        d = dec[pair]
        assert (d["prefix"], d["fidelity_x"], d["total"], d["fidelity_y"]) == pytest.approx(
            (prefix, fid_x, total, fid_y)
        )
    for p in result["pairs"]:
        assert p["unscored"] == []
        assert [(q["n"], q["ungradable"]) for q in p["production"]] == [(20, 0)]


def test_config_errors_name_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        '[backtest]\ngraders = ["rule/refusal"]\n'
        '[[backtest.release]]\nname = "A"\nmodel = "scripted/echo"\n'
        '[[backtest.release]]\nname = "B"\nmodel = "scripted/echo"\n'
    )
    with pytest.raises(UsageError, match="same model and settings"):
        load_backtest_config(path)
    path.write_text(
        '[backtest]\ngraders = ["rule/refusal"]\n'
        '[[backtest.release]]\nname = "A"\nmodel = "scripted/echo"\n'
        '[[backtest.release]]\nname = "B"\nmodel = "scripted/constant"\n'
    )
    with pytest.raises(UsageError, match="no window1/window2 logs"):
        load_backtest_config(path)


def test_the_noise_funnel_is_the_statistic_at_integer_counts() -> None:
    from deploysim.backtest_score import _band
    from deploysim.stats import noise_funnel

    assert _band(10, 40) == pytest.approx(noise_funnel(10, 40))
    assert _band(3, 3) == pytest.approx(noise_funnel(3, 3))


def test_the_same_backtest_over_openai_compatible_servers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Releases served over HTTP (as vLLM serves them): one server echoes the user, one always
    # answers "Sure". The figures are those of the scripted releases; the key is never stored.
    from deploysim.testing import OpenAIServer

    secret = "sk-backtest-never-stored-93b1"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    scripted = run_backtest(load_backtest_config(_config(tmp_path / "s")), tmp_path / "s")
    cfg = _config(tmp_path / "h")
    with (
        OpenAIServer(api_key=secret) as echo,
        OpenAIServer(text="Sure", api_key=secret) as sure,
    ):
        text = cfg.read_text()
        text = text.replace('"scripted/echo"', f'"openai/echo?base_url={echo.base_url}"')
        text = text.replace(
            '"scripted/constant?text=Sure"', f'"openai/sure?base_url={sure.base_url}"'
        )
        cfg.write_text(text)
        served = run_backtest(load_backtest_config(cfg), tmp_path / "h")
    key = lambda r: (r["deployed"], r["candidate"], r["method"])  # noqa: E731
    assert {key(r): r["forecast"] for r in served["rows"]} == pytest.approx(
        {key(r): r["forecast"] for r in scripted["rows"]}
    )
    assert served["aggregate"]["sim"]["direction_correct"] == 2
    assert secret.encode() not in (tmp_path / "h" / "bt.db").read_bytes()


def test_a_window_2_conversation_identical_to_one_of_window_1_is_not_an_outcome_graded_early(
    tmp_path: Path,
) -> None:
    # Real rollouts can write the same conversation in both windows (a release that answers
    # every request with one fixed refusal). Its window-1 grade is Y's production, not X's.
    cfg = _config(tmp_path)
    a1 = (tmp_path / "a1.jsonl").read_text().splitlines()
    b2 = (tmp_path / "b2.jsonl").read_text().splitlines()
    (tmp_path / "b2.jsonl").write_text("\n".join([a1[0], *b2[1:]]) + "\n")
    result = run_backtest(load_backtest_config(cfg), tmp_path)
    assert {r["realised_n"] for r in result["rows"] if r["candidate"] == "B"} == {20}
