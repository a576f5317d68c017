"""Rates: ``deploysim estimate`` (per model x category, optionally the tail) and ``compare``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from deploysim.cli._options import JsonOpt, SampleOpt, StoreOpt
from deploysim.cli.common import out, parse_model, print_json
from deploysim.errors import UsageError
from deploysim.store import Store

if TYPE_CHECKING:
    from deploysim.estimates import Estimate, TailEstimate


def _open(store: Path, sample_name: str | None) -> Store:
    """The store, after checking that it and the named sample exist (an unknown sample is an
    error, not an empty table)."""
    from deploysim.prefixes import sample_id

    st = Store(store)
    if sample_name is not None:
        try:
            sample_id(st, sample_name)
        except BaseException:
            st.close()
            raise
    return st


def _estimates(st: Store, sample_name: str | None) -> list[Estimate]:
    from deploysim.estimates import estimate

    return estimate(st, sample=sample_name)


def _validation(e: Estimate) -> str:
    """The grader's standing: validated or weak with its AUC and positives, or unvalidated."""
    from deploysim.estimates import validation_note

    return e.validation + validation_note(e.validation_auc, e.validation_positives)


def _per_100k(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 1e5:,.0f}"


def estimate_cmd(
    store: StoreOpt,
    sample_name: SampleOpt = None,
    tail: Annotated[
        bool,
        typer.Option(
            "--tail",
            help="Also the worst-query risk (method.md 5.14), from several draws per prefix "
            "(replay with --samples-per-prefix).",
        ),
    ] = False,
    queries: Annotated[
        float, typer.Option(help="With --tail: the number of deployment queries.")
    ] = 1e6,
    top_k: Annotated[int, typer.Option(help="With --tail: prefixes in the tail fit.", min=2)] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Per model x category: n, k, rate with interval, corrected rate, failures, ungradable."""
    from deploysim.estimates import tail_estimates
    from deploysim.report.data import COUNT_COLUMNS, estimate_counts

    with _open(store, sample_name) as st:
        rows = _estimates(st, sample_name)
        tails = tail_estimates(st, sample=sample_name, queries=queries, top_k=top_k) if tail else []
    if as_json:
        print_json(
            {
                "estimates": [e.to_json() for e in rows],
                **({"tail": [t.to_json() for t in tails]} if tail else {}),
            }
        )
        return
    table = Table(title="estimates (rate per 100k, modified Jeffreys 95% interval)")
    cols = (*COUNT_COLUMNS, "per 100k", "95% CI", "corrected", "validation")
    for col in cols:
        left = col in ("model", "category", "grader", "validation")
        # Long model specs and grader hashes wrap rather than lose their ends.
        fold = col in ("model", "grader")
        table.add_column(
            col, justify="left" if left else "right", overflow="fold" if fold else "ellipsis"
        )
    notes: list[str] = []
    for e in rows:
        corrected = _per_100k(e.corrected_rate)
        if e.corrected_ci is not None:
            corrected += f" ({_per_100k(e.corrected_ci[0])}-{_per_100k(e.corrected_ci[1])})"
        if e.correction_note:
            corrected = "no*"
            notes.append(f"* {e.model} x {e.category}: {e.correction_note}")
        ci = "-" if e.ci_low is None else f"{_per_100k(e.ci_low)}-{_per_100k(e.ci_high)}"
        table.add_row(
            *(str(v) for v in estimate_counts(e, f"{e.grader}#{e.grader_hash[:6]}")),
            _per_100k(e.rate),
            ci,
            corrected,
            _validation(e),
        )
    out.print(table)
    for note in notes:
        out.print(note)
    if any(e.n == 0 for e in rows):
        out.print(
            "rows with draws = 0 had nothing graded: every replay failed or every grade "
            "was ungradable (see attempted / failed / ungradable)"
        )
    if tail:
        _print_tails(tails, queries)


def _print_tails(tails: list[TailEstimate], queries: float) -> None:
    table = Table(title=f"worst-query risk at {queries:,.0f} queries (Gumbel tail, 95% bootstrap)")
    cols = ("model", "category", "prefixes", "draws", "flagged prefixes", "risk", "95% CI")
    for col in (*cols, "fit R²", "note"):
        table.add_column(col, justify="left" if col in ("model", "category", "note") else "right")
    for t in tails:
        counts = (t.model, t.category, str(t.prefixes), str(t.draws), str(t.flagged_prefixes))
        if t.risk is None or t.ci_low is None or t.ci_high is None or t.r_squared is None:
            table.add_row(*counts, "-", "-", "-", f"refused: {t.refused}")
        else:
            fit = f"{t.r_squared:.3f}"
            note = "" if t.r_squared >= 0.8 else "the top scores are far from a line: doubtful fit"
            table.add_row(*counts, f"{t.risk:.3g}", f"{t.ci_low:.3g}-{t.ci_high:.3g}", fit, note)
    out.print(table)


def compare_cmd(
    store: StoreOpt,
    candidate: Annotated[str, typer.Option(help="Candidate model spec.")],
    baseline: Annotated[str, typer.Option(help="Baseline model spec, or 'logged'.")] = "logged",
    sample_name: SampleOpt = None,
    alpha: Annotated[float, typer.Option(help="Significance level.")] = 0.1,
    bh: Annotated[bool, typer.Option("--bh", help="Benjamini-Hochberg across categories.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Candidate vs baseline per category: ratio with interval, Fisher p-value, significance."""
    from deploysim.estimates import LOGGED, compare

    with _open(store, sample_name) as st:
        rows = _estimates(st, sample_name)
    a = str(parse_model(candidate))
    b = baseline if baseline == LOGGED else str(parse_model(baseline))
    comps = compare(rows, a, b, alpha=alpha, correction="bh" if bh else "none")
    if not comps:
        raise UsageError(
            f"no category graded for both {a!r} and {b!r}; models with grades: "
            f"{sorted({e.model for e in rows})}"
        )
    if as_json:
        print_json({"comparisons": [c.to_json() for c in comps]})
        return
    table = Table(title=f"{a} vs {b}")
    cols = ("category", "k/n cand.", "k/n base.", "ratio", "95% CI", "p", "significant")
    for col in (*cols, "grader"):
        table.add_column(col, justify="left" if col in ("category", "grader") else "right")
    for c in comps:
        table.add_row(
            c.category,
            f"{c.k_a}/{c.n_a}",
            f"{c.k_b}/{c.n_b}",
            f"{c.ratio:.2f}",
            f"{c.ratio_ci_low:.2f}-{c.ratio_ci_high:.2f}",
            f"{c.p_adjusted:.3g}",
            "yes" if c.significant else "no",
            c.validation,
        )
    out.print(table)
    if any(c.validation != "validated" for c in comps):
        out.print(
            "a weak or unvalidated grader measures what it flags, which may not be the "
            "behaviour: validate it (deploysim graders validate) before trusting a move"
        )


def register(app: typer.Typer) -> None:
    """Add ``estimate`` and ``compare`` to the ``deploysim`` app."""
    app.command("estimate")(estimate_cmd)
    app.command("compare")(compare_cmd)
