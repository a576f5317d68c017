"""Forecasts: ``deploysim forecast register|challenging`` and ``deploysim scorecard``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from deploysim.cli._options import JsonOpt, StoreOpt
from deploysim.cli._types import PrimaryMethod
from deploysim.cli.common import out, parse_model, print_json
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
        PrimaryMethod, typer.Option(help="The forecast method H1 and H2 test.")
    ] = "sim",
    auditor: Annotated[
        str | None,
        typer.Option(
            help="Judge model that audits the candidate's replays (H3's N); without it H3 is "
            "not registered."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Freeze the forecasts, graders, data slice and hypotheses in an immutable manifest."""
    from deploysim.forecast import register, write_manifest

    with Store(store) as st:
        manifest = register(
            st,
            candidate=str(parse_model(candidate)),
            sample=sample_name,
            deployed=str(parse_model(deployed)) if deployed else None,
            challenging_sample=challenging_sample,
            alpha=alpha,
            primary=primary,
            auditor=str(parse_model(auditor)) if auditor else None,
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
        out.print(f"{name}: {h['claim']}{_registered_detail(name, h)}")
    for u in manifest.get("unmeasured", []):
        out.print(
            f"unmeasured: {u['model']} x {u['category']}: {u['attempted']} attempted, "
            f"{u['failed']} failed, {u['ungradable']} ungradable (no forecast)"
        )
    out.print(f"registered: {output}")


def _registered_detail(name: str, h: dict[str, Any]) -> str:
    """How a registered hypothesis is tested (its alpha, or H3's threshold and N)."""
    if name != "H3":
        return f" (alpha {h['alpha']})"
    if h.get("registered") is False:
        return f": not registered ({h['reason']})"
    n = h.get("audited_turns", h.get("simulated_turns"))
    return (
        f": {h['threshold_rate'] * 1e5:,.2f} per 100k (lambda* {h['lambda']:.2f} / N {n:,} "
        f"audited turns, {h.get('audit_flagged', 0)} flagged, "
        f"{h.get('audit_ungradable', 0)} ungradable) (alpha {h['alpha']})"
    )


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
        str | None, typer.Option(help="Judge model for the taxonomy-coverage audit (H3).")
    ] = None,
    replay: Annotated[
        str | None,
        typer.Option(
            help="The candidate's model spec, replayed on its production prefixes (X->X) for "
            "the error decomposition."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Grade the candidate's production logs with the frozen graders and score the forecast."""
    from deploysim.forecast import read_manifest, run_scorecard
    from deploysim.replay import ReplaySpec

    manifest = read_manifest(forecast)
    target = store or forecast.with_suffix(".production.db")
    with Store(target) as st:
        card = run_scorecard(
            manifest,
            st,
            production,
            auditor=str(parse_model(auditor)) if auditor else None,
            candidate_replay=ReplaySpec(model=str(parse_model(replay))) if replay else None,
        )
    if as_json:
        print_json(card)
        return
    for line in scorecard_lines(card):
        if isinstance(line, Table):
            out.print(line)
        else:  # figures such as "[0.5, 15]" are text, not rich markup
            out.print(line, markup=False)


def _num(v: float | None, fmt: str = ".2f") -> str:
    return "-" if v is None else format(v, fmt)


def scorecard_lines(card: dict[str, Any]) -> list[Table | str]:
    """The scorecard as rich tables and lines of text (every part of it, nothing dropped)."""
    lines: list[Table | str] = []
    table = Table(title=f"scorecard for {card['candidate']} (forecast {card['forecast'][:12]})")
    cols = (
        "method",
        "categories",
        "direction",
        "SME median",
        "SME p90",
        "SME max",
        "NLL regret",
        "log Pearson",
        "Spearman",
        "in funnel",
    )
    for col in cols:
        table.add_column(col, justify="left" if col == "method" else "right")
    notes = []
    for method, m in card["methods"].items():
        if m.get("direction_note") and m["direction_eligible"]:
            acc = "undefined"
        elif m["direction_eligible"]:
            acc = f"{m['direction_correct']}/{m['direction_eligible']}"
        else:
            acc = "-"
        funnel = (
            f"{m['funnel_inside']}/{m['funnel_categories']}" if m.get("funnel_categories") else "-"
        )
        table.add_row(
            method,
            str(m["categories"]),
            acc,
            _num(m["sme_median"]),
            _num(m["sme_p90"]),
            _num(m["sme_max"]),
            _num(m["nll_regret"], ".1f"),
            _num(m.get("log_pearson")),
            _num(m.get("spearman")),
            funnel,
        )
        for key in ("direction_note", "correlation_note"):
            if m.get(key):
                notes.append(f"{method}: {m[key]}")
    lines.append(table)
    lines.extend(notes)
    for p in card.get("production", []):
        lines.append(
            f"production {p['category']} ({p['grader']}): {p['k']}/{p['n']} flagged, "
            f"{p['ungradable']} ungradable"
        )
    for u in card.get("unscored", []):
        lines.append(f"unscored: {u['category']} {u['method']}: {u['reason']}")
    for u in card.get("unmeasured", []):
        lines.append(
            f"unmeasured at registration: {u['model']} x {u['category']}: {u['attempted']} "
            f"attempted, {u['failed']} failed, {u['ungradable']} ungradable"
        )
    lost = [r for r in card["categories"] if r.get("sim_failed") or r.get("sim_ungradable")]
    for r in lost:
        lines.append(
            f"registered {r['category']} {r['method']}: {r.get('sim_failed') or 0} failed, "
            f"{r.get('sim_ungradable') or 0} ungradable"
        )
    dec = card.get("decomposition") or {}
    if dec.get("categories"):
        t = Table(title="error decomposition (SME; method.md 5.12)")
        for col in ("category", "total", "prefix", "fidelity X", "fidelity Y", "X->X k/n"):
            t.add_column(col, justify="left" if col == "category" else "right")
        for r in dec["categories"]:
            t.add_row(
                r["category"],
                _num(r["total"]),
                _num(r["prefix"]),
                _num(r["fidelity_x"]),
                _num(r["fidelity_y"]),
                f"{r['xx_k']}/{r['xx_n']}",
            )
        lines.append(t)
    elif dec.get("note"):
        lines.append(f"error decomposition: {dec['note']}")
    for name, h in card.get("hypotheses", {}).items():
        detail = _outcome_detail(h)
        lines.append(f"{name}: {h['outcome']}" + (f" ({detail})" if detail else ""))
    if "taxonomy_coverage" in card:
        cov = card["taxonomy_coverage"]
        lines.append(
            f"taxonomy coverage: the auditor flagged {cov['flagged']} of {cov['audited']} "
            f"production turns ({cov.get('ungradable', 0)} ungradable)"
        )
        lines.extend(f"  - {d}" for d in cov["descriptions"][:10])
    return lines


def _outcome_detail(h: dict[str, Any]) -> str:
    """A hypothesis outcome's figures."""
    if "p_value" in h:
        return (
            f"{h['method']} vs {h['baseline']} over {h['categories']} categories, NLL "
            f"{h['nll_method']:.1f} vs {h['nll_baseline']:.1f}, p = {h['p_value']:.4g} "
            f"(alpha {h['alpha']})"
        )
    if "threshold_rate" in h:
        bounds = (
            f", auditor flags {h['flagged']}/{h['audited']} = {h['flagged_rate'] * 1e5:,.2f} "
            f"per 100k, one-sided 95% bounds [{h['lower_bound'] * 1e5:,.2f}, "
            f"{h['upper_bound'] * 1e5:,.2f}]"
            if "upper_bound" in h
            else ""
        )
        return f"threshold {h['threshold_rate'] * 1e5:,.2f} per 100k{bounds}"
    if "method" in h:
        return f"{h['method']} vs {h['baseline']}"
    return ""  # H3 not registered: the outcome says why


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``deploysim`` app."""
    app.add_typer(forecast_app, name="forecast")
    app.command()(scorecard)
