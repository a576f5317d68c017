"""The ``deploysim`` command.

Every command has ``--help``; every command that reports figures takes ``--json`` and then
prints them as one JSON object on stdout. Progress goes to stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from deploysim import __version__
from deploysim.cli.common import (
    JsonOpt,
    StoreOpt,
    err,
    out,
    parse_model,
    print_json,
    require_store,
)
from deploysim.errors import DeploysimError, InputError
from deploysim.ingest import FORMATS, FileReport
from deploysim.store import Store

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


@app.command()
def ingest(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Log files or directories (read recursively; see --glob)."),
    ],
    store: StoreOpt,
    fmt: Annotated[
        str | None,
        typer.Option("--format", "-f", help=f"Force the format: {', '.join(FORMATS)}."),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Stop at the first bad record or unreadable file.")
    ] = False,
    deidentify: Annotated[
        bool,
        typer.Option(
            "--deidentify/--no-deidentify",
            help="Replace personal data with consistent surrogates before storing (default); "
            "switching it off is recorded in the store's manifest.",
        ),
    ] = True,
    deid_strict: Annotated[
        bool, typer.Option("--deid-strict", help="Drop conversations the audit still flags.")
    ] = False,
    limit: Annotated[
        int | None, typer.Option(help="Read only the first N records of each file.", min=1)
    ] = None,
    glob: Annotated[
        str, typer.Option(help="Which files of a directory to read (e.g. '*.jsonl').")
    ] = "*",
    as_json: JsonOpt = False,
) -> None:
    """Read logs into the store: formats auto-detected, de-identified, bad records reported."""
    from deploysim.cli.progress import ingest_with_progress
    from deploysim.ingest import expand_paths
    from deploysim.pipeline import ingest_options

    files = expand_paths(paths, glob)
    reports: list[FileReport] = []
    failed: list[dict[str, str]] = []
    with Store(store) as st:
        transform, options = ingest_options(st, deidentify=deidentify, strict=deid_strict)
        for path in files:
            try:
                reports.append(
                    ingest_with_progress(
                        path,
                        st,
                        fmt=fmt,
                        strict=strict,
                        quiet=as_json,
                        transform=transform,
                        options=options,
                        limit=limit,
                    )
                )
            except InputError as e:
                if strict:
                    raise
                failed.append({"path": str(path), "reason": str(e)})
        counts = st.table_counts()
    if as_json:
        print_json(
            {
                "files": [r.to_json() for r in reports],
                "unreadable": failed,
                "store": str(store),
                "store_rows": counts,
            }
        )
        return
    _print_ingest_table(reports, failed)
    out.print(
        f"store {store}: {counts['conversations']} conversations, "
        f"{counts['messages']} distinct messages"
    )


def _print_ingest_table(reports: list[FileReport], failed: list[dict[str, str]]) -> None:
    table = Table(title="ingest")
    cols = (
        "file",
        "format",
        "status",
        "records",
        "kept",
        "skipped",
        "empty",
        "conversations",
        "new",
    )
    for col in cols:
        table.add_column(
            col,
            justify="left" if col in ("file", "format", "status") else "right",
            no_wrap=True,
        )
    for r in reports:
        table.add_row(
            Path(r.path).name,
            r.format,
            r.status,
            str(r.records),
            str(r.kept),
            str(r.skipped),
            str(r.empty),
            str(r.conversations),
            str(r.new_conversations) if r.status == "ingested" else "-",
        )
    out.print(table)
    for r in reports:
        for s in r.skips:
            where = f"record {s.record}" + (f", line {s.line}" if s.line else "")
            err.print(f"[yellow]skipped[/] {r.path}, {where}: {s.reason}", highlight=False)
        if r.skipped > len(r.skips):
            err.print(
                f"[yellow]... and {r.skipped - len(r.skips)} more skipped in {r.path}[/] "
                f"(by reason: {r.skip_reasons})",
                highlight=False,
            )
    for f in failed:
        err.print(f"[red]not ingested[/] {f['reason']}", highlight=False)


@app.command()
def stats(store: StoreOpt, as_json: JsonOpt = False) -> None:
    """Counts by source and format, turns per conversation, and tool use."""
    from deploysim.summary import summarize

    require_store(store)
    with Store(store) as st:
        summary = summarize(st)
    if as_json:
        print_json(summary)
        return
    table = Table(title=f"{store}: {summary['conversations']} conversations")
    for col in ("format", "inputs", "conversations", "sightings"):
        table.add_column(col, justify="left" if col == "format" else "right")
    for row in summary["by_format"]:
        table.add_row(
            row["format"], *(str(row[k]) for k in ("inputs", "conversations", "sightings"))
        )
    out.print(table)
    for label in ("messages_per_conversation", "user_turns_per_conversation"):
        d = summary[label]
        out.print(
            f"{label.replace('_', ' ')}: min {d['min']}, median {d['median']}, "
            f"mean {d['mean']}, p90 {d['p90']}, max {d['max']}"
        )
    tu = summary["tool_use"]
    out.print(
        f"tool use: {tu['conversations_with_tool_calls']} conversations with tool calls "
        f"({tu['tool_calls']} calls), {tu['conversations_offering_tools']} offering tools"
    )
    if tu["top_tools"]:
        out.print("top tools: " + ", ".join(f"{t['name']}" for t in tu["top_tools"][:10]))


@app.command("sample")
def sample_cmd(
    store: StoreOpt,
    name: Annotated[str, typer.Option("--name", help="Name of the sample.")] = "default",
    mode: Annotated[
        str,
        typer.Option("--mode", help="turn: uniform over user turns; final: over conversations."),
    ] = "turn",
    size: Annotated[int, typer.Option("--size", "-n", help="Number of prefixes.")] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    formats: Annotated[
        list[str] | None, typer.Option("--source-format", help="Only these formats (repeatable).")
    ] = None,
    min_user_turns: Annotated[int, typer.Option(help="Eligibility: at least this many.")] = 1,
    max_user_turns: Annotated[
        int | None, typer.Option(help="Eligibility: at most this many.")
    ] = None,
    has_tools: Annotated[
        bool | None, typer.Option("--has-tools/--no-tools", help="Only with / without tool use.")
    ] = None,
    include_multimodal: Annotated[
        bool, typer.Option("--include-multimodal", help="Keep conversations with images etc.")
    ] = False,
    stratify: Annotated[
        str | None,
        typer.Option(help="Stratify by source_format, source_file, has_tools or user_turns."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Draw a sample of prefixes (each with its inclusion probability and logged next turn)."""
    from deploysim.replay import create_sample
    from deploysim.sampling import SamplingSpec

    require_store(store)
    if mode not in ("turn", "final"):
        raise InputError(f"--mode must be turn or final, not {mode!r}")
    spec = SamplingSpec(
        mode=mode,
        size=size,
        seed=seed,
        formats=tuple(formats or ()),
        min_user_turns=min_user_turns,
        max_user_turns=max_user_turns,
        has_tools=has_tools,
        include_multimodal=include_multimodal,
        stratify=stratify,
    )
    with Store(store) as st:
        info = create_sample(st, name, spec)
    result = {
        "sample": info.name,
        "created": info.created,
        "size": info.size,
        "population": info.population,
        "spec": spec.model_dump(mode="json"),
        "spec_hash": info.spec_hash,
    }
    if as_json:
        print_json(result)
    else:
        verb = "drew" if info.created else "already have"
        out.print(
            f"{verb} sample {info.name!r}: {info.size} prefixes out of {info.population} "
            f"eligible ({spec.mode} mode, seed {spec.seed})"
        )


@app.command()
def replay(
    store: StoreOpt,
    model: Annotated[
        str, typer.Option("--model", "-m", help="Model spec, e.g. llamacpp/smollm2-135m.")
    ],
    sample_name: Annotated[
        str, typer.Option("--sample", help="Which sample to replay.")
    ] = "default",
    samples_per_prefix: Annotated[
        int, typer.Option("--samples-per-prefix", help="Regenerations per prefix.")
    ] = 1,
    concurrency: Annotated[int, typer.Option(help="Concurrent calls to the model.")] = 8,
    workers: Annotated[
        int,
        typer.Option(
            help="Local processes sharing --concurrency (one tops out near 1,000 requests/s)."
        ),
    ] = 1,
    temperature: Annotated[float | None, typer.Option(help="Sampling temperature.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Cap on generated tokens.")] = 512,
    seed: Annotated[int | None, typer.Option(help="Decoding seed, where supported.")] = None,
    timeout: Annotated[float, typer.Option(help="Per-request timeout, seconds.")] = 120.0,
    max_attempts: Annotated[int, typer.Option(help="Attempts per prefix (retryable errors).")] = 5,
    system_prompt: Annotated[
        str | None,
        typer.Option(help="Override the logged system prompt (text, or @file to read it)."),
    ] = None,
    include_reasoning: Annotated[
        bool, typer.Option("--include-reasoning", help="Send earlier hidden reasoning too.")
    ] = False,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Run stored failures again.")
    ] = False,
    tools: Annotated[
        str,
        typer.Option(
            help="none: stop at the first tool call; replay: answer tool calls "
            "(recorded, else simulated) and continue the agent loop."
        ),
    ] = "none",
    simulator: Annotated[
        str | None, typer.Option(help="Model spec that simulates unrecorded tool results.")
    ] = None,
    max_steps: Annotated[int, typer.Option(help="Model calls per replayed turn.")] = 8,
    executor: Annotated[
        str, typer.Option(help="local (asyncio, default) or ray (pip install 'deploysim[ray]').")
    ] = "local",
    num_actors: Annotated[int, typer.Option(help="Ray executor: actors in the pool.")] = 2,
    ray_address: Annotated[
        str | None, typer.Option(help="Ray executor: cluster address (default: RAY_ADDRESS).")
    ] = None,
    failure_injection: Annotated[
        bool,
        typer.Option(
            "--failure-injection/--no-failure-injection",
            help="Fail simulated tool calls at each tool's logged error rate.",
        ),
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Regenerate the next assistant turn of every sampled prefix; resumes where it stopped."""
    from deploysim.agent import RetryPolicy
    from deploysim.cli.progress import count_progress
    from deploysim.models import GenerateConfig
    from deploysim.replay import ReplaySpec, run_replay
    from deploysim.tools import ToolPolicy

    require_store(store)
    if system_prompt is not None and system_prompt.startswith("@"):
        system_prompt = Path(system_prompt[1:]).read_text(encoding="utf-8")
    spec = ReplaySpec(
        model=str(parse_model(model)),
        config=GenerateConfig(
            temperature=temperature, max_tokens=max_tokens, seed=seed, timeout_s=timeout
        ),
        system_prompt=system_prompt,
        include_reasoning=include_reasoning,
        tools=ToolPolicy(
            mode="replay" if tools == "replay" else "none",
            simulator=str(parse_model(simulator)) if simulator else None,
            max_steps=max_steps,
            inject_failures=failure_injection,
        ),
    )
    if tools not in ("none", "replay"):
        raise InputError(f"--tools must be none or replay, not {tools!r}")
    if executor not in ("local", "ray"):
        raise InputError(f"--executor must be local or ray, not {executor!r}")
    if workers < 1:
        raise InputError("--workers must be at least 1")
    with Store(store) as st, count_progress("replay", quiet=as_json) as progress:
        kw: dict[str, Any] = {
            "sample_name": sample_name,
            "draws": samples_per_prefix,
            "retry": RetryPolicy(max_attempts=max_attempts),
            "retry_failed": retry_failed,
            "on_progress": lambda s: progress(s.ok + s.failed, s.pending, s.failed),
        }
        if executor == "ray":
            from deploysim.execute.ray_executor import run_replay_ray

            summary = run_replay_ray(
                st,
                spec,
                concurrency_per_actor=concurrency,
                num_actors=num_actors,
                ray_address=ray_address,
                **kw,
            )
        else:
            summary = run_replay(st, spec, concurrency=concurrency, workers=workers, **kw)
    if as_json:
        print_json(summary.to_json())
        return
    out.print(
        f"{spec.model}: {summary.ok} replayed, {summary.failed} failed "
        f"({summary.retries} retries) in {summary.seconds:.1f} s; "
        f"tokens in {summary.input_tokens}, out {summary.output_tokens}"
    )
    if summary.errors:
        out.print("errors by type: " + ", ".join(f"{k} {v}" for k, v in summary.errors.items()))


@app.command()
def grade(
    store: StoreOpt,
    graders: Annotated[
        list[str],
        typer.Option("--graders", "-g", help="Grader specs: judge/<CODE>, rule/<name>, auditor."),
    ],
    judge: Annotated[
        str | None, typer.Option(help="Judge model for judge/auditor graders that name none.")
    ] = None,
    models: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="Only replays of these model specs.")
    ] = None,
    references: Annotated[
        bool, typer.Option("--references/--no-references", help="Grade logged responses too.")
    ] = True,
    sample_name: Annotated[str | None, typer.Option("--sample", help="Only this sample.")] = None,
    taxonomy: Annotated[Path | None, typer.Option(help="Extra categories (TOML file).")] = None,
    concurrency: Annotated[int, typer.Option(help="Concurrent grading calls.")] = 4,
    executor: Annotated[str, typer.Option(help="local (default) or ray.")] = "local",
    num_actors: Annotated[int, typer.Option(help="Ray executor: actors in the pool.")] = 2,
    ray_address: Annotated[str | None, typer.Option(help="Ray executor: cluster address.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Grade replays and logged reference responses; grades already made are kept."""
    from deploysim.cli.progress import count_progress
    from deploysim.graders import get_grader
    from deploysim.grading import run_grading

    require_store(store)
    built = [(g, get_grader(g, default_judge=judge, taxonomy_file=taxonomy)) for g in graders]
    model_specs = [str(parse_model(m)) for m in models or []]
    with Store(store) as st, count_progress("grade", quiet=as_json) as progress:
        if executor == "ray":
            from deploysim.execute.ray_executor import run_grading_ray

            summary = run_grading_ray(
                st,
                graders,
                default_judge=judge,
                taxonomy_file=taxonomy,
                models=model_specs,
                references=references,
                sample=sample_name,
                concurrency_per_actor=concurrency,
                num_actors=num_actors,
                ray_address=ray_address,
                on_progress=lambda s: progress(s.ok + s.ungradable, s.pending, s.ungradable),
            )
        else:
            summary = run_grading(
                st,
                built,
                models=model_specs,
                references=references,
                sample=sample_name,
                concurrency=concurrency,
                on_progress=lambda s: progress(s.ok + s.ungradable, s.pending, s.ungradable),
            )
    if as_json:
        print_json(summary.to_json())
        return
    table = Table(title=f"grades ({summary.seconds:.1f} s)")
    for col in ("grader", "graded", "flagged", "ungradable"):
        table.add_column(col, justify="left" if col == "grader" else "right")
    for spec, c in summary.by_grader.items():
        table.add_row(spec, str(c["ok"]), str(c["flagged"]), str(c["ungradable"]))
    out.print(table)
    if summary.pending == 0:
        out.print("nothing to grade: every response already has these graders' grades")


@app.command()
def realism(
    store: StoreOpt,
    model: Annotated[str, typer.Option("--model", "-m", help="The replayed model spec.")],
    judge: Annotated[str, typer.Option(help="Judge model spec.")],
    sample_name: Annotated[str | None, typer.Option("--sample", help="Only this sample.")] = None,
    limit: Annotated[int | None, typer.Option(help="Judge at most N replays.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the A/B order.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Can a judge tell replays (with simulated tools) from the logged continuations?"""
    from deploysim.cli.progress import count_progress
    from deploysim.realism import run_realism

    require_store(store)
    model = str(parse_model(model))
    spec = {
        "model": model,
        "judge": judge,
        "sample": sample_name,
        "limit": limit,
        "seed": seed,
    }
    with Store(store) as st, count_progress("realism", quiet=as_json) as progress:
        result = run_realism(
            st,
            judge=judge,
            model=model,
            sample=sample_name,
            limit=limit,
            seed=seed,
            on_progress=progress,
        )
        st.add_analysis("realism", spec, result)
    if as_json:
        print_json(result)
        return
    o = result["overall"]
    if not o["n"]:
        raise InputError("no replay could be judged (none has a logged continuation?)")
    out.print(
        f"judge {judge}: picked the replay as real in {o['k']}/{o['n']} = {o['win_rate']:.1%} "
        f"[{o['ci'][0]:.1%}, {o['ci'][1]:.1%}] (50% = indistinguishable); "
        f"{result['unjudgeable']} unjudgeable"
    )
    table = Table(title="per tool used in the replay")
    for col in ("tool", "n", "win rate", "95% CI"):
        table.add_column(col, justify="left" if col == "tool" else "right")
    for tool, r in result["per_tool"].items():
        table.add_row(
            tool, str(r["n"]), f"{r['win_rate']:.1%}", f"{r['ci'][0]:.1%}-{r['ci'][1]:.1%}"
        )
    out.print(table)


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="The run config (TOML).")],
    as_json: JsonOpt = False,
) -> None:
    """The whole pipeline from one config file; each stage resumes where it stopped."""
    from deploysim.config import load_config
    from deploysim.pipeline import run_pipeline

    cfg = load_config(config)
    result = run_pipeline(cfg, config.parent, **_stage_output(as_json))
    _finish(result, as_json)


@app.command()
def demo(
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Where to put the store and the report.")
    ] = Path("deploysim-demo"),
    prefixes: Annotated[
        int | None, typer.Option(help="Prefixes to replay (default: the demo's 20).")
    ] = None,
    categories: Annotated[
        list[str] | None,
        typer.Option("--categories", help="Judge categories (codes, repeatable), e.g. S K_NV."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The main job on the embedded default: real ShareGPT logs, local models, no API keys."""
    from deploysim.demo import run_demo

    cats = [c for item in categories or [] for c in item.replace(",", " ").split()]
    result = run_demo(out_dir, prefixes=prefixes, categories=cats or None, **_stage_output(as_json))
    _finish(result, as_json)


def _stage_output(quiet: bool) -> dict[str, Any]:
    from deploysim.cli.progress import count_progress

    def progress(label: str) -> Any:
        return count_progress(label, quiet=quiet)

    def log(line: str) -> None:
        if not quiet:
            err.print(line, highlight=False)

    return {"progress": progress, "log": log}


def _finish(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    table = Table(title="estimates (per 100k, Jeffreys 95% interval)")
    for col in ("model", "category", "grader", "n", "k", "per 100k", "95% CI"):
        table.add_column(col, justify="left" if col in ("model", "category", "grader") else "right")
    for e in result["estimates"]:
        table.add_row(
            e["model"],
            e["category"],
            e["grader"].split("?")[0],
            str(e["n"]),
            str(e["k"]),
            f"{e['per_100k']:,.0f}",
            f"{e['ci_low'] * 1e5:,.0f}-{e['ci_high'] * 1e5:,.0f}",
        )
    out.print(table)
    out.print(f"report: {result['report']}")


# Commands that live in their own modules register themselves on the app.
def _register_commands() -> None:
    from deploysim.cli import analysis, backtest, forecast, graders, rates, report
    from deploysim.cli.privacy import app as privacy_app

    forecast.register(app)
    graders.register(app)
    backtest.register(app)
    report.register(app)
    analysis.register(app)
    rates.register(app)
    app.add_typer(privacy_app, name="privacy")


_register_commands()
