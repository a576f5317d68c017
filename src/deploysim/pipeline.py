"""``deploysim run``: the whole pipeline from one config, every stage resumable.

ingest (+ de-identify) -> sample -> replay (each model) -> grade -> estimate -> compare -> report.
Replay and grading run on the config's executor (:func:`deploysim.execute.choose`: ``local``,
or ``ray``; a replay's ``workers`` > 1 runs it in local processes).
Each stage is idempotent on the store: ingested files are skipped, a drawn sample is reused,
replays and grades continue where they stopped. So an interrupted run resumes by running again.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from deploysim.agent import RetryPolicy
from deploysim.config import ReplayConfig, RunConfig
from deploysim.errors import UsageError
from deploysim.execute import choose
from deploysim.ingest import ingest_file
from deploysim.models import GenerateConfig, ModelSpec
from deploysim.replay import ReplaySpec, create_sample, run_replay
from deploysim.schema import Conversation
from deploysim.stage import Bar, show_on
from deploysim.store import Store
from deploysim.tools import ToolPolicy

ProgressFactory = Callable[[str], AbstractContextManager[Bar]]
Log = Callable[[str], None]


@contextlib.contextmanager
def no_progress(_: str) -> Iterator[Bar]:
    """The silent :data:`ProgressFactory`: a stage's progress callback that shows nothing."""
    yield lambda done, total, failed: None


def resolve_paths(patterns: Sequence[str], base: Path) -> list[Path]:
    """Input files from globs (relative to ``base``) and ``package:<pkg>/<path>`` entries."""
    out: list[Path] = []
    for pattern in patterns:
        if pattern.startswith("package:"):
            pkg, _, rel = pattern.removeprefix("package:").partition("/")
            spec = importlib.util.find_spec(pkg)
            if spec is None or not spec.submodule_search_locations:
                raise UsageError(f"{pattern}: the package {pkg!r} is not installed")
            path = Path(next(iter(spec.submodule_search_locations))) / rel
            if not path.is_file():
                raise UsageError(f"{pattern}: no such file in the installed package")
            out.append(path)
            continue
        full = pattern if Path(pattern).is_absolute() else str(base / pattern)
        found = sorted(Path(p) for p in glob.glob(full) if Path(p).is_file())
        if not found:
            raise UsageError(f"ingest path {pattern!r} matches no file (relative to {base})")
        out.extend(found)
    return out


class DeidTransform:
    """The de-identifying ingest transform (a :data:`~deploysim.ingest.Transform`): each batch
    de-identified across ``workers`` processes (same output as one), totals recorded in the
    store's manifest. :meth:`close` stops the worker processes, which hold a loaded detector."""

    def __init__(
        self, store: Store, *, strict: bool, workers: int = 1, keep_introduced: bool = True
    ) -> None:
        from deploysim.privacy.parallel import ParallelDeidentifier

        self.store = store
        self.deid = ParallelDeidentifier(workers, strict=strict, keep_introduced=keep_introduced)
        self.totals: dict[str, Any] = {
            "conversations": 0,
            "dropped": 0,
            "residual": 0,
            "entities": {},
        }

    def __call__(self, batch: Sequence[Conversation]) -> list[Conversation | None]:
        from deploysim.privacy import DEID_VERSION

        results = self.deid.deidentify_many(batch)
        totals = self.totals
        for r in results:
            totals["conversations"] += 1
            totals["dropped"] += int(r.conversation is None)
            totals["residual"] += r.residual
            for k, v in r.entities.items():
                totals["entities"][k] = totals["entities"].get(k, 0) + v
        self.store.set_meta("deid_version", DEID_VERSION)
        self.store.set_meta("deid_totals", json.dumps(totals, sort_keys=True))
        return [r.conversation for r in results]

    def close(self) -> None:
        """Stop the worker processes."""
        self.deid.close()


def deid_transform(
    store: Store, *, strict: bool, workers: int = 1, keep_introduced: bool = True
) -> tuple[DeidTransform, dict[str, Any]]:
    """A de-identifying ingest transform, and the options that record its version. With
    ``workers`` > 1 each batch is de-identified across that many processes (same output);
    ``keep_introduced=False`` replaces what only the logged model said too."""
    from deploysim.privacy import DEID_VERSION

    transform = DeidTransform(
        store, strict=strict, workers=workers, keep_introduced=keep_introduced
    )
    options: dict[str, Any] = {"deid": DEID_VERSION, "deid_strict": strict}
    if not keep_introduced:  # the default is left out, so earlier manifests read the same
        options["deid_keep_introduced"] = False
    return transform, options


def ingest_options(
    store: Store,
    *,
    deidentify: bool,
    strict: bool = False,
    workers: int = 1,
    keep_introduced: bool = True,
) -> tuple[DeidTransform | None, dict[str, Any]]:
    """The ingest transform and recorded options: de-identification on (the default, across
    ``workers`` processes), or off explicitly, which is written into the store's manifest."""
    if deidentify:
        return deid_transform(
            store, strict=strict, workers=workers, keep_introduced=keep_introduced
        )
    store.set_meta("deid_version", "off")
    return None, {"deid": "off"}


def run_pipeline(
    config: RunConfig,
    base: Path,
    *,
    progress: ProgressFactory = no_progress,
    log: Log = lambda _: None,
) -> dict[str, Any]:
    """Run every stage of ``config`` (paths relative to ``base``); returns their summaries."""
    from deploysim.estimates import LOGGED, compare, estimate

    result: dict[str, Any] = {}
    store_path = base / config.store
    seconds: dict[str, float] = {}
    with Store(store_path) as store:
        clock = time.perf_counter()
        result["ingest"] = _ingest(config, base, store, log)
        seconds["ingest"] = time.perf_counter() - clock
        clock = time.perf_counter()
        info = create_sample(store, config.sample.name, config.sample.spec())
        seconds["sample"] = time.perf_counter() - clock
        result["sample"] = {"name": info.name, "size": info.size, "population": info.population}
        log(f"sample {info.name!r}: {info.size} prefixes of {info.population} eligible")
        result["replay"] = []
        for rc in config.replay:
            spec = _replay_spec(rc)
            clock = time.perf_counter()
            with progress(f"replay {spec.model}") as bar:
                summary = run_replay(
                    store,
                    spec,
                    sample_name=config.sample.name,
                    draws=rc.samples_per_prefix,
                    concurrency=rc.concurrency,
                    retry=RetryPolicy(max_attempts=rc.max_attempts),
                    on_progress=show_on(bar),
                    executor=choose(config.executor, workers=rc.workers),
                )
            seconds[f"replay {spec.model}"] = took = time.perf_counter() - clock
            log(f"replay {spec.model}: {summary.ok} ok, {summary.failed} failed ({took:.0f} s)")
            result["replay"].append(summary.to_json())
        if config.grade is not None:
            clock = time.perf_counter()
            result["grade"] = _grade(config, store, progress, log)
            seconds["grade"] = time.perf_counter() - clock
        clock = time.perf_counter()
        estimates = estimate(store, sample=config.sample.name)
        result["estimates"] = [e.to_json() for e in estimates]
        result["comparisons"] = []
        for cc in config.compare:
            a = str(ModelSpec.parse(cc.candidate))
            b = cc.baseline if cc.baseline == LOGGED else str(ModelSpec.parse(cc.baseline))
            comps = compare(estimates, a, b, alpha=cc.alpha, correction="bh" if cc.bh else "none")
            result["comparisons"].extend(c.to_json() for c in comps)
        from deploysim.report import write_report

        report_path = base / config.report.path
        write_report(store, report_path, sample=config.sample.name)
        result["report"] = str(report_path)
        result["store"] = str(store_path)
        seconds["estimates and report"] = time.perf_counter() - clock
        result["seconds"] = {k: round(v, 1) for k, v in seconds.items()}
        log(f"estimates, comparisons and report ({seconds['estimates and report']:.0f} s)")
    return result


def _ingest(config: RunConfig, base: Path, store: Store, log: Log) -> list[dict[str, Any]]:
    ic = config.ingest
    clock = time.perf_counter()
    from deploysim.models.llamacpp import usable_cpus

    workers = usable_cpus() if ic.workers == "auto" else ic.workers
    transform, options = ingest_options(
        store,
        deidentify=ic.deidentify,
        strict=ic.deid_strict,
        workers=workers,
        keep_introduced=ic.deid_keep_introduced,
    )
    reports = []
    try:
        for path in resolve_paths(ic.paths, base):
            r = ingest_file(
                path,
                store,
                fmt=ic.format,
                strict=ic.strict,
                transform=transform,
                options=options,
                limit=ic.limit,
            )
            took, clock = time.perf_counter() - clock, time.perf_counter()
            log(
                f"ingest {path.name}: {r.status}, {r.conversations} conversations, "
                f"{r.skipped} skipped ({took:.0f} s)"
            )
            reports.append(r.to_json())
    finally:
        if transform is not None:
            transform.close()  # the workers' loaded detectors are not needed after ingest
    return reports


def _replay_spec(rc: ReplayConfig) -> ReplaySpec:
    return ReplaySpec(
        model=rc.model,
        config=GenerateConfig(
            temperature=rc.temperature,
            max_tokens=rc.max_tokens,
            seed=rc.seed,
            timeout_s=rc.timeout,
        ),
        system_prompt=rc.system_prompt,
        tools=ToolPolicy(mode=rc.tools, simulator=rc.simulator, max_steps=rc.max_steps),
    )


def _grade(config: RunConfig, store: Store, progress: ProgressFactory, log: Log) -> dict[str, Any]:
    from deploysim.graders import get_grader
    from deploysim.grading import run_grading
    from deploysim.validation import record_calibrated_validations

    gc = config.grade
    assert gc is not None
    graders = [(g, get_grader(g, default_judge=gc.judge)) for g in gc.graders]
    # A calibrated grader ships its held-out validation: recorded, estimates correct its rate.
    validated = record_calibrated_validations(store, graders)
    if validated:
        log(f"grade: {validated} grader(s) with a shipped validation (rates corrected)")
    with progress("grade") as bar:
        summary = run_grading(
            store,
            graders,
            references=gc.references,
            sample=config.sample.name,
            concurrency=gc.concurrency,
            on_progress=show_on(bar),
            executor=choose(config.executor),
            default_judge=gc.judge,
        )
    log(
        f"grade: {summary.ok} grades, {summary.ungradable} ungradable, {summary.flagged} flagged "
        f"({summary.seconds:.0f} s)"
    )
    return summary.to_json()
