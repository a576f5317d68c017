"""The taxonomy and grader validation: ``deploysim graders list|validate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from deploysim.cli._options import GradingConcurrencyOpt, JsonOpt, TaxonomyOpt
from deploysim.cli._types import Calibrate
from deploysim.cli.common import out, print_json
from deploysim.errors import InputError, UsageError
from deploysim.store import Store

graders_app = typer.Typer(help="The taxonomy and grader validation.", no_args_is_help=True)


@graders_app.command("list")
def graders_list(
    taxonomy: TaxonomyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The behaviour categories and their judge questions."""
    from deploysim.graders.taxonomy import load

    tax = load(taxonomy)
    if as_json:
        print_json({c.code: c.model_dump(mode="json") for c in tax.categories.values()})
        return
    table = Table(title=f"taxonomy v{tax.version}")
    for col in ("code", "name", "group", "question"):
        table.add_column(col)
    for c in tax.categories.values():
        table.add_row(c.code, c.name, c.group + (" *" if c.agentic else ""), c.question)
    out.print(table)


@graders_app.command("validate")
def graders_validate(
    grader: Annotated[str, typer.Argument(help="Grader spec, e.g. judge/REFUSAL.")],
    labels: Annotated[
        list[str],
        typer.Option(
            help="CSV/JSONL with human labels (repeatable), labels:<shipped set> (e.g. "
            "labels:replays-v1) or pyrit:<glob>."
        ),
    ],
    judge: Annotated[str | None, typer.Option(help="Judge model for a judge grader.")] = None,
    threshold: Annotated[
        float | None, typer.Option(help="Flag threshold (default: the grader's own).")
    ] = None,
    prompt_column: Annotated[str | None, typer.Option(help="Column with the request.")] = None,
    response_column: Annotated[str | None, typer.Option(help="Column with the response.")] = None,
    label_column: Annotated[str | None, typer.Option(help="Column with the human label.")] = None,
    label_map: Annotated[
        str | None,
        typer.Option(
            help="Text labels as positive/negative, e.g. 'full=1,partial=1,none=0' (multi-class "
            "label files)."
        ),
    ] = None,
    store: Annotated[
        Path | None, typer.Option("--store", "-s", help="Record the validation in this store.")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Use only the first N labelled items.")] = None,
    split: Annotated[
        str | None, typer.Option(help="Use only the rows whose 'split' column has this value.")
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option(
            help="Score cache (JSONL): scores are kept by grader and item, so a grader that "
            "differs only in its threshold or calibration is never graded twice."
        ),
    ] = None,
    calibrate: Annotated[
        Calibrate | None,
        typer.Option(
            help="Choose the threshold on these labels: youden (max Se + Sp - 1), precision90 "
            "(the most sensitive threshold with precision >= 0.90) or fixed (keep the grader's "
            "own; the file then carries only its validation); needs --calibration-out."
        ),
    ] = None,
    calibration_out: Annotated[
        Path | None,
        typer.Option(
            help="With --calibrate: write the calibration file. For a grader built with "
            "?calibration=FILE: record this (held-out) validation in FILE."
        ),
    ] = None,
    concurrency: GradingConcurrencyOpt = 4,
    as_json: JsonOpt = False,
) -> None:
    """Measure a grader against human labels: Se, Sp, precision and AUC with intervals.

    With --calibrate, choose its threshold on these labels and write a calibration file; a
    grader spec with ?calibration=FILE then flags at that threshold, and validating it on other
    labels (another --split) with --calibration-out FILE records the held-out validation that
    estimates use for Rogan-Gladen corrections.
    """
    from deploysim.cli.progress import count_progress
    from deploysim.graders import get_grader
    from deploysim.graders.calibration import write_calibration
    from deploysim.validation import (
        calibrate as choose,
    )
    from deploysim.validation import (
        check_held_out,
        measure,
        parse_label_map,
        read_labels,
        record_held_out,
        resolve_labels,
        score_items,
        store_validation,
    )

    mapping = parse_label_map(label_map) if label_map else None
    paths = [p for spec in labels for p in resolve_labels(spec)]
    g = get_grader(grader, default_judge=judge)
    if calibrate is not None and (calibration_out is None or len(paths) != 1):
        raise UsageError("--calibrate needs --calibration-out FILE and one --labels file")
    if calibration_out is not None and calibration_out.suffix != ".json":
        raise UsageError(f"--calibration-out {calibration_out}: name a .json file")
    if calibrate is not None and g.calibration_source is not None:
        raise UsageError(f"{grader} is calibrated already: drop its calibration option")
    if calibration_out is not None and calibrate is None:
        if g.calibration_source is None or len(paths) != 1:
            raise UsageError(
                "--calibration-out needs --calibrate, or a grader with ?calibration= and one "
                "--labels file (to record its held-out validation)"
            )
        check_held_out(calibration_out, paths[0], split)
    items = [
        it
        for p in paths
        for it in read_labels(
            p,
            prompt_col=prompt_column,
            response_col=response_column,
            label_col=label_column,
            label_map=mapping,
            category=g.category,
            split=split,
        )
    ][:limit]
    with count_progress("validate", quiet=as_json) as progress:
        scores = score_items(g, items, concurrency=concurrency, on_progress=progress, cache=cache)
    if calibrate is not None and calibration_out is not None:
        made = choose(g, grader, items, scores, criterion=calibrate, labels=paths[0], split=split)
        write_calibration(calibration_out, made)
        threshold = made.calibration.threshold
        # Re-built with its calibration, the grader has the hash estimates will look up.
        g = get_grader(
            f"{grader}{'&' if '?' in grader else '?'}calibration={calibration_out}",
            default_judge=judge,
        )
    metrics = measure(g, items, scores, threshold=threshold)
    metrics = {"grader": grader, "labels": [str(p) for p in paths], "split": split, **metrics}
    if calibrate is None and calibration_out is not None:
        record_held_out(calibration_out, metrics, paths[0], split)

    if store is not None:
        with Store(store) as st:
            for p in paths:
                store_validation(st, metrics, p, grader)
    if as_json:
        print_json(metrics)
        return
    m = metrics
    if "error" in m:
        raise InputError(f"{grader}: {m['error']} ({m['ungradable']} of {m['n']} ungradable)")
    out.print(
        f"{grader} on {m['n']} labelled items ({m['positives']} positive, {m['negatives']} "
        f"negative, {m['ungradable']} ungradable)"
    )
    for name in ("auc", "sensitivity", "specificity", "precision"):
        value, ci = m[name], m.get(f"{name}_ci")
        shown = "-" if value is None else f"{value:.3f}"
        bounds = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
        out.print(f"  {name:12s} {shown}{bounds}")
    out.print(f"  threshold    {m['threshold']:.3f} (Youden-optimal {m['youden_threshold']:.3f})")
    if calibrate is not None:
        out.print(f"  calibration  {calibrate} threshold written to {calibration_out}")
    elif calibration_out is not None:
        out.print(f"  held-out validation recorded in {calibration_out}")
    table = Table(title=f"reliability (expected calibration error {m['ece']:.3f})")
    for col in ("score", "n", "mean score", "labelled positive", "95% CI"):
        table.add_column(col, justify="left" if col == "score" else "right")
    for b in m["reliability"]:
        if b["n"] == 0:
            table.add_row(f"{b['lower']:.1f}-{b['upper']:.1f}", "0", "-", "-", "-")
            continue
        table.add_row(
            f"{b['lower']:.1f}-{b['upper']:.1f}",
            str(b["n"]),
            f"{b['mean_score']:.3f}",
            f"{b['positive_rate']:.3f}",
            f"{b['ci_low']:.3f}-{b['ci_high']:.3f}",
        )
    out.print(table)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``deploysim`` app."""
    app.add_typer(graders_app, name="graders")
