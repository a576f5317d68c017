"""One seam for every executor: replay and grading through local, processes and Ray store the
same rows for seeded scripted models, and ``choose`` is the one place names become executors."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from deploysim.agent import RetryPolicy
from deploysim.errors import IncompleteRunError, UsageError
from deploysim.execute import LocalExecutor, choose
from deploysim.execute.processes import ProcessExecutor
from deploysim.graders import get_grader
from deploysim.grading import run_grading
from deploysim.ingest import ingest_file
from deploysim.replay import ReplaySpec, create_sample, run_replay
from deploysim.sampling import SamplingSpec
from deploysim.stage import MAX_PASSES, Executor, passes
from deploysim.store import Store
from deploysim.tools import ToolPolicy
from tests.conftest import HH, OASST, TAU, tau_user

FAST = RetryPolicy(max_attempts=3, base_s=0.001, cap_s=0.01)
ARGS = quote(json.dumps({"user_id": tau_user()[0]}))
SPECS = [
    (ReplaySpec(model="scripted/refuse?rate=0.5"), 2),
    # retryable failures: attempts and retry counts must match too
    (ReplaySpec(model="scripted/fail?rate=0.3&kind=rate_limit"), 1),
    # the agent loop over the tool layer: recorded tool results come from the driver's corpus
    (
        ReplaySpec(
            model=f"scripted/call?tool=get_user_details&args={ARGS}&times=2",
            tools=ToolPolicy(mode="replay"),
        ),
        1,
    ),
]
GRADERS = ["rule/refusal", "judge/S?judge=scripted/yes%3Fp%3D0.9"]


def _store(path: Path) -> Store:
    st = Store(path)
    for f in (HH, OASST, TAU):
        ingest_file(f, st)
    create_sample(st, "default", SamplingSpec(size=40, seed=4))
    return st


def _replays(st: Store) -> list[tuple[Any, ...]]:
    """Every stored replay, without ids, timestamps or latency."""
    return st.db.execute(
        "SELECT prefix_id, spec_hash, draw, status, response, finish_reason, error_kind, error, "
        "attempts, input_tokens, output_tokens FROM replays ORDER BY prefix_id, spec_hash, draw"
    ).fetchall()


def _grades(st: Store) -> list[tuple[Any, ...]]:
    """Every stored grade, a replay target named by (prefix, spec, draw): replay ids differ."""
    return st.db.execute(
        "SELECT g.target, r.prefix_id, r.spec_hash, r.draw, "
        "CASE WHEN g.target = 'replay' THEN NULL ELSE g.target_id END, g.grader_hash, "
        "g.category, g.status, g.score, g.flagged, g.severity, g.rationale, g.error, g.attempts "
        "FROM grades g LEFT JOIN replays r ON g.target = 'replay' AND r.id = g.target_id "
        "ORDER BY 1, 2, 3, 4, 5, 6"
    ).fetchall()


def _counts(summary: Any) -> dict[str, Any]:
    return {k: v for k, v in summary.to_json().items() if k != "seconds"}


def _run(st: Store, executor: Executor | None) -> list[dict[str, Any]]:
    summaries = [
        _counts(run_replay(st, spec, draws=draws, retry=FAST, concurrency=4, executor=executor))
        for spec, draws in SPECS
    ]
    graders = [(s, get_grader(s)) for s in GRADERS]
    summaries.append(_counts(run_grading(st, graders, concurrency=4, executor=executor)))
    return summaries


@contextlib.contextmanager
def _ray() -> Iterator[Executor]:
    # One Ray instance for both stages; both actors fit the test instance's 2 CPUs.
    import ray

    from deploysim.execute.ray_executor import RayExecutor, ray_session

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with ray_session():
            yield RayExecutor(num_actors=2, cpus_per_actor=0.5)
    finally:
        ray.shutdown()


@contextlib.contextmanager
def _plain(executor: Executor) -> Iterator[Executor]:
    yield executor


@pytest.mark.parametrize(
    "name",
    [
        "local",
        "processes",
        pytest.param("ray", marks=[pytest.mark.ray, pytest.mark.slow]),
    ],
)
def test_every_executor_stores_what_the_default_stores(tmp_path: Path, name: str) -> None:
    reference, other = _store(tmp_path / "default.db"), _store(tmp_path / f"{name}.db")
    expected = _run(reference, None)
    context = _ray() if name == "ray" else _plain(choose(name))
    with context as executor:
        assert _run(other, executor) == expected
    rows = _replays(other)
    assert rows == _replays(reference)
    assert {r[3] for r in rows} == {"ok", "failed"} and {r[6] for r in rows} >= {"rate_limit"}
    tools = {
        m.get("metadata", {}).get("tool_source")
        for r in rows
        if r[4]
        for m in json.loads(r[4])
        if m["role"] == "tool"
    }
    assert "recorded" in tools  # the tool layer ran in the workers, on the driver's corpus
    assert _grades(other) == _grades(reference) and len(_grades(other)) > 0
    # Nothing is left to do, by the default executor's count.
    assert all(v["pending"] == 0 for v in _run(other, None))


def test_choose_is_the_one_place_names_become_executors() -> None:
    assert isinstance(choose("local"), LocalExecutor)
    assert isinstance(choose("local", workers=1), LocalExecutor)
    many = choose("local", workers=3)  # --workers N alone asks for processes
    assert isinstance(many, ProcessExecutor) and many.workers == 3
    default = choose("processes")
    assert isinstance(default, ProcessExecutor) and default.workers == 2
    with pytest.raises(UsageError, match="unknown executor 'dask'"):
        choose("dask")
    with pytest.raises(UsageError, match="--num-actors"):
        choose("ray", workers=2)
    with pytest.raises(UsageError, match="at least 1"):
        choose("processes", workers=0)


def test_run_config_takes_the_cli_executor_names(tmp_path: Path) -> None:
    from deploysim.config import load_config
    from deploysim.execute import EXECUTORS

    def config(name: str) -> Path:
        path = tmp_path / f"{name}.toml"
        path.write_text(f'executor = "{name}"\n[ingest]\npaths = ["x"]\n[[replay]]\nmodel = "m"\n')
        return path

    for name in EXECUTORS:
        assert load_config(config(name)).executor == name
    run = load_config(config("processes"))
    # `run` hands the config's name and the replay's workers to the one seam, as the CLI does.
    executor = choose(run.executor, workers=run.replay[0].workers)
    assert isinstance(executor, ProcessExecutor) and executor.workers == 2
    with pytest.raises(UsageError, match=r"dask.toml.*executor"):
        load_config(config("dask"))


def test_stages_never_import_execute() -> None:
    import ast

    for module in ("replay", "prefixes", "grading", "stage"):
        source = (Path(__file__).parents[2] / "src" / "deploysim" / f"{module}.py").read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("deploysim.execute"), module
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("deploysim.execute") for a in node.names)


class _Stuck:
    """A stage whose work never gets done."""

    name = "replay"

    def query(self, before: float) -> _Stuck:
        self.before = before
        return self

    def begin(self, pending: int) -> None:
        self.pending = pending

    def flush(self) -> None:
        self.flushed = getattr(self, "flushed", 0) + 1

    def count(self, store: Store) -> int:
        return 5


def test_passes_stop_with_an_error_when_work_stays_missing(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    seen = []
    stage = _Stuck()
    with pytest.raises(IncompleteRunError, match="5 items still missing after 3 passes"):
        for query, todo in passes(store, stage, 100.0):  # type: ignore[arg-type]
            seen.append((query.before, todo))  # type: ignore[attr-defined]
    assert len(seen) == MAX_PASSES == 3 and stage.pending == 5 and stage.flushed == 3
    assert seen[0] == (100.0, 5) and all(before > 100.0 for before, _ in seen[1:])
