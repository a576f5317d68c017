"""The options several commands share, declared once.

Each alias is an ``Annotated`` type carrying its ``typer.Option``: a command declares the option in
one line (``store: StoreOpt``, ``sample_name: SampleOpt = None``) and every command that takes it
spells it, documents it and validates it the same way. The default stays at the command, where
it differs (``--concurrency`` is 4 for grading calls). An option whose help text differs from
command to command is declared by its command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from deploysim.cli._types import ExecutorName
from deploysim.cli.common import require_store

# Help panels: a long command's options in groups, each listed apart in ``--help``.
AGENT = "Tools and agent loop"
CLUSTERING = "Clustering"
CONTROLS = "Discriminator controls"
DEID = "De-identification"
DETECTOR = "Embedded detector"
EXECUTION = "Execution"
SIMULATOR = "Tool simulator"


StoreOpt = Annotated[
    Path,
    typer.Option(
        "--store",
        "-s",
        help="The run store (SQLite file).",
        envvar="DEPLOYSIM_STORE",
        callback=require_store,
    ),
]
"""The run store, which must exist (``DEPLOYSIM_STORE`` names it too)."""

NewStoreOpt = Annotated[
    Path,
    typer.Option(
        "--store",
        "-s",
        help="The run store (SQLite file; created if missing).",
        envvar="DEPLOYSIM_STORE",
    ),
]
"""The run store that ``ingest`` writes, created if missing."""

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the figures as one JSON object.")]
"""``--json``: the figures as one JSON object on stdout."""

SampleOpt = Annotated[str | None, typer.Option("--sample", help="Only this sample.")]
"""A filter to one sample's rows."""

EverySampleOpt = Annotated[
    str | None, typer.Option("--sample", help="Only this sample (default: every sample).")
]
"""A filter to one sample, for commands that otherwise cover every sample (report, export)."""

TaxonomyOpt = Annotated[Path | None, typer.Option(help="Extra categories (TOML file).")]
"""Extra behaviour categories on top of the shipped taxonomy."""

GradingConcurrencyOpt = Annotated[int, typer.Option(help="Concurrent grading calls.")]
"""How many grading calls run at once."""

ExecutorOpt = Annotated[
    ExecutorName,
    typer.Option(
        help="Where the calls run. local: asyncio in this process; processes: --workers local "
        "processes (fast endpoints: one process tops out near 1,000 requests/s); ray: Ray Data "
        "actor pools (pip install 'deploysim\\[ray]', docs/ray.md).",
        rich_help_panel=EXECUTION,
    ),
]
"""Which executor runs a stage (:func:`deploysim.execute.choose`)."""

WorkersOpt = Annotated[
    int | None,
    typer.Option(
        help="processes executor: processes sharing --concurrency (default 2; more than 1 with "
        "--executor local means processes).",
        min=1,
        rich_help_panel=EXECUTION,
    ),
]
"""The processes executor's process count."""

NumActorsOpt = Annotated[
    int, typer.Option(help="ray executor: actors in the pool.", min=1, rich_help_panel=EXECUTION)
]
"""The Ray executor's pool size."""

RayAddressOpt = Annotated[
    str | None,
    typer.Option(
        help="ray executor: cluster address (default: RAY_ADDRESS).", rich_help_panel=EXECUTION
    ),
]
"""The Ray cluster to join."""
