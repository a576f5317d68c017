"""``deploysim backtest``: forecasts scored against releases whose outcome is known."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from deploysim.cli._options import JsonOpt
from deploysim.cli.common import err, out, print_json


def _ci(ci: list[float] | None, fmt: str) -> str:
    return "" if ci is None else f" [{format(ci[0], fmt)}, {format(ci[1], fmt)}]"


def backtest(
    config: Annotated[
        Path, typer.Argument(help="The backtest config (TOML, a \\[backtest] table).")
    ],
    size: Annotated[
        int | None,
        typer.Option(help="Conversations per window of the rollout (overrides the config)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a backtest: replay, register every forecast, then score it on the candidate's
    production logs; every stage resumes where it stopped."""
    from deploysim.backtest import load_backtest_config, run_backtest
    from deploysim.cli.progress import count_progress

    cfg = load_backtest_config(config)

    def log(line: str) -> None:
        if not as_json:
            err.print(line, highlight=False)

    result = run_backtest(
        cfg,
        config.parent,
        size=size,
        progress=lambda label: count_progress(label, quiet=as_json),
        log=log,
    )
    if as_json:
        print_json(result)
        return
    print_tables(result)
    out.print(f"report: {result['report']}")


def print_tables(result: dict[str, Any]) -> None:
    """The pooled table over all pairs, then one line per pair and category."""
    from deploysim.backtest_score import accuracy_text

    boot = result["bootstrap"]
    table = Table(
        title=f"backtest over {len(result['pairs'])} ordered pairs (95% intervals: "
        f"{boot['replicates']} bootstrap replicates over conversations)"
    )
    for col in (
        "method",
        "rows",
        "direction (moved >= 1.5x)",
        "SME median",
        "SME p90",
        "max",
        "NLL",
    ):
        table.add_column(col, justify="left" if col == "method" else "right")
    for method, a in result["aggregate"].items():
        acc = accuracy_text(a)
        table.add_row(
            method,
            str(a["rows"]),
            acc,
            f"{a['sme_median']:.2f}{_ci(a['sme_median_ci'], '.2f')}",
            f"{a['sme_p90']:.2f}{_ci(a['sme_p90_ci'], '.2f')}",
            f"{a['sme_max']:.2f}",
            f"{a['nll']:.1f}",
        )
    out.print(table)
    per = Table(title="per pair: realised rate of the candidate vs forecasts")
    methods = result["methods"]
    for col in ("deployed -> candidate", "category", "Y prod", "X realised", *methods):
        per.add_column(
            col, justify="left" if col in ("deployed -> candidate", "category") else "right"
        )
    keyed: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
    for r in result["rows"]:
        keyed.setdefault((r["deployed"], r["candidate"], r["category"]), {})[r["method"]] = r
    for (y, x, cat), by in keyed.items():
        first = next(iter(by.values()))
        cells = []
        for m in methods:
            r = by.get(m)
            if r is None:
                cells.append("-")
                continue
            right = r["direction_correct"]
            mark = "" if not r["moved"] or right is None else (" ✓" if right else " ✗")
            cells.append(f"{r['forecast']:.1%}{mark}")
        per.add_row(
            f"{y} -> {x}",
            cat,
            f"{first['baseline_rate']:.1%}",
            f"{first['realised_k']}/{first['realised_n']} = {first['realised_rate']:.1%}",
            *cells,
        )
    out.print(per)
    for name, h in result["hypotheses"].items():
        detail = (
            f"p = {h['p_value']:.4g}, mean NLL difference {h['mean_nll_difference']:.2f}"
            if "p_value" in h
            else ""
        )
        out.print(
            f"pooled {name} ({h['method']} vs {h['baseline']} over {h['rows']} pair-categories, "
            f"alpha {h['alpha']}): {h['outcome']} {detail}"
        )
    for p in result["pairs"]:
        hyp = "; ".join(f"{k}: {h['outcome']}" for k, h in p["hypotheses"].items())
        out.print(f"{p['deployed']} -> {p['candidate']}: {hyp}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``deploysim`` app."""
    app.command()(backtest)
