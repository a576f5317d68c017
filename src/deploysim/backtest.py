"""``deploysim backtest``: score deployment simulation where the outcome is known.

A release is a callable model plus its deployment settings (decoding, system prompt). For every
ordered pair (deployed Y, candidate X) the backtest does what a release would: it samples prefixes
from Y's production logs (window 1), replays X (X->Y) and Y (Y->Y) on them, builds the
challenging-prompts set from Y's resamples, grades, and **registers the forecast**; only once
every forecast is registered does it grade X's production logs (window 2) and score them. The
manifests carry their registration time and the scorecards the time grading of production began,
so the order is on record.

Production logs are either given (``window1``/``window2`` of a release: real logs of a past
release) or made by a rollout (:mod:`deploysim.rollout`): the release writes every assistant
turn of real logged conversations, window 1 and window 2 being disjoint sets of them.

Everything lives in one store (both releases' logs side by side: samples and censuses name their
input files) and an output folder; every stage is resumable, so running again does no new work.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from deploysim.backtest_score import summarise
from deploysim.config import load_toml
from deploysim.errors import UsageError
from deploysim.estimates import model_labels
from deploysim.forecast import (
    create_challenging_sample,
    frozen_graders,
    read_manifest,
    register,
    run_scorecard,
    write_manifest,
)
from deploysim.graders import Grader, get_grader
from deploysim.grading import run_grading
from deploysim.ingest import ingest_file
from deploysim.models import GenerateConfig
from deploysim.pipeline import Log, ProgressFactory, ingest_options, no_progress, resolve_paths
from deploysim.replay import ReplaySpec, create_sample, run_replay
from deploysim.report import write_report
from deploysim.rollout import is_chat, rollout, user_script
from deploysim.sampling import SamplingSpec
from deploysim.schema import Conversation, canonical_hash
from deploysim.stage import Bar, show_on
from deploysim.store import Store

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"

_T = TypeVar("_T")


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ReleaseConfig(_Section):
    """One release: a model and its deployment settings, and its production logs if real."""

    name: str = Field(pattern=NAME_PATTERN)
    model: str
    system_prompt: str | None = None
    temperature: float | None = 0.7
    max_tokens: int | None = 128
    seed: int | None = 0
    concurrency: int = Field(1, ge=1)
    # Real production logs of this release (globs relative to the config); when empty, the
    # rollout writes them.
    window1: list[str] = []
    window2: list[str] = []


class SourceConfig(_Section):
    """Real logged conversations whose user turns the rollout keeps."""

    path: str  # a glob relative to the config, or package:<pkg>/<path>
    format: str | None = None
    limit: int | None = Field(None, ge=1)  # the first records only (e.g. of a large package)


class RolloutConfig(_Section):
    """Synthetic production: real user turns, every assistant turn written by the release."""

    sources: list[SourceConfig] = Field(alias="source", min_length=1)
    conversations: int = Field(40, ge=1)  # per window; `--size` overrides
    max_user_turns: int = Field(3, ge=1)
    max_chars: int = Field(3000, ge=100)  # longest kept script (user + system text)
    seed: int = 0


class ChallengingConfig(_Section):
    """The challenging-prompts baseline: Y's ``draws`` resamples, failed in ``k`` of them."""

    draws: int = Field(5, ge=1)
    k: int = Field(3, ge=1)
    pool: int = Field(100_000, ge=1)  # prefixes of Y's window 1 resampled (default: all)


class PairConfig(_Section):
    """One ordered pair: Y deployed (window 1), X the candidate (window 2)."""

    deployed: str
    candidate: str


class BacktestSection(_Section):
    """The ``[backtest]`` table of a backtest config."""

    store: str = "backtest.db"
    out: str = "backtest"
    releases: list[ReleaseConfig] = Field(alias="release", min_length=2)
    pairs: list[PairConfig] = Field([], alias="pair")  # empty: every ordered pair
    rollout: RolloutConfig | None = None
    graders: list[str] = Field(min_length=1)
    judge: str | None = None
    # A judge model that audits each candidate's replays at registration (H3's N) and its
    # production at scoring (taxonomy coverage, H3's outcome); none: H3 is not registered.
    auditor: str | None = None
    # Replay each candidate on its own production prefixes (X->X) when scoring, for the
    # method.md §5.12 split of the error into prefix error and fidelity.
    decomposition: bool = True
    grade_concurrency: int = Field(2, ge=1)
    mode: Literal["turn", "final"] = "turn"
    sample_size: int = Field(100_000, ge=1)  # prefixes of Y's window 1 (default: all of them)
    sample_seed: int = 0
    challenging: ChallengingConfig | None = ChallengingConfig()
    alpha: float = Field(0.1, gt=0, lt=1)
    primary: Literal["sim", "bias_corrected"] = "sim"
    bootstrap: int = Field(1000, ge=0)
    deidentify: bool = True

    @field_validator("challenging", mode="before")
    @classmethod
    def _off(cls, value: Any) -> Any:
        return None if value is False else value  # `challenging = false` turns it off

    @model_validator(mode="after")
    def _check(self) -> BacktestSection:
        names = [r.name for r in self.releases]
        if len(set(names)) != len(names):
            raise ValueError(f"release names must be unique, got {names}")
        for p in self.pairs:
            for n in (p.deployed, p.candidate):
                if n not in names:
                    raise ValueError(f"pair names release {n!r}, not one of {names}")
            if p.deployed == p.candidate:
                raise ValueError(f"pair {p.deployed!r} -> {p.candidate!r}: a release with itself")
        specs = [_settings(r) for r in self.releases]
        for i, s in enumerate(specs):
            if s in specs[:i]:
                raise ValueError(
                    f"releases {names[specs.index(s)]!r} and {names[i]!r} have the same model and "
                    "settings: they are one release"
                )
        if self.rollout is None:
            for r in self.releases:
                if not r.window1 or not r.window2:
                    raise ValueError(
                        f"release {r.name!r} has no window1/window2 logs and there is no "
                        "[backtest.rollout] to write them"
                    )
        return self

    def ordered_pairs(self) -> list[tuple[str, str]]:
        """The (deployed, candidate) pairs to score."""
        if self.pairs:
            return [(p.deployed, p.candidate) for p in self.pairs]
        names = [r.name for r in self.releases]
        return [(y, x) for y in names for x in names if x != y]

    def release(self, name: str) -> ReleaseConfig:
        """A release by name."""
        return next(r for r in self.releases if r.name == name)


class BacktestConfig(_Section):
    """A backtest config file: one ``[backtest]`` table."""

    backtest: BacktestSection


def _settings(r: ReleaseConfig) -> tuple[Any, ...]:
    return (r.model, r.system_prompt, r.temperature, r.max_tokens, r.seed)


def load_backtest_config(path: Path) -> BacktestConfig:
    """Read and validate a backtest config, with errors that name the file and the key."""
    return load_toml(path, BacktestConfig, "backtest config")


def replay_spec(r: ReleaseConfig, *, seed: int | Literal["same"] | None = "same") -> Any:
    """The replay spec of a release (``seed`` overrides its seed: the selection draws)."""
    return ReplaySpec(
        model=r.model,
        config=GenerateConfig(
            temperature=r.temperature,
            max_tokens=r.max_tokens,
            seed=r.seed if seed == "same" else seed,
        ),
        system_prompt=r.system_prompt,
    )


def run_backtest(
    config: BacktestConfig,
    base: Path,
    *,
    size: int | None = None,
    progress: ProgressFactory = no_progress,
    log: Log = lambda _: None,
) -> dict[str, Any]:
    """Run the backtest (paths relative to ``base``); returns the result (see the module).

    ``size`` overrides the rollout's conversations per window.
    """
    bt = config.backtest
    if size is not None and bt.rollout is not None:
        bt = bt.model_copy(
            update={"rollout": bt.rollout.model_copy(update={"conversations": size})}
        )
    out = base / bt.out
    out.mkdir(parents=True, exist_ok=True)
    _same_setup(bt, out)
    pairs = bt.ordered_pairs()
    deployed = sorted({y for y, _ in pairs})
    graders = [(g, get_grader(g, default_judge=bt.judge)) for g in bt.graders]
    # A registered forecast is scored with its own graders: refuse before any work if a grader
    # changed (its definition, or the config's list) since registration.
    for y, x in pairs:
        path = out / "forecasts" / f"{y}--{x}.json"
        if path.exists():
            registered = read_manifest(path)
            _same_graders(registered, bt.graders, path)
            frozen_graders(registered)
    windows = _production_files(bt, base, out, pairs, progress, log)
    with Store(base / bt.store) as store:
        inputs = _ingest_production(bt, store, windows, log)
        labels: dict[str, str] = {}
        challenging: dict[str, str | None] = {}
        for y in deployed:
            sample = _sample(bt, store, y, inputs[(y, 1)], log)
            cands = [x for yy, x in pairs if yy == y]
            releases = _releases(bt, [y, *cands])
            _replay_and_grade(store, sample, releases, graders, bt, progress, log)
            challenging[y] = _challenging(bt, store, y, cands, graders, progress, log)
        spec_labels = model_labels(store)
        for r in bt.releases:
            labels[r.name] = spec_labels.get(replay_spec(r).hash, r.model)
        # Register every forecast before any production of a candidate is graded.
        manifests: dict[tuple[str, str], dict[str, Any]] = {}
        for y, x in pairs:
            path = out / "forecasts" / f"{y}--{x}.json"
            if path.exists():
                manifest = read_manifest(path)
                _same_graders(manifest, bt.graders, path)
            else:
                own = [f"{r}/{s}" for r in deployed for s in ("w1", "pool", "challenging")]
                _refuse_if_graded(store, inputs[(x, 2)], x, own)
                manifest = register(
                    store,
                    candidate=labels[x],
                    sample=f"{y}/w1",
                    deployed=labels[y],
                    challenging_sample=challenging[y],
                    alpha=bt.alpha,
                    primary=bt.primary,
                    auditor=bt.auditor,
                    extra={"backtest": {"deployed": y, "candidate": x}},
                )
                path.parent.mkdir(parents=True, exist_ok=True)
                write_manifest(manifest, path, store)
                log(f"registered {y} -> {x}: {path}")
            manifests[(y, x)] = manifest
        cards: dict[tuple[str, str], dict[str, Any]] = {}
        for y, x in pairs:
            frozen_graders(manifests[(y, x)])  # refuses graders changed since registration
            cards[(y, x)] = _scorecard(store, manifests[(y, x)], windows[(x, 2)], bt, log)
        specs = {r.name: replay_spec(r).hash for r in bt.releases}
        result = summarise(store, bt, pairs, manifests, cards, labels, specs)
        _save(store, bt, result)
        (out / "backtest.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
        write_report(store, out / "report.html", sample=f"{deployed[0]}/w1")
        result["report"] = str(out / "report.html")
    return result


def _same_setup(bt: BacktestSection, out: Path) -> None:
    """Refuse to reuse an output folder made with other windows or releases: its production
    files, samples and forecasts belong to that setup (windows would overlap, say)."""
    setup = {
        "rollout": bt.rollout.model_dump(mode="json") if bt.rollout else None,
        "releases": [r.model_dump(mode="json") for r in bt.releases],
        "mode": bt.mode,
        "sample_size": bt.sample_size,
        "sample_seed": bt.sample_seed,
        "challenging": bt.challenging.model_dump(mode="json") if bt.challenging else None,
    }
    path = out / "setup.json"
    if not path.exists():
        path.write_text(json.dumps(setup, indent=2, sort_keys=True), encoding="utf-8")
        return
    before = json.loads(path.read_text(encoding="utf-8"))
    changed = sorted(k for k in setup if before.get(k) != setup[k])
    if changed:
        raise UsageError(
            f"{out} holds a backtest made with other {', '.join(changed)} (see {path}); "
            "choose another [backtest] out and store (or --size as before) to run this one"
        )


def _production_files(
    bt: BacktestSection,
    base: Path,
    out: Path,
    pairs: list[tuple[str, str]],
    progress: ProgressFactory,
    log: Log,
) -> dict[tuple[str, int], list[Path]]:
    """Each (release, window) a pair needs: its given logs, or a rollout written now."""
    needed = sorted({(y, 1) for y, _ in pairs} | {(x, 2) for _, x in pairs})
    files: dict[tuple[str, int], list[Path]] = {}
    sources: tuple[list[Conversation], list[Conversation]] | None = None
    for name, window in needed:
        r = bt.release(name)
        given = r.window1 if window == 1 else r.window2
        if given:
            files[(name, window)] = resolve_paths(given, base)
            continue
        assert bt.rollout is not None
        if sources is None:
            sources = _windows(bt, base, out, log)
        path = out / "production" / f"{name}.w{window}.jsonl"
        convs = sources[window - 1]
        with progress(f"rollout {name} window {window}") as bar:
            summary = rollout(
                convs,
                replay_spec(r),
                path,
                release=name,
                max_user_turns=bt.rollout.max_user_turns,
                concurrency=r.concurrency,
                on_progress=_rollout_bar(bar, len(convs)),
            )
        if summary.failed:
            log(f"rollout {name} w{window}: {summary.failed} conversations failed {summary.errors}")
        log(f"rollout {name} w{window}: {summary.written} new, {summary.already} already done")
        files[(name, window)] = [path]
    return files


def _rollout_bar(bar: Bar, total: int) -> Callable[[Any], None]:
    return lambda s: bar(s.written + s.already + s.failed, total, s.failed)


def _windows(
    bt: BacktestSection, base: Path, out: Path, log: Log
) -> tuple[list[Conversation], list[Conversation]]:
    """Two disjoint sets of real conversations (de-identified at ingest): the two windows."""
    rc = bt.rollout
    assert rc is not None
    with Store(out / "sources.db") as src:
        transform, options = ingest_options(src, deidentify=bt.deidentify)
        for source in rc.sources:
            for path in resolve_paths([source.path], base):
                r = ingest_file(
                    path,
                    src,
                    fmt=source.format,
                    transform=transform,
                    options=options,
                    limit=source.limit,
                )
                if r.status != "already ingested":
                    log(f"source {path.name}: {r.conversations} conversations")
        eligible = []
        for conv in src.conversations():
            if not is_chat(conv) or any(not isinstance(m.content, str) for m in conv.messages):
                continue
            script = user_script(conv, rc.max_user_turns)
            if not any(m.role == "user" for m in script):
                continue
            if sum(len(m.text) for m in script) > rc.max_chars:
                continue
            eligible.append(conv)
    eligible.sort(key=lambda c: canonical_hash([rc.seed, c.content_hash()]))
    n = rc.conversations
    if len(eligible) < 2 * n:
        raise UsageError(
            f"the rollout needs {2 * n} eligible conversations (two windows of {n}); the sources "
            f"hold {len(eligible)}: add logs to [backtest.rollout] paths or lower --size"
        )
    log(f"windows: {n} + {n} conversations of {len(eligible)} eligible")
    return eligible[:n], eligible[n : 2 * n]


def _ingest_production(
    bt: BacktestSection, store: Store, windows: dict[tuple[str, int], list[Path]], log: Log
) -> dict[tuple[str, int], tuple[str, ...]]:
    """Ingest every production file (de-identified); the input SHA-256s per (release, window)."""
    transform, options = ingest_options(store, deidentify=bt.deidentify)
    out: dict[tuple[str, int], tuple[str, ...]] = {}
    for key, paths in sorted(windows.items()):
        shas = []
        for path in paths:
            r = ingest_file(path, store, transform=transform, options=options)
            if r.status != "already ingested":
                log(f"ingest {path.name}: {r.conversations} conversations, {r.skipped} skipped")
            shas.append(r.sha256)
        out[key] = tuple(sorted(shas))
    return out


def _sample(bt: BacktestSection, store: Store, y: str, inputs: tuple[str, ...], log: Log) -> str:
    name = f"{y}/w1"
    spec = SamplingSpec(mode=bt.mode, size=bt.sample_size, seed=bt.sample_seed, inputs=inputs)
    info = create_sample(store, name, spec)
    if info.created:
        log(f"sample {name}: {info.size} prefixes of {info.population}")
    return name


def _replay_and_grade(
    store: Store,
    sample: str,
    replays: list[tuple[str, ReplaySpec]],
    graders: list[tuple[str, Grader]],
    bt: BacktestSection,
    progress: ProgressFactory,
    log: Log,
    draws: int = 1,
) -> None:
    """Replay each (label, spec) on a sample, one call at a time, then grade the sample: its
    replays and its logged references."""
    for label, spec in replays:
        run = partial(run_replay, store, spec, sample_name=sample, draws=draws, concurrency=1)
        r = _shown(progress, f"replay {label} on {sample}", run)
        if r.ok or r.failed:
            log(f"replay {label} on {sample}: {r.ok} ok, {r.failed} failed")
    grade = partial(
        run_grading,
        store,
        graders,
        references=True,
        sample=sample,
        concurrency=bt.grade_concurrency,
    )
    g = _shown(progress, f"grade {sample}", grade)
    if g.ok or g.ungradable:
        log(f"grade {sample}: {g.ok} grades, {g.ungradable} ungradable")


def _shown(progress: ProgressFactory, label: str, stage: Callable[..., _T]) -> _T:
    """Run a stage (a partial call that lacks only ``on_progress``) under a progress bar."""
    with progress(label) as bar:
        return stage(on_progress=show_on(bar))


def _releases(bt: BacktestSection, names: list[str]) -> list[tuple[str, ReplaySpec]]:
    """Each named release's replay spec, labelled by its name."""
    return [(name, replay_spec(bt.release(name))) for name in names]


def _challenging(
    bt: BacktestSection,
    store: Store,
    y: str,
    cands: list[str],
    graders: list[tuple[str, Grader]],
    progress: ProgressFactory,
    log: Log,
) -> str | None:
    """Y's challenging set from ``draws`` fresh resamples (seed drawn per call, so the selection
    draws are independent of the replays scored on the set); X's and Y's replays on it."""
    cc = bt.challenging
    if cc is None:
        return None
    name = f"{y}/challenging"
    pool = f"{y}/pool"
    if not store.db.execute("SELECT 1 FROM samples WHERE name = ?", (name,)).fetchone():
        inputs = _sample_inputs(store, f"{y}/w1")
        spec = SamplingSpec(mode=bt.mode, size=cc.pool, seed=bt.sample_seed + 1, inputs=inputs)
        create_sample(store, pool, spec)
        selection = replay_spec(bt.release(y), seed=None)
        replays = [(f"{y} (selection)", selection)]
        _replay_and_grade(store, pool, replays, graders, bt, progress, log, cc.draws)
        try:
            size = create_challenging_sample(
                store,
                pool=pool,
                deployed=y,
                name=name,
                k=cc.k,
                n=cc.draws,
                spec_hash=selection.hash,
            )
        except UsageError:
            log(f"challenging {y}: no prefix failed {cc.k} of {cc.draws}; no challenging baseline")
            return None
        log(f"challenging {y}: {size} prefixes")
    _replay_and_grade(store, name, _releases(bt, [y, *cands]), graders, bt, progress, log)
    return name


def _sample_inputs(store: Store, sample: str) -> tuple[str, ...]:
    spec = store.db.execute("SELECT spec FROM samples WHERE name = ?", (sample,)).fetchone()
    return tuple(json.loads(spec[0])["inputs"])


def _same_graders(manifest: dict[str, Any], graders: list[str], path: Path) -> None:
    registered = sorted(g["spec"] for g in manifest["graders"].values())
    if not set(registered) <= set(graders):
        raise UsageError(
            f"{path}: registered with graders {registered}, the config now names "
            f"{sorted(graders)}; a registered forecast is scored with its own graders: use a "
            "new [backtest] out folder and store for new graders"
        )


def _refuse_if_graded(store: Store, inputs: tuple[str, ...], x: str, own: list[str]) -> None:
    """A forecast registered after its outcome was graded would prove nothing.

    ``own`` are the backtest's window-1 samples: a window-2 conversation can be identical to
    one of window 1 (the same user turns answered with the same words, e.g. one fixed
    refusal), and its window-1 grade is the deployed release's production, not an outcome.
    """
    marks = ",".join("?" * len(inputs))
    row = store.db.execute(
        "SELECT COUNT(*) FROM grades g JOIN prefixes p ON g.target = 'reference' AND "
        "p.id = g.target_id JOIN samples s ON s.id = p.sample_id WHERE p.conversation_hash IN "
        f"(SELECT conversation_hash FROM sightings WHERE input_sha256 IN ({marks})) "
        f"AND s.name NOT IN ({','.join('?' * len(own))})",
        (*inputs, *own),
    ).fetchone()
    if row[0]:
        raise UsageError(
            f"{x}'s production logs were graded before its forecast was registered; a backtest "
            "must register first: start again with a new store"
        )


def _scorecard(
    store: Store,
    manifest: dict[str, Any],
    production: list[Path],
    bt: BacktestSection,
    log: Log,
) -> dict[str, Any]:
    """The pair's scorecard: the stored one if this forecast was scored, else score now."""
    row = store.db.execute(
        "SELECT scorecard FROM scorecards WHERE forecast_hash = ? ORDER BY id DESC LIMIT 1",
        (manifest["content_hash"],),
    ).fetchone()
    if row is not None:
        card: dict[str, Any] = json.loads(row[0])
        audited = card.get("taxonomy_coverage", {}).get("auditor")
        if audited == bt.auditor or bt.auditor is None:
            return card  # scored already (an auditor added later scores it again)
    x = bt.release(manifest["backtest"]["candidate"])
    card = run_scorecard(
        manifest,
        store,
        production,
        auditor=bt.auditor,
        candidate_replay=replay_spec(x) if bt.decomposition else None,
        deidentify=bt.deidentify,
    )
    log(f"scorecard {manifest['backtest']['deployed']} -> {manifest['backtest']['candidate']}")
    return card


def _save(store: Store, bt: BacktestSection, result: dict[str, Any]) -> None:
    """Record the result once (an unchanged re-run adds nothing)."""
    spec = bt.model_dump(mode="json", by_alias=True)
    if not any(r == result for r in store.analyses("backtest")):
        store.add_analysis("backtest", spec, result)
