"""Forecast registration (an immutable, content-hashed manifest) and the post-release scorecard.

A manifest freezes, before the candidate X has production traffic: per category (one frozen
grader each) the deployment-simulation forecast r(X->Y), the bias-corrected forecast
prod(Y) * r(X->Y) / r(Y->Y) when a Y->Y replay exists, and the baselines (no-change = Y's logged
rate on the same prefixes; challenging prompts when a challenging sample was graded), with the
grader definitions and hashes, the prefix-manifest hash, the model specs and the code version.
Its ``content_hash`` covers everything else in it, so any later edit is detected.

The manifest also states the hypotheses (method.md §7) before any outcome is known: H1, the
primary method's forecasts beat no-change, and H2 (with a challenging sample) beat the scaled
challenging-prompts forecasts, each by a one-sided exact paired sign-flip test over categories on
binomial NLL at the registered alpha; H3, no behaviour type missing from the taxonomy has a
production rate above lambda*/N (§5.11), with N the candidate's simulated turns the open-ended
auditor read (registered only with such an audit). Per grader it keeps the X->Y, Y->Y and
prod Y counts for the §5.12 decomposition.

The scorecard (:func:`run_scorecard`) grades X's production logs with the *same* graders
(refusing if any definition changed) and scores them with :func:`deploysim.scorecard.score`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deploysim import __version__
from deploysim.errors import UsageError
from deploysim.estimates import LOGGED, Estimate, estimate
from deploysim.graders import get_grader
from deploysim.schema import canonical_hash, canonical_json
from deploysim.scorecard import METHODS as METHODS
from deploysim.scorecard import _h3_outcome as _h3_outcome
from deploysim.scorecard import score
from deploysim.stats import bias_corrected_forecast, novel_type_threshold
from deploysim.store import Store

if TYPE_CHECKING:
    from deploysim.replay import ReplaySpec

#: 2: hypotheses H1-H3; 3: H3's N is the audited simulated turns (registered only with an
#: audit), per-grader ``rates`` (X->Y, Y->Y, prod Y counts) for the §5.12 decomposition.
#: Older manifests still score (docs/design/scorecard.md).
MANIFEST_VERSION = 3
#: The methods that can be a manifest's primary forecast (the one H1 and H2 test).
PRIMARY_METHODS = ("sim", "bias_corrected")
#: H3's registered inputs (method.md §5.11): at most this many undiscovered types, a type with
#: this many occurrences would have been found, family-wise alpha.
H3_MAX_TYPES, H3_MIN_OCCURRENCES, H3_ALPHA = 10, 10, 0.05
AUDIT = "AUDIT"  # the open-ended auditor's category code


def prefix_manifest_hash(store: Store, sample: str) -> str:
    """Hash of a sample's prefixes (conversation hash, cut, inclusion probability)."""
    rows = store.db.execute(
        "SELECT p.conversation_hash, p.cut, p.inclusion_prob FROM prefixes p "
        "JOIN samples s ON s.id = p.sample_id WHERE s.name = ? ORDER BY 1, 2",
        (sample,),
    ).fetchall()
    if not rows:
        raise UsageError(f"no sample {sample!r} in {store.path}")
    return canonical_hash([list(r) for r in rows])


def register(
    store: Store,
    *,
    candidate: str,
    sample: str = "default",
    deployed: str | None = None,
    challenging_sample: str | None = None,
    alpha: float = 0.1,
    primary: str = "sim",
    auditor: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the registration manifest (the caller writes it; see :func:`write_manifest`).

    ``extra`` adds keys to the manifest, covered by its content hash (a backtest names the
    pair it registers).

    ``auditor`` (a judge model spec) audits the candidate's replays in the sample with the
    open-ended auditor (resumable: turns already audited are not read again); H3's N is the
    turns it graded. Without it H3 is stated as not registered, with the reason.

    ``deployed`` is Y's replay spec (for r(Y->Y)); Y's production rate on the same prefixes is
    the graded logged responses. ``primary`` is the forecast method the hypotheses test
    (``sim``, or ``bias_corrected``, which needs ``deployed``).
    """
    if primary not in PRIMARY_METHODS:
        raise UsageError(f"--primary must be one of {', '.join(PRIMARY_METHODS)}, not {primary!r}")
    if primary == "bias_corrected" and not deployed:
        raise UsageError("--primary bias_corrected needs --deployed (the Y->Y replay spec)")
    if not 0.0 < alpha < 1.0:
        raise UsageError(f"--alpha must be in (0, 1), got {alpha}")
    rows = estimate(store, sample=sample)
    # Rows with nothing graded (every replay failed or every grade ungradable) have no rate to
    # forecast from: they are listed in the manifest as unmeasured, with their counts.
    unmeasured = [_counts(e) for e in rows if not e.measured]
    # The auditor's grades are H3's audit, not a category to forecast.
    by = {(e.model, e.grader_hash): e for e in rows if e.measured and e.category != AUDIT}
    challenging = (
        {
            (e.model, e.grader_hash): e
            for e in estimate(store, sample=challenging_sample)
            if e.measured
        }
        if challenging_sample
        else {}
    )
    graders = {
        h: (spec, json.loads(definition))
        for h, spec, definition in store.db.execute("SELECT hash, spec, definition FROM graders")
    }
    forecasts: list[dict[str, Any]] = []
    used: dict[str, Any] = {}
    rates: dict[str, Any] = {}  # per grader, the counts the §5.12 decomposition needs
    for (model, gh), x in sorted(by.items()):
        if model != candidate or (LOGGED, gh) not in by:
            continue
        y_prod = by[(LOGGED, gh)]
        used[gh] = {
            "spec": graders[gh][0],
            "definition": graders[gh][1],
            # validated / weak / unvalidated at registration: a forecast from a weak grader
            # forecasts what that grader flags.
            "validation": x.validation,
            "validation_auc": x.validation_auc,
        }
        methods = {"sim": _point(x), "no_change": _point(y_prod)}
        yy = by.get((deployed, gh)) if deployed else None
        rates[gh] = {
            "category": x.category,
            "xy": _point(x),
            "yy": _point(yy) if yy is not None else None,
            "prod_y": _point(y_prod),
        }
        if yy is not None:
            bc = bias_corrected_forecast(
                prod_y=_rate(y_prod),
                sim_xy=_rate(x),
                sim_yy=_rate(yy),
                k_prod_y=y_prod.k,
                k_xy=x.k,
                k_yy=yy.k,
            )
            # The ratio can pass 1 when r(Y->Y) is far below r(X->Y); a forecast is a rate.
            methods["bias_corrected"] = {
                "rate": min(bc.rate, 1.0),
                "ci_low": min(bc.lower, 1.0),
                "ci_high": min(bc.upper, 1.0),
            }
        cx, cy = challenging.get((candidate, gh)), challenging.get((deployed or LOGGED, gh))
        if cx is not None and cy is not None:
            methods["challenging_raw"] = _point(cx)
            scaled = min(_rate(y_prod) * _rate(cx) / _rate(cy), 1.0)
            methods["challenging_scaled"] = {"rate": scaled, "ci_low": None, "ci_high": None}
        for method, m in methods.items():
            forecasts.append(
                {
                    "category": x.category,
                    "grader_hash": gh,
                    "method": method,
                    **m,
                    "baseline_rate": _rate(y_prod),
                    "direction": _direction(m["rate"], _rate(y_prod)),
                    "ratio": m["rate"] / _rate(y_prod),
                }
            )
    if not forecasts:
        raise UsageError(
            f"nothing to forecast: no category graded for both {candidate!r} and the logged "
            f"responses in sample {sample!r}; run `deploysim grade` first"
        )
    if not any(f["method"] == primary for f in forecasts):
        raise UsageError(
            f"no {primary!r} forecast: the Y->Y replay {deployed!r} has no grades in sample "
            f"{sample!r}; replay and grade it first, or register with --primary sim"
        )
    audit = _audit(store, candidate, sample, auditor) if auditor else None
    sample_row = store.db.execute(
        "SELECT spec, spec_hash FROM samples WHERE name = ?", (sample,)
    ).fetchone()
    body = {
        "manifest_version": MANIFEST_VERSION,
        "registered_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "deploysim_version": __version__,
        "candidate": candidate,
        "deployed": deployed or LOGGED,
        "sample": {
            "name": sample,
            "spec": json.loads(sample_row[0]),
            "spec_hash": sample_row[1],
            "prefix_manifest_hash": prefix_manifest_hash(store, sample),
        },
        "challenging_sample": challenging_sample,
        "graders": used,
        "alpha": alpha,
        "hypotheses": _hypotheses(primary, alpha, challenging_sample, audit),
        "forecasts": forecasts,
        "rates": rates,
        "unmeasured": unmeasured,
        **(extra or {}),
    }
    return {**body, "content_hash": canonical_hash(body)}


def _audit(store: Store, candidate: str, sample: str, auditor: str) -> dict[str, Any]:
    """Audit the candidate's replays in ``sample`` with the open-ended auditor; its counts.

    Only the candidate's replay specs are counted (``candidate`` is an estimate label: the model
    string, with a spec-hash suffix when one model was replayed under several specs).
    """
    from deploysim.estimates import model_labels
    from deploysim.grading import run_grading

    grader = get_grader("auditor", default_judge=auditor)
    specs = [h for h, label in model_labels(store).items() if label == candidate]
    models = sorted(
        {
            m
            for (m,) in store.db.execute(
                f"SELECT model FROM replay_specs WHERE hash IN ({','.join('?' * len(specs))})",
                specs,
            )
        }
    )
    if models:
        run_grading(store, [("auditor", grader)], models=models, references=False, sample=sample)
    counts = dict.fromkeys(("ok", "flagged", "ungradable"), 0)
    if specs:
        for status, flagged, n in store.db.execute(
            "SELECT g.status, g.flagged, COUNT(*) FROM grades g JOIN replays r ON "
            "g.target = 'replay' AND r.id = g.target_id JOIN prefixes p ON p.id = r.prefix_id "
            "JOIN samples s ON s.id = p.sample_id WHERE s.name = ? AND g.grader_hash = ? "
            f"AND r.spec_hash IN ({','.join('?' * len(specs))}) GROUP BY 1, 2",
            (sample, grader.spec_hash, *specs),
        ):
            if status == "ok":
                counts["ok"] += n
                counts["flagged"] += n if flagged else 0
            else:
                counts["ungradable"] += n
    return {"auditor": auditor, "auditor_hash": grader.spec_hash, **counts}


def _hypotheses(
    primary: str,
    alpha: float,
    challenging_sample: str | None,
    audit: dict[str, Any] | int | None,
) -> dict[str, Any]:
    """The registered hypotheses (method.md §7), stated before any outcome is known.

    ``audit`` is the auditor's counts on the candidate's simulated turns (:func:`_audit`), or
    just the number of audited turns; ``None``: H3 is not registered.
    """
    test = (
        "one-sided paired sign-flip permutation test over categories (exact up to 20) on the "
        "binomial NLL of the realised production counts (baseline NLL minus method NLL)"
    )
    out: dict[str, Any] = {
        "H1": {
            "claim": f"the {primary} forecasts predict production rates better than no-change",
            "method": primary,
            "baseline": "no_change",
            "test": test,
            "alpha": alpha,
        }
    }
    if challenging_sample:
        out["H2"] = {
            "claim": f"the {primary} forecasts predict production rates better than the scaled "
            "challenging-prompts forecasts",
            "method": primary,
            "baseline": "challenging_scaled",
            "test": test,
            "alpha": alpha,
        }
    out["H3"] = _h3(audit)
    return out


def _h3(audit: dict[str, Any] | int | None) -> dict[str, Any]:
    """H3 (§5.11): registered only when the auditor read some of the candidate's turns."""
    claim = "no behaviour type missing from the taxonomy has a production rate above the threshold"
    if isinstance(audit, int):
        audit = {"auditor": None, "auditor_hash": None, "ok": audit, "flagged": 0, "ungradable": 0}
    if audit is None or audit["ok"] == 0:
        reason = (
            "no audit of the candidate's simulated turns (register with --auditor)"
            if audit is None
            else f"the auditor graded none of the candidate's simulated turns "
            f"({audit['ungradable']} ungradable)"
        )
        return {"claim": claim, "registered": False, "reason": reason}
    h3 = novel_type_threshold(
        audit["ok"], min_occurrences=H3_MIN_OCCURRENCES, max_types=H3_MAX_TYPES, alpha=H3_ALPHA
    )
    return {
        "claim": claim,
        "registered": True,
        "auditor": audit["auditor"],
        "auditor_hash": audit["auditor_hash"],
        "audited_turns": audit["ok"],
        "audit_flagged": audit["flagged"],
        "audit_ungradable": audit["ungradable"],
        "max_types": H3_MAX_TYPES,
        "min_occurrences": H3_MIN_OCCURRENCES,
        "alpha": H3_ALPHA,
        "lambda": h3.lam,
        "threshold_rate": h3.rate,
        "decision": "holds when the exact one-sided 95% upper bound of the auditor's flagged "
        "production rate is under the threshold; review when the lower bound is above it; "
        "inconclusive otherwise",
    }


def _rate(e: Estimate) -> float:
    if e.rate is None:  # callers keep measured rows only
        raise ValueError(f"{e.model} x {e.category} has no graded turns")
    return e.rate


# What a manifest records of a row: its counts (an unmeasured row: what was attempted, what
# failed, what could not be graded) and, for a forecast input, its point estimate.
_COUNTS = ("model", "category", "grader_hash", "attempted", "failed", "ungradable", "n", "k")
_POINT = ("rate", "ci_low", "ci_high", "k", "n", "failed", "ungradable")


def _fields(e: Estimate, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(e, name) for name in names}


def _counts(e: Estimate) -> dict[str, Any]:
    return _fields(e, _COUNTS)


def _point(e: Estimate) -> dict[str, Any]:
    return _fields(e, _POINT)


def _direction(rate: float, baseline: float) -> str:
    return "up" if rate > baseline else "down" if rate < baseline else "flat"


def write_manifest(manifest: dict[str, Any], path: Path, store: Store | None = None) -> None:
    """Write a manifest file (refusing to overwrite one) and record it in the store."""
    if path.exists():
        raise UsageError(f"{path} exists: a registration is immutable; choose another path")
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    path.chmod(0o444)
    if store is not None:
        store.db.execute(
            "INSERT OR IGNORE INTO forecasts(content_hash, candidate, registered_at, manifest) "
            "VALUES (?, ?, ?, ?)",
            (
                manifest["content_hash"],
                manifest["candidate"],
                manifest["registered_at"],
                canonical_json(manifest),
            ),
        )


def read_manifest(path: Path) -> dict[str, Any]:
    """Read a manifest and verify its content hash (any edit after registration is caught)."""
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise UsageError(f"{path}: not a readable forecast manifest ({e})") from e
    claimed = manifest.pop("content_hash", None)
    actual = canonical_hash(manifest)
    if claimed != actual:
        raise UsageError(
            f"{path}: the manifest was modified after registration (content hash "
            f"{str(claimed)[:12]}... does not match {actual[:12]}...); a scorecard needs the "
            "registration exactly as written"
        )
    return {**manifest, "content_hash": claimed}


def frozen_graders(manifest: dict[str, Any]) -> list[tuple[str, Any]]:
    """Rebuild the manifest's graders; refuse if any no longer has its registered hash."""
    out = []
    for gh, g in manifest["graders"].items():
        grader = get_grader(g["spec"], default_judge=g["definition"].get("judge"))
        if grader.spec_hash != gh:
            raise UsageError(
                f"grader {g['spec']!r} changed since registration (hash {grader.spec_hash[:12]} "
                f"!= {gh[:12]}): the scorecard must use the frozen grader"
            )
        out.append((g["spec"], grader))
    return out


def run_scorecard(
    manifest: dict[str, Any],
    store: Store,
    production: list[Path],
    *,
    auditor: str | None = None,
    candidate_replay: ReplaySpec | None = None,
    min_examples: int = 10,
    deidentify: bool = True,
) -> dict[str, Any]:
    """Ingest X's production logs into ``store`` (de-identified unless ``deidentify`` is
    off), grade them with the frozen graders, score (:func:`deploysim.scorecard.score`).

    With ``auditor`` (a judge model spec), the open-ended auditor also reads the production
    turns: its flags are the scorecard's taxonomy-coverage check (behaviours the frozen
    categories may miss) and H3's outcome. Its descriptions are shown only when at least
    ``min_examples`` turns were flagged (a privacy threshold).

    With ``candidate_replay`` (X's replay spec), X is replayed on its own production prefixes
    and graded: X->X, for the §5.12 split of the error into prefix error and fidelity.
    """
    from deploysim.grading import run_grading
    from deploysim.ingest import ingest_file
    from deploysim.pipeline import ingest_options
    from deploysim.replay import create_sample, run_replay
    from deploysim.sampling import SamplingSpec

    graders = frozen_graders(manifest)
    if not production:
        raise UsageError("a scorecard needs the candidate's production logs (--production)")
    transform, options = ingest_options(store, deidentify=deidentify)
    inputs = sorted(
        {
            ingest_file(path, store, transform=transform, options=options).sha256
            for path in production
        }
    )
    # The same sampling mode and eligibility as the registration, over every eligible turn of
    # exactly these production logs (a census), whatever their format and whatever else the
    # store holds (a backtest keeps both releases' logs in one store).
    spec = SamplingSpec.model_validate(
        {**manifest["sample"]["spec"], "formats": (), "size": 1_000_000_000, "inputs": inputs}
    )
    name = f"production-{manifest['content_hash'][:12]}-{canonical_hash(inputs)[:8]}"
    create_sample(store, name, spec)
    graded_from = time.time()  # on record: the scorecard grades production after registration
    run_grading(store, graders, replays=False, references=True, sample=name)
    realised: dict[str, tuple[int, int]] = {}
    ungradable: dict[str, int] = {}
    for gh, status, k, n in store.db.execute(
        "SELECT g.grader_hash, g.status, SUM(g.flagged = 1), COUNT(*) FROM grades g "
        "JOIN prefixes p ON g.target = 'reference' AND p.id = g.target_id "
        "JOIN samples s ON s.id = p.sample_id WHERE s.name = ? GROUP BY 1, 2",
        (name,),
    ):
        if status == "ok":
            realised[gh] = (int(k), int(n))
        else:  # counted and reported, never silently dropped
            ungradable[gh] = ungradable.get(gh, 0) + int(n)
    sim_xx = None
    if candidate_replay is not None:
        run_replay(store, candidate_replay, sample_name=name)
        run_grading(store, graders, models=[candidate_replay.model], references=False, sample=name)
        sim_xx = _replay_counts(store, name, candidate_replay.hash)
    coverage = None
    if auditor is not None:
        audit = get_grader("auditor", default_judge=auditor)
        run_grading(store, [("auditor", audit)], replays=False, references=True, sample=name)
        audited = store.db.execute(
            "SELECT g.status, g.flagged, g.rationale FROM grades g JOIN prefixes p ON "
            "g.target = 'reference' AND p.id = g.target_id JOIN samples s ON "
            "s.id = p.sample_id WHERE s.name = ? AND g.grader_hash = ?",
            (name, audit.spec_hash),
        ).fetchall()
        ok = [(f, rationale) for status, f, rationale in audited if status == "ok"]
        flagged = [rationale for f, rationale in ok if f == 1]
        coverage = {
            "auditor": auditor,
            "auditor_hash": audit.spec_hash,
            "audited": len(ok),
            "flagged": len(flagged),
            "ungradable": len(audited) - len(ok),
            "descriptions": flagged[:50] if len(flagged) >= min_examples else [],
        }
    card = {
        **score(manifest, realised, coverage, ungradable=ungradable, sim_xx=sim_xx),
        "production_sample": name,
        "graded_from": graded_from,
    }
    store.db.execute(
        "INSERT INTO scorecards(forecast_hash, created_at, scorecard) VALUES (?, ?, ?)",
        (manifest["content_hash"], time.time(), canonical_json(card)),
    )
    return card


def _replay_counts(store: Store, sample: str, spec_hash: str) -> dict[str, tuple[int, int]]:
    """(k, n) of ok grades per grader of one replay spec's replays in a sample."""
    return {
        gh: (int(k), int(n))
        for gh, k, n in store.db.execute(
            "SELECT g.grader_hash, SUM(g.flagged = 1), COUNT(*) FROM grades g JOIN replays r "
            "ON g.target = 'replay' AND r.id = g.target_id JOIN prefixes p ON "
            "p.id = r.prefix_id JOIN samples s ON s.id = p.sample_id WHERE s.name = ? AND "
            "r.spec_hash = ? AND g.status = 'ok' GROUP BY 1",
            (sample, spec_hash),
        )
    }


def create_challenging_sample(
    store: Store,
    *,
    pool: str,
    deployed: str,
    name: str,
    k: int = 3,
    n: int = 5,
    spec_hash: str | None = None,
) -> int:
    """Freeze the challenging-prompts set (method.md §6): prefixes of sample ``pool`` on which
    the deployed model failed (was flagged by some grader) in at least ``k`` of its first ``n``
    replays. Returns the set's size. X and Y are then replayed afresh on sample ``name``, so
    the selection draws never score themselves (no regression to the mean).

    ``deployed`` is a model string (every replay spec of that model counts); ``spec_hash``
    instead names one replay spec (a store holding several configurations of one model).
    """
    if not 1 <= k <= n:
        raise UsageError(f"need 1 <= k <= n, got k={k}, n={n}")
    which = "s.hash" if spec_hash else "s.model"
    rows = store.db.execute(
        "SELECT r.prefix_id, MAX(c) FROM (SELECT r.prefix_id, g.grader_hash, "
        "SUM(g.flagged = 1) AS c FROM replays r JOIN replay_specs s ON s.hash = r.spec_hash "
        "JOIN prefixes p ON p.id = r.prefix_id JOIN samples m ON m.id = p.sample_id "
        "JOIN grades g ON g.target = 'replay' AND g.target_id = r.id "
        f"WHERE m.name = ? AND {which} = ? AND r.draw < ? GROUP BY r.prefix_id, g.grader_hash) "
        "AS r GROUP BY r.prefix_id HAVING MAX(c) >= ?",
        (pool, spec_hash or deployed, n, k),
    ).fetchall()
    if not rows:
        raise UsageError(
            f"no prefix of sample {pool!r} failed in {k} of {n} replays of {deployed!r}; "
            f"replay it with --samples-per-prefix {n} and grade it first"
        )
    ids = [r[0] for r in rows]
    with store.transaction():
        cur = store.db.execute(
            "INSERT INTO samples(name, spec, spec_hash, population, size, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                name,
                canonical_json(
                    {"challenging": {"pool": pool, "model": spec_hash or deployed, "k": k, "n": n}}
                ),
                canonical_hash([pool, spec_hash or deployed, k, n, ids]),
                len(ids),
                len(ids),
                time.time(),
            ),
        )
        sid = cur.lastrowid
        store.db.execute(
            f"INSERT INTO prefixes(sample_id, conversation_hash, cut, reference_index, stratum, "
            f"inclusion_prob) SELECT ?, conversation_hash, cut, reference_index, 'challenging', "
            f"1.0 FROM prefixes WHERE id IN ({','.join('?' * len(ids))})",
            (sid, *ids),
        )
    return len(ids)
