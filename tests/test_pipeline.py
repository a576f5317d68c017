"""`deploysim run`: the example config validates, and the pipeline runs end to end and resumes."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploysim.config import GradeConfig, IngestConfig, ReplayConfig, load_config
from deploysim.errors import UsageError
from deploysim.pipeline import run_pipeline
from tests.conftest import DATA

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "run.toml"


def test_example_config_is_valid_and_points_at_real_data() -> None:
    config = load_config(EXAMPLE)
    assert config.replay and config.grade is not None and config.ingest.deidentify
    from deploysim.pipeline import resolve_paths

    assert resolve_paths(config.ingest.paths, EXAMPLE.parent)


def test_bad_config_names_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[ingest]\npaths = ["x"]\n[sample]\nsizee = 3\n')
    with pytest.raises(UsageError, match=r"bad.toml.*sample.sizee"):
        load_config(bad)


def test_pipeline_runs_end_to_end_and_resumes(tmp_path: Path) -> None:
    config = load_config(EXAMPLE)
    config = config.model_copy(
        update={
            "ingest": IngestConfig(paths=[str(DATA / "chat" / "*.jsonl")], deidentify=False),
            "replay": [
                ReplayConfig(model="scripted/refuse?rate=0.5"),
                ReplayConfig(model="scripted/echo"),
            ],
            "grade": GradeConfig(
                graders=["rule/refusal", "judge/K_NV"], judge="scripted/yes?p=0.2"
            ),
            "compare": [],
        }
    )
    first = run_pipeline(config, tmp_path)
    assert first["sample"]["size"] == 40
    assert [r["ok"] for r in first["replay"]] == [40, 40]
    assert first["grade"]["ungradable"] == 0 and first["grade"]["ok"] > 160
    models = {e["model"] for e in first["estimates"]}
    assert models == {"scripted/refuse?rate=0.5", "scripted/echo", "logged"}
    assert Path(first["report"]).is_file()
    # Running again does no new work.
    again = run_pipeline(config, tmp_path)
    assert [r["pending"] for r in again["replay"]] == [0, 0]
    assert again["grade"]["pending"] == 0
    assert {i["status"] for i in again["ingest"]} == {"already ingested"}


def test_ingest_workers_deidentify_and_stop_after_ingest(tmp_path: Path) -> None:
    import multiprocessing

    config = load_config(EXAMPLE)
    config = config.model_copy(
        update={
            "ingest": IngestConfig(
                paths=[str(DATA / "chat" / "hh-*.jsonl")], deidentify=True, workers="auto"
            ),
            "sample": config.sample.model_copy(update={"size": 3}),
            "replay": [ReplayConfig(model="scripted/echo")],
            "grade": None,
            "compare": [],
        }
    )
    result = run_pipeline(config, tmp_path)
    assert result["ingest"][0]["conversations"] > 10
    from deploysim.store import Store

    with Store(tmp_path / config.store) as st:
        assert st.meta()["deid_version"].startswith("deid-")
    # The de-identifying workers hold a loaded detector each: gone once ingest is done.
    assert multiprocessing.active_children() == []
    assert set(result["seconds"]) >= {"ingest", "sample", "estimates and report"}


@pytest.mark.local
@pytest.mark.qwen
def test_a_calibrated_grader_ships_its_validation_into_the_run(tmp_path: Path) -> None:
    # The demo's REFUSAL grader: rule + judge at a calibrated threshold. Its held-out validation
    # (measured of exactly this grader version) is recorded, so the rate is corrected.
    from deploysim.demo import demo_config

    refusal = demo_config().grade.graders[0]  # type: ignore[union-attr]
    config = load_config(EXAMPLE)
    config = config.model_copy(
        update={
            "ingest": IngestConfig(paths=[str(DATA / "chat" / "hh-*.jsonl")], deidentify=False),
            "sample": config.sample.model_copy(update={"size": 2}),
            "replay": [ReplayConfig(model="scripted/refuse?rate=0.5")],
            "grade": GradeConfig(
                graders=[refusal], judge="llamacpp/qwen2.5-coder-1.5b", concurrency=1
            ),
            "compare": [],
        }
    )
    result = run_pipeline(config, tmp_path)
    rows = [e for e in result["estimates"] if e["category"] == "REFUSAL"]
    assert rows and all(e["validation"] == "validated" for e in rows)
    assert all(e["judge_se"] is not None and e["judge_sp"] is not None for e in rows)
    assert any(e["corrected_rate"] is not None for e in rows)
