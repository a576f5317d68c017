"""The public Python API: the exported names, lazily imported, and the README's example."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import deploysim as ds
from tests.conftest import HH

EXPECTED = {
    "__version__",
    "Conversation",
    "DeploysimError",
    "Estimate",
    "GenerateConfig",
    "InputError",
    "Message",
    "ReplaySpec",
    "SamplingSpec",
    "Store",
    "UsageError",
    "compare",
    "create_sample",
    "estimate",
    "expand_paths",
    "get_grader",
    "get_model",
    "ingest_file",
    "load_backtest_config",
    "load_config",
    "read_manifest",
    "register",
    "rollout",
    "run_backtest",
    "run_grading",
    "run_pipeline",
    "run_replay",
    "run_scorecard",
    "write_manifest",
    "write_report",
}


def test_all_is_exactly_the_public_api() -> None:
    assert set(ds.__all__) == EXPECTED
    assert set(ds._HOMES) == EXPECTED - {"__version__"}  # every name has a home
    for name in ds.__all__:
        assert getattr(ds, name) is not None, name
        assert name in dir(ds)


def test_importing_deploysim_is_cheap() -> None:
    # No stage module (presidio, spaCy, the SDKs) is loaded by `import deploysim` alone.
    code = (
        "import sys, deploysim; print(sorted(m for m in sys.modules if m.startswith('deploysim')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['deploysim']"


def test_unknown_names_are_attribute_errors() -> None:
    try:
        ds.nosuch  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as e:
        assert "nosuch" in str(e)
    else:
        raise AssertionError("no AttributeError")


def test_the_docstring_example_runs(tmp_path: Path) -> None:
    with ds.Store(tmp_path / "run.db") as store:
        ds.ingest_file(HH, store)
        ds.create_sample(store, "default", ds.SamplingSpec(size=10))
        ds.run_replay(store, ds.ReplaySpec(model="scripted/refuse?rate=0.5"))
        ds.run_grading(store, [("rule/refusal", ds.get_grader("rule/refusal"))])
        rows = {e.model: e for e in ds.estimate(store)}
    assert rows["scripted/refuse?rate=0.5"].n == 10
    assert 1 <= rows["scripted/refuse?rate=0.5"].k <= 9
