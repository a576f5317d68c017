"""Exports: tidy tables (CSV, Parquet), Inspect .eval logs, OpenTelemetry evaluation events."""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deploysim.cli import app
from deploysim.errors import UsageError
from deploysim.estimates import estimate
from deploysim.export import export
from deploysim.report.tables import COMPARISONS, FORECASTS, GRADES, RATES, SCORECARD
from deploysim.report.transcripts import prefix_hash
from deploysim.store import Store
from tests.report.synthetic import Synthetic, build

# The columns formats.md §2 names, in its order; deploysim's extra columns follow them.
SPEC_COLUMNS = {
    "rates": "run_id, model, condition, category, n, n_effective, k, rate, rate_jeffreys, "
    "per_100k, ci_low, ci_high, corrected_rate, judge_se, judge_sp",
    "forecasts": "forecast_id, preregistered_at, prereg_hash, category, candidate, method, rate, "
    "ci_low, ci_high, direction, baseline_rate, ratio, ratio_ci_low, ratio_ci_high",
    "scorecard": "forecast_id, category, realised_k, realised_n, sme, direction_eligible, "
    "direction_correct, nll_regret, in_noise_band",
    "comparisons": "category, model_a, model_b, k_a, n_a, k_b, n_b, rel_change, fisher_p, "
    "significant",
}
TABLES = {
    "rates": RATES,
    "comparisons": COMPARISONS,
    "grades": GRADES,
    "forecasts": FORECASTS,
    "scorecard": SCORECARD,
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Synthetic:
    return build(tmp_path_factory.mktemp("export") / "s.db", replays=400, hostile=True, extras=True)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_csv_tables_have_the_documented_columns(store: Synthetic, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["export", "--store", str(store.path), "-f", "csv", "-o", str(tmp_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    written = json.loads(result.stdout)["tables"]
    for name, spec in SPEC_COLUMNS.items():
        with (tmp_path / f"{name}.csv").open(encoding="utf-8") as f:
            header = next(csv.reader(f))
        assert header[: len(spec.split(", "))] == spec.split(", ")
    with Store(store.path) as st:
        rows = estimate(st)
    rates = read_csv(tmp_path / "rates.csv")
    assert len(rates) == written["rates"] == len(rows)
    by = {(r["model"], r["category"]): r for r in rates}
    for e in rows:
        r = by[(e.model, e.category)]
        assert (int(r["n"]), int(r["k"])) == (e.n, e.k)
        assert float(r["rate"]) == pytest.approx(e.k / e.n)
        assert float(r["per_100k"]) == pytest.approx(float(r["rate_jeffreys"]) * 100_000)
        # The effective n behind the interval: at most n, below it when turns share a
        # conversation.
        assert e.effective_n is not None
        assert float(r["n_effective"]) == pytest.approx(e.effective_n) and 0 < e.effective_n <= e.n
    # 4 models x 3 categories, each vs logged.
    assert written["comparisons"] == 12 == len(read_csv(tmp_path / "comparisons.csv"))
    grades = read_csv(tmp_path / "grades.csv")
    assert len(grades) == written["grades"] == store.grades
    assert "rationale" not in grades[0]
    assert sum(g["status"] == "ungradable" for g in grades) == store.ungradable
    assert sum(g["flagged"] == "true" for g in grades) == store.flagged
    assert written["forecasts"] == 2 and written["scorecard"] == 1


def test_rationales_only_when_asked(store: Synthetic, tmp_path: Path) -> None:
    with Store(store.path) as st:
        export(st, "csv", tmp_path, include_explanations=True)
    grades = read_csv(tmp_path / "grades.csv")
    assert any("check on" in g["rationale"] for g in grades)


@pytest.mark.exports
def test_parquet_tables_are_typed_and_complete(store: Synthetic, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    with Store(store.path) as st:
        written = export(st, "parquet", tmp_path)["tables"]
    for name, columns in TABLES.items():
        table = pq.read_table(tmp_path / f"{name}.parquet")
        assert table.num_rows == written[name]
        assert table.schema.names == [c for c, _ in columns]
    grades = pq.read_table(tmp_path / "grades.parquet").to_pydict()
    assert sum(1 for f in grades["flagged"] if f) == store.flagged
    assert str(pq.read_table(tmp_path / "rates.parquet").schema.field("n").type) == "int64"


def test_empty_tables_keep_their_columns(tmp_path: Path) -> None:
    syn = build(tmp_path / "s.db", replays=8, models=2)
    with Store(syn.path) as st:
        written = export(st, "csv", tmp_path / "out")["tables"]
    assert written["forecasts"] == 0
    with (tmp_path / "out" / "forecasts.csv").open() as f:
        assert next(csv.reader(f))[0] == "forecast_id"


def test_otel_events_one_per_grade(store: Synthetic, tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    with Store(store.path) as st:
        assert export(st, "otel", out)["events"] == store.grades
    events = [json.loads(line) for line in out.read_text(encoding="utf-8").split("\n")[:-1]]
    assert len(events) == store.grades
    for e in events:
        a = e["attributes"]
        assert e["event_name"] == "gen_ai.evaluation.result"
        assert a["gen_ai.evaluation.name"].startswith("deploysim.")
        assert a["gen_ai.response.id"] and "gen_ai.evaluation.explanation" not in a
        if "error.type" in a:
            assert "gen_ai.evaluation.score.value" not in a
        else:
            assert a["gen_ai.evaluation.score.label"] in ("flagged", "not_flagged")
            assert a["gen_ai.evaluation.score.value"] in (0.0, 1.0)
    assert sum("error.type" in e["attributes"] for e in events) == store.ungradable
    assert (
        sum(e["attributes"].get("gen_ai.evaluation.score.label") == "flagged" for e in events)
        == store.flagged
    )
    with Store(store.path) as st:
        export(st, "otel", out, include_explanations=True)
    first = json.loads(out.read_text(encoding="utf-8").split("\n")[:-1][0])
    assert "gen_ai.evaluation.explanation" in first["attributes"]


@pytest.mark.exports
def test_inspect_logs_read_back_by_inspect(store: Synthetic, tmp_path: Path) -> None:
    import inspect_ai.log as log_mod

    with Store(store.path) as st:
        logs = export(st, "inspect", tmp_path)["logs"]
        replays = dict(
            st.db.execute("SELECT spec_hash, COUNT(*) FROM replays GROUP BY spec_hash").fetchall()
        )
        ok_grades = dict(
            st.db.execute(
                "SELECT r.spec_hash, COUNT(*) FROM grades g JOIN replays r ON "
                "g.target = 'replay' AND r.id = g.target_id WHERE g.status = 'ok' GROUP BY 1"
            ).fetchall()
        )
        logged_ok = st.db.execute(
            "SELECT COUNT(*) FROM grades WHERE target = 'reference' AND status = 'ok'"
        ).fetchone()[0]
        prefix_ids = {
            prefix_hash(c, cut)
            for c, cut in st.db.execute("SELECT conversation_hash, cut FROM prefixes")
        }
    assert len(logs) == len(store.models) + 1  # each model, and the logged responses
    for entry in logs:
        log = log_mod.read_eval_log(entry["path"])
        assert log.status == "success"
        samples = log.samples or []
        n_scores = sum(len(s.scores or {}) for s in samples)
        if entry["model"] == "logged":
            assert len(samples) == store.prefixes and n_scores == logged_ok
        else:
            h = store.spec_hashes[store.models.index(entry["model"])]
            assert len(samples) == replays[h] and n_scores == ok_grades[h]
            assert log.eval.model == entry["model"]
        assert (len(samples), n_scores) == (entry["samples"], entry["scores"])
        for s in samples:
            assert s.id in prefix_ids and s.epoch == 1
            assert s.messages[: len(s.input)] == s.input
            assert s.metadata["cut_turn_index"] == 2
            for name, score in (s.scores or {}).items():
                assert name in ("REFUSAL", "PROFANITY", "TOOL")
                assert score.value in (0, 1)
                assert score.answer == ("flagged" if score.value else "not_flagged")
                assert len(score.metadata["grader_hash"]) == 64
            if s.error is not None:
                assert "timeout" in s.error.message and not s.scores
        assert {sc.name for sc in log.results.scores} == {"REFUSAL", "PROFANITY", "TOOL"}
        assert log.eval.metadata["prefix_manifest_hash"]


@pytest.mark.exports
def test_inspect_log_reingests(store: Synthetic, tmp_path: Path) -> None:
    """deploysim's own Inspect reader takes the exported logs back as conversations."""
    with Store(store.path) as st:
        logs = export(st, "inspect", tmp_path / "logs")["logs"]
    result = CliRunner().invoke(
        app, ["ingest", logs[1]["path"], "--store", str(tmp_path / "back.db"), "--json"]
    )
    assert result.exit_code == 0, result.output
    files = json.loads(result.stdout)["files"]
    assert files[0]["format"] == "inspect" and files[0]["kept"] == logs[1]["samples"]


def test_bad_format_and_output_kind(store: Synthetic, tmp_path: Path) -> None:
    with Store(store.path) as st:
        with pytest.raises(UsageError, match="unknown export format"):
            export(st, "xml", tmp_path / "x")
        (tmp_path / "file").write_text("")
        with pytest.raises(UsageError, match="writes a directory"):
            export(st, "csv", tmp_path / "file")
        with pytest.raises(UsageError, match="writes one file"):
            export(st, "otel", tmp_path)


def test_openai_export_kept(store: Synthetic, tmp_path: Path) -> None:
    out = tmp_path / "convs.jsonl"
    with Store(store.path) as st:
        assert export(st, "openai", out)["conversations"] == store.prefixes
    first = json.loads(out.read_text(encoding="utf-8").split("\n")[:-1][0])
    assert [m["role"] for m in first["messages"]] == ["system", "user", "assistant"]


@pytest.mark.exports
def test_inspect_export_inside_an_event_loop(store: Synthetic, tmp_path: Path) -> None:
    """From a notebook or any running loop, where asyncio.run() refuses to nest."""

    async def main() -> list[dict[str, object]]:
        with Store(store.path) as st:
            logs: list[dict[str, object]] = export(st, "inspect", tmp_path)["logs"]
            return logs

    assert len(asyncio.run(main())) == len(store.models) + 1
