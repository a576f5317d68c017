"""The ``deploysim`` command: the app, its entry point, and where each command group lives.

One module per command group, each with a ``register(app)``: ``data`` (ingest, stats, sample),
``replay`` (replay, grade, realism), ``rates`` (estimate, compare), ``forecast`` (forecast,
scorecard), ``backtest``, ``analysis`` (awareness, discover), ``report`` (report, view, export),
``run`` (run, demo), ``graders`` and ``privacy`` (sub-commands). Options with a fixed set of
values take the types of :mod:`deploysim.cli._types`. Every command has ``--help``; every
command that reports figures takes ``--json`` and then prints them as one JSON object on
stdout. Progress goes to stderr.
"""

from __future__ import annotations

import typer

from deploysim import __version__
from deploysim.cli.common import err, out
from deploysim.errors import DeploysimError

app = typer.Typer(
    name="deploysim",
    help="Predict how a new LLM will behave once deployed, by replaying logged conversations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def main() -> None:
    """Entry point: run the app, turning deploysim errors into one clear line and exit code 2."""
    from pydantic import ValidationError

    try:
        app()
    except DeploysimError as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False)
        raise SystemExit(2) from None
    except ValidationError as e:  # an option out of range reaches a spec's validation
        problems = "; ".join(
            f"{'.'.join(str(p) for p in x['loc']) or 'value'}: {x['msg']}" for x in e.errors()
        )
        err.print(f"[bold red]error:[/] invalid option ({problems}); see --help", highlight=False)
        raise SystemExit(2) from None
    except OSError as e:  # a path the user named: missing, a directory, not readable
        where = f"{e.filename}: " if e.filename else ""
        err.print(f"[bold red]error:[/] {where}{e.strerror or e}", highlight=False)
        raise SystemExit(2) from None


@app.command()
def version() -> None:
    """Print the deploysim version."""
    out.print(__version__)


# Commands live in one module per group; each registers itself on the app.
def _register_commands() -> None:
    from deploysim.cli import (
        analysis,
        backtest,
        data,
        forecast,
        graders,
        rates,
        replay,
        report,
        run,
    )
    from deploysim.cli.privacy import app as privacy_app

    data.register(app)
    replay.register(app)
    rates.register(app)
    forecast.register(app)
    backtest.register(app)
    analysis.register(app)
    report.register(app)
    run.register(app)
    graders.register(app)
    app.add_typer(privacy_app, name="privacy")


_register_commands()
