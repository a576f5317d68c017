"""Replay and grading commands: ``deploysim replay``, ``grade`` and ``realism``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from deploysim.cli._options import (
    AGENT,
    CONTROLS,
    SIMULATOR,
    ExecutorOpt,
    GradingConcurrencyOpt,
    JsonOpt,
    NumActorsOpt,
    RayAddressOpt,
    SampleOpt,
    StoreOpt,
    TaxonomyOpt,
    WorkersOpt,
)
from deploysim.cli._types import RealismDiscriminator, SimulatorArms, ToolMode
from deploysim.cli.common import out, parse_model, print_json
from deploysim.errors import UsageError
from deploysim.store import Store


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
    concurrency: Annotated[
        int, typer.Option(help="Concurrent calls to the model (per actor on Ray).")
    ] = 8,
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
        ToolMode,
        typer.Option(
            help="none: stop at the first tool call; replay: answer tool calls "
            "(recorded, else simulated) and continue the agent loop.",
            rich_help_panel=AGENT,
        ),
    ] = "none",
    simulator: Annotated[
        str | None,
        typer.Option(
            help="Model spec that simulates unrecorded tool results.", rich_help_panel=AGENT
        ),
    ] = None,
    max_steps: Annotated[
        int, typer.Option(help="Model calls per replayed turn.", rich_help_panel=AGENT)
    ] = 8,
    executor: ExecutorOpt = "local",
    workers: WorkersOpt = None,
    num_actors: NumActorsOpt = 2,
    ray_address: RayAddressOpt = None,
    failure_injection: Annotated[
        bool,
        typer.Option(
            "--failure-injection/--no-failure-injection",
            help="Fail simulated tool calls at each tool's logged error rate.",
            rich_help_panel=AGENT,
        ),
    ] = True,
    state_check: Annotated[
        bool,
        typer.Option(
            "--state-check/--no-state-check",
            help="Answer calls naming ids the conversation never showed with the logged "
            "'not found' error instead of simulating them.",
            rich_help_panel=AGENT,
        ),
    ] = True,
    simulator_sees_log: Annotated[
        bool,
        typer.Option(
            "--simulator-sees-log/--simulator-blind",
            help="Show the tool simulator what the log did next (blind: the realism ablation).",
            rich_help_panel=AGENT,
        ),
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Regenerate the next assistant turn of every sampled prefix; resumes where it stopped."""
    from deploysim.agent import RetryPolicy
    from deploysim.cli.progress import count_progress
    from deploysim.execute import choose
    from deploysim.models import GenerateConfig
    from deploysim.replay import ReplaySpec, run_replay
    from deploysim.stage import show_on
    from deploysim.tools import ToolPolicy

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
            mode=tools,
            simulator=str(parse_model(simulator)) if simulator else None,
            max_steps=max_steps,
            inject_failures=failure_injection,
            state="ids" if state_check else "off",
            show_continuation=simulator_sees_log,
        ),
    )
    with Store(store) as st, count_progress("replay", quiet=as_json) as progress:
        summary = run_replay(
            st,
            spec,
            sample_name=sample_name,
            draws=samples_per_prefix,
            concurrency=concurrency,
            retry=RetryPolicy(max_attempts=max_attempts),
            retry_failed=retry_failed,
            on_progress=show_on(progress),
            executor=choose(
                executor, workers=workers, num_actors=num_actors, ray_address=ray_address
            ),
        )
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
    sample_name: SampleOpt = None,
    taxonomy: TaxonomyOpt = None,
    concurrency: GradingConcurrencyOpt = 4,
    executor: ExecutorOpt = "local",
    workers: WorkersOpt = None,
    num_actors: NumActorsOpt = 2,
    ray_address: RayAddressOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Grade replays and logged reference responses; grades already made are kept."""
    from deploysim.cli.progress import count_progress
    from deploysim.execute import choose
    from deploysim.graders import get_grader
    from deploysim.grading import run_grading
    from deploysim.stage import show_on

    built = [(g, get_grader(g, default_judge=judge, taxonomy_file=taxonomy)) for g in graders]
    model_specs = [str(parse_model(m)) for m in models or []]
    with Store(store) as st, count_progress("grade", quiet=as_json) as progress:
        summary = run_grading(
            st,
            built,
            models=model_specs,
            references=references,
            sample=sample_name,
            concurrency=concurrency,
            on_progress=show_on(progress),
            executor=choose(
                executor, workers=workers, num_actors=num_actors, ray_address=ray_address
            ),
            default_judge=judge,
            taxonomy_file=taxonomy,
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


def realism(
    store: StoreOpt,
    model: Annotated[str | None, typer.Option("--model", "-m", help="The replayed model.")] = None,
    judge: Annotated[
        str | None, typer.Option(help="Judge model spec (the judge discriminator).")
    ] = None,
    discriminator: Annotated[
        RealismDiscriminator,
        typer.Option(
            help="judge: a model picks the real one (--judge); consistency: no model, each "
            "continuation checked against the store's tool records and the prefix; "
            "consistency-tools: tool results only (the simulator, not the candidate's style).",
        ),
    ] = "judge",
    sample_name: SampleOpt = None,
    limit: Annotated[int | None, typer.Option(help="Judge at most N replays.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the A/B order.")] = 0,
    replay_spec: Annotated[
        str | None, typer.Option("--spec", help="Only this replay spec (hash or its prefix).")
    ] = None,
    both_orders: Annotated[
        bool, typer.Option("--both-orders", help="Ask both A/B orders, average (2x calls).")
    ] = False,
    controls: Annotated[
        bool,
        typer.Option(
            "--controls",
            help="Validate the discriminator instead: logged continuations vs broken copies "
            "it must catch (target 90%).",
            rich_help_panel=CONTROLS,
        ),
    ] = False,
    writer: Annotated[
        str | None,
        typer.Option(
            help="With --controls: also the other_model control, assistant texts written by "
            "this model spec (another family than the candidate's, e.g. llamacpp/smollm2-135m).",
            rich_help_panel=CONTROLS,
        ),
    ] = None,
    simulator: Annotated[
        str | None,
        typer.Option(
            help="Instead of replays, the tool simulator (model spec) alone: it answers the "
            "first tool call of each logged continuation, its recorded result hidden, blind "
            "and seeing the logged trajectory (the method's ablation).",
            rich_help_panel=SIMULATOR,
        ),
    ] = None,
    arm: Annotated[
        SimulatorArms,
        typer.Option(help="With --simulator: the arms run.", rich_help_panel=SIMULATOR),
    ] = "both",
    cache: Annotated[
        Path | None,
        typer.Option(
            help="With --simulator: keep each simulated answer in this JSONL file, so that a "
            "stopped run resumes and another discriminator reuses the answers.",
            rich_help_panel=SIMULATOR,
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Can a discriminator tell replays (with simulated tools) from the logged continuations?"""
    from deploysim.cli.progress import count_progress
    from deploysim.realism import RealismSettings, run_controls, run_realism
    from deploysim.realism.simulated import ARMS, run_simulated

    # --controls validates the discriminator alone (a --model given with it is not read).
    if controls and simulator is not None:
        raise UsageError("--controls validates the discriminator: run --simulator on its own")
    if not controls and (model is None) == (simulator is None):
        raise UsageError(
            "give one of --model (judge its replays), --simulator (the simulator on logged "
            "calls) or --controls (validate the discriminator)"
        )
    model = None if model is None else str(parse_model(model))
    if discriminator == "judge" and judge is None:
        raise UsageError(
            "--discriminator judge needs --judge MODEL_SPEC (or use --discriminator consistency "
            "or consistency-tools: no model)"
        )
    spec = {
        "model": model,
        "judge": judge,
        "sample": sample_name,
        "limit": limit,
        "seed": seed,
        "replay_spec": replay_spec,
        "both_orders": both_orders,
        "controls": controls,
        "discriminator": discriminator,
        "writer": writer,
        "simulator": simulator,
        "arm": arm,
    }
    settings = RealismSettings(sample=sample_name, limit=limit, seed=seed, both_orders=both_orders)
    with Store(store) as st, count_progress("realism", quiet=as_json) as progress:
        if simulator is not None:
            result = run_simulated(
                st,
                simulator=str(parse_model(simulator)),
                arms=ARMS if arm == "both" else (arm,),
                settings=settings,
                discriminator=discriminator,
                judge=judge,
                cache=cache,
                on_progress=progress,
            )
        elif controls:
            result = run_controls(
                st,
                judge=judge,
                settings=settings,
                on_progress=progress,
                discriminator=discriminator,
                writer=writer,
            )
        else:
            assert model is not None
            result = run_realism(
                st,
                judge=judge,
                model=model,
                spec=replay_spec,
                settings=settings,
                on_progress=progress,
                discriminator=discriminator,
            )
        st.add_analysis("realism", spec, result)
    if as_json:
        print_json(result)
        return
    if simulator is not None:
        _print_simulated(result, discriminator)
        return
    o = result["overall"]
    if not o["n"]:
        raise UsageError(
            "no control could be judged (no prefix has a logged continuation?)"
            if controls
            else "no replay could be judged (none has a logged continuation?)"
        )
    who = judge if discriminator == "judge" else result["discriminator"]["version"]
    if controls:
        s = result["overall_strict"]
        out.print(
            f"{discriminator} {who}: caught {s['k']}/{s['n']} = {s['catch_rate']:.1%} "
            f"[{s['ci'][0]:.1%}, {s['ci'][1]:.1%}] of broken continuations, undecided counted "
            f"as missed (target 90%: {'met' if result['validated'] else 'not met'})"
        )
        for kind, r in result["per_kind_strict"].items():
            out.print(f"  {kind}: {r['k']}/{r['n']} = {r['catch_rate']:.1%}")
        return
    out.print(
        f"{discriminator} {who}: picked the replay as real in {o['k']}/{o['n']} = "
        f"{o['win_rate']:.1%} [{o['ci'][0]:.1%}, {o['ci'][1]:.1%}] (50% = indistinguishable); "
        f"{result['undecided']} undecided, {result['unjudgeable']} unjudgeable"
    )
    table = Table(title="per tool used in the replay")
    for col in ("tool", "n", "win rate", "95% CI"):
        table.add_column(col, justify="left" if col == "tool" else "right")
    for tool, r in result["per_tool"].items():
        table.add_row(
            tool, str(r["n"]), f"{r['win_rate']:.1%}", f"{r['ci'][0]:.1%}-{r['ci'][1]:.1%}"
        )
    out.print(table)


def _print_simulated(result: dict[str, Any], discriminator: str) -> None:
    if not result["prefixes"]:
        raise UsageError("no prefix has a logged continuation with a tool call to simulate")
    who = result["discriminator"].get("version", discriminator)
    out.print(
        f"simulator {result['simulator']} on the first logged call of {result['prefixes']} "
        f"prefixes; {discriminator} {who} picks the simulated answer as real (50% = "
        "indistinguishable):"
    )
    for arm, r in result["arms"].items():
        o = r["overall"]
        rate = (
            f"{o['k']}/{o['n']} = {o['win_rate']:.1%} [{o['ci'][0]:.1%}, {o['ci'][1]:.1%}]"
            if o["n"]
            else "-"
        )
        half = "-" if r["ties_as_half"] is None else f"{r['ties_as_half']:.1%}"
        out.print(
            f"  {arm}: {rate}; {r['undecided']} undecided (ties as half: {half}); "
            f"{r['equal_to_logged']} equal to the logged result, {r['simulator_failures']} "
            f"simulator failures, {r['seconds_per_call']:.0f} s per call"
        )
        a = r["answered_only"]["overall"]
        if r["simulator_failures"] and a["n"]:
            out.print(
                f"    without the {r['simulator_failures']} failed simulations: {a['k']}/{a['n']} "
                f"= {a['win_rate']:.1%} [{a['ci'][0]:.1%}, {a['ci'][1]:.1%}]"
            )
        tools = ", ".join(f"{t} {v['k']}/{v['n']}" for t, v in r["per_tool"].items())
        out.print(f"    per tool: {tools or '-'}")


def register(app: typer.Typer) -> None:
    """Add ``replay``, ``grade`` and ``realism`` to the ``deploysim`` app."""
    app.command()(replay)
    app.command()(grade)
    app.command()(realism)
