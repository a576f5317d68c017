"""Forecasts: ``deploysim forecast register|challenging`` and ``deploysim scorecard``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from deploysim.cli.common import JsonOpt, StoreOpt, out, parse_model, print_json, require_store
from deploysim.store import Store

forecast_app = typer.Typer(help="Pre-registered forecasts.", no_args_is_help=True)


@forecast_app.command("register")
def forecast_register(
    store: StoreOpt,
    candidate: Annotated[str, typer.Option(help="Candidate model spec (X).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Manifest file to write.")],
    sample_name: Annotated[str, typer.Option("--sample", help="The replayed sample.")] = "default",
    deployed: Annotated[
        str | None, typer.Option(help="Deployed model's replay spec (Y), for Y->Y correction.")
    ] = None,
    challenging_sample: Annotated[
        str | None, typer.Option(help="Sample of challenging prompts graded for X and Y.")
    ] = None,
    alpha: Annotated[float, typer.Option(help="Significance level of the hypotheses.")] = 0.1,
    primary: Annotated[
        str, typer.Option(help="The forecast method H1 and H2 test: sim or bias_corrected.")
    ] = "sim",
    as_json: JsonOpt = False,
) -> None:
    """Freeze the forecasts, graders, data slice and hypotheses in an immutable manifest."""
    from deploysim.forecast import register, write_manifest

    require_store(store)
    with Store(store) as st:
        manifest = register(
            st,
            candidate=str(parse_model(candidate)),
            sample=sample_name,
            deployed=str(parse_model(deployed)) if deployed else None,
            challenging_sample=challenging_sample,
            alpha=alpha,
            primary=primary,
        )
        write_manifest(manifest, output, st)
    if as_json:
        print_json(manifest)
        return
    table = Table(title=f"forecast {manifest['content_hash'][:12]} for {manifest['candidate']}")
    for col in ("category", "method", "per 100k", "95% CI", "baseline", "direction"):
        table.add_column(col, justify="left" if col in ("category", "method") else "right")
    for f in manifest["forecasts"]:
        ci = (
            f"{f['ci_low'] * 1e5:,.0f}-{f['ci_high'] * 1e5:,.0f}"
            if f.get("ci_low") is not None
            else "-"
        )
        table.add_row(
            f["category"],
            f["method"],
            f"{f['rate'] * 1e5:,.0f}",
            ci,
            f"{f['baseline_rate'] * 1e5:,.0f}",
            f["direction"],
        )
    out.print(table)
    for name, h in manifest["hypotheses"].items():
        test = f" (alpha {h['alpha']})" if "test" in h else ""
        threshold = (
            f": {h['threshold_rate'] * 1e5:,.2f} per 100k (lambda* {h['lambda']:.2f} / N "
            f"{h['simulated_turns']:,})"
            if name == "H3"
            else ""
        )
        out.print(f"{name}: {h['claim']}{threshold}{test}")
    out.print(f"registered: {output}")


@forecast_app.command("challenging")
def forecast_challenging(
    store: StoreOpt,
    deployed: Annotated[str, typer.Option(help="The deployed model's replay spec (Y).")],
    pool: Annotated[str, typer.Option(help="Sample replayed n times by Y and graded.")],
    name: Annotated[str, typer.Option(help="Name of the challenging sample.")] = "challenging",
    k: Annotated[int, typer.Option("-k", help="Failures needed...")] = 3,
    n: Annotated[int, typer.Option("-n", help="...out of the first n replays.")] = 5,
    as_json: JsonOpt = False,
) -> None:
    """Freeze the challenging-prompts set: prefixes on which Y failed in k of n replays."""
    from deploysim.forecast import create_challenging_sample

    require_store(store)
    with Store(store) as st:
        size = create_challenging_sample(
            st, pool=pool, deployed=str(parse_model(deployed)), name=name, k=k, n=n
        )
    result = {"sample": name, "size": size, "pool": pool, "k": k, "n": n}
    if as_json:
        print_json(result)
    else:
        out.print(
            f"challenging sample {name!r}: {size} prefixes; now replay the candidate and "
            f"{deployed} on it (--sample {name}), grade, and register with "
            f"--challenging-sample {name}"
        )


def scorecard(
    forecast: Annotated[Path, typer.Option("--forecast", help="The registered manifest.")],
    production: Annotated[
        list[Path], typer.Option("--production", help="The candidate's production logs.")
    ],
    store: Annotated[
        Path | None, typer.Option("--store", "-s", help="Store for the production logs.")
    ] = None,
    auditor: Annotated[
        str | None, typer.Option(help="Judge model for the taxonomy-coverage audit.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Grade the candidate's production logs with the frozen graders and score the forecast."""
    from deploysim.forecast import read_manifest, run_scorecard

    manifest = read_manifest(forecast)
    target = store or forecast.with_suffix(".production.db")
    with Store(target) as st:
        card = run_scorecard(manifest, st, production, auditor=auditor)
    if as_json:
        print_json(card)
        return
    table = Table(title=f"scorecard for {card['candidate']} (forecast {card['forecast'][:12]})")
    cols = ("method", "categories", "direction", "SME median", "SME p90", "SME max", "NLL regret")
    for col in cols:
        table.add_column(col, justify="left" if col == "method" else "right")
    for method, m in card["methods"].items():
        acc = (
            f"{m['direction_correct']}/{m['direction_eligible']}"
            if m["direction_eligible"]
            else "-"
        )
        table.add_row(
            method,
            str(m["categories"]),
            acc,
            f"{m['sme_median']:.2f}",
            f"{m['sme_p90']:.2f}",
            f"{m['sme_max']:.2f}",
            f"{m['nll_regret']:.1f}",
        )
    out.print(table)
    for name, h in card.get("hypotheses", {}).items():
        if "p_value" in h:
            detail = (
                f"{h['method']} vs {h['baseline']} over {h['categories']} categories, NLL "
                f"{h['nll_method']:.1f} vs {h['nll_baseline']:.1f}, p = {h['p_value']:.4g} "
                f"(alpha {h['alpha']})"
            )
        elif "threshold_rate" in h:
            flagged = (
                f", auditor flags {h['flagged_rate'] * 1e5:,.2f} per 100k"
                if "flagged_rate" in h
                else ""
            )
            detail = f"threshold {h['threshold_rate'] * 1e5:,.2f} per 100k{flagged}"
        else:
            detail = f"{h['method']} vs {h['baseline']}"
        out.print(f"{name}: {h['outcome']} ({detail})")
    if "taxonomy_coverage" in card:
        cov = card["taxonomy_coverage"]
        out.print(f"taxonomy coverage: the auditor flagged {cov['flagged']} production turns")
        for d in cov["descriptions"][:10]:
            out.print(f"  - {d}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``deploysim`` app."""
    app.add_typer(forecast_app, name="forecast")
    app.command()(scorecard)
