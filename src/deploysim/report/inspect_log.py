"""Inspect export: one ``.eval`` log per (model, sample), built with inspect_ai's own types.

Layout (formats.md §2): ``EvalSample.id`` = the prefix hash
(:func:`deploysim.report.transcripts.prefix_hash`), ``epoch`` = draw + 1; ``input`` = the prefix
(``source="input"``); ``messages`` = the prefix + the regenerated turn (``source="generate"``);
``scores`` = one :class:`Score` per graded category (``value`` 0/1, ``answer``
``flagged``/``not_flagged``, ``explanation`` = the rationale, ``metadata`` = grader id, hash and
``cot_visible``); sample ``metadata`` = source conversation pseudonym, cut, sampling mode and
weight, condition, de-identification version, tool result sources. A failed replay is a sample
with an ``error`` and no scores; an ungradable grade is listed in ``metadata.ungradable``. The
logged responses are the model ``logged`` (one more log per sample). The eval-level metadata is
the run manifest (taxonomy, grader definitions and hashes, prefix-manifest hash, the replay spec,
registered forecasts on that sample).

Samples are streamed into the log with Inspect's ``EvalRecorder`` (write-through: each sample
goes to the archive as it is made), so memory does not grow with the number of replays. That
recorder is internal to inspect_ai; the ``exports`` extra pins the version this was written
and tested against.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploysim import __version__
from deploysim.errors import UsageError
from deploysim.estimates import LOGGED
from deploysim.report import data
from deploysim.report.transcripts import prefix_hash
from deploysim.schema import ImagePart, Message, ReasoningPart, TextPart
from deploysim.store import Store

_STOP = {
    "stop": "stop",
    "length": "max_tokens",
    "max_tokens": "max_tokens",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
}


@dataclass
class _Tally:
    scorer: str
    n: int = 0
    k: int = 0
    ungradable: int = 0


@dataclass
class LogSummary:
    """One written log."""

    path: str
    model: str
    sample: str
    samples: int = 0
    scores: int = 0
    failed: int = 0
    tallies: dict[str, _Tally] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The summary as JSON-ready data."""
        return {
            "path": self.path,
            "model": self.model,
            "sample": self.sample,
            "samples": self.samples,
            "scores": self.scores,
            "failed": self.failed,
        }


def _require_inspect() -> None:
    try:
        import inspect_ai  # noqa: F401
    except ImportError as e:
        raise UsageError(
            "--format inspect needs inspect_ai: pip install 'deploysim[exports]'"
        ) from e


def export_inspect(store: Store, out_dir: Path, *, sample: str | None = None) -> list[LogSummary]:
    """Write one ``.eval`` log per (model, sample) into ``out_dir``; see the module docstring."""
    _require_inspect()
    out_dir.mkdir(parents=True, exist_ok=True)
    sid = data.sample_id(store, sample)
    labels = data.model_labels(store)
    keys = _score_keys(store)
    logs: list[LogSummary] = []
    samples = store.db.execute(
        "SELECT id, name FROM samples"
        + (" WHERE id = ?" if sid is not None else "")
        + " ORDER BY id",
        [] if sid is None else [sid],
    ).fetchall()
    for s_id, s_name in samples:
        specs = [
            h
            for (h,) in store.db.execute(
                "SELECT DISTINCT r.spec_hash FROM replays r JOIN prefixes p ON p.id = r.prefix_id "
                "WHERE p.sample_id = ?",
                (s_id,),
            )
        ]
        has_logged = store.db.execute(
            "SELECT 1 FROM prefixes WHERE sample_id = ? AND reference_index IS NOT NULL LIMIT 1",
            (s_id,),
        ).fetchone()
        for spec_hash in ([None] if has_logged else []) + sorted(specs, key=list(labels).index):
            label = LOGGED if spec_hash is None else labels[spec_hash]
            path = out_dir / f"{_slug(label)}__{_slug(s_name)}.eval"
            summary = LogSummary(str(path), label, s_name)
            _run_sync(_write(store, path, summary, s_id, spec_hash, keys))
            logs.append(summary)
    return logs


def _run_sync(coro: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine to completion, also when the caller is inside an event loop (a
    notebook, Playwright's sync API), where ``asyncio.run`` refuses: then in a thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coro)
        return
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coro)
        except BaseException as e:  # re-raised in the caller's thread
            errors.append(e)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


def _score_keys(store: Store) -> dict[str, str]:
    """Grader hash -> score name: the category, or ``category#hash8`` when a category has
    several grader versions in the store."""
    rows = store.db.execute("SELECT hash, category FROM graders").fetchall()
    per: dict[str, int] = {}
    for _, category in rows:
        per[category] = per.get(category, 0) + 1
    return {h: c if per[c] == 1 else f"{c}#{h[:8]}" for h, c in rows}


async def _write(
    store: Store,
    path: Path,
    summary: LogSummary,
    sample_id: int,
    spec_hash: str | None,
    keys: dict[str, str],
) -> None:
    from inspect_ai.log import (
        EvalConfig,
        EvalDataset,
        EvalMetric,
        EvalPlan,
        EvalResults,
        EvalScore,
        EvalSpec,
        EvalStats,
    )
    from inspect_ai.log._recorders.eval import EvalRecorder
    from inspect_ai.model import ModelUsage

    started = _iso(time.time())
    name, spec_json, spec_sha, mode = store.db.execute(
        "SELECT name, spec, spec_hash, json_extract(spec, '$.mode') FROM samples WHERE id = ?",
        (sample_id,),
    ).fetchone()
    model = "deploysim/logged" if spec_hash is None else _replay_model(store, spec_hash)
    spec = EvalSpec(
        eval_id=f"{data.run_id(store)}-{summary.model}-{name}",
        run_id=data.run_id(store),
        created=started,
        task=f"deploysim/{name}",
        task_id=spec_sha[:22],
        task_version=0,
        dataset=EvalDataset(name=name, location=str(store.path.name)),
        model=model,
        config=EvalConfig(),
        packages={"deploysim": __version__},
        metadata=_manifest(store, name, json.loads(spec_json), spec_sha, spec_hash),
    )
    recorder = EvalRecorder(str(path.parent))
    await recorder.log_init(spec, str(path), clean=True)
    await recorder.log_start(spec, EvalPlan())
    tokens_in = tokens_out = 0
    meta = store.meta()
    for sample, (t_in, t_out) in _samples(store, sample_id, spec_hash, keys, mode, meta, summary):
        tokens_in += t_in
        tokens_out += t_out
        await recorder.log_sample(spec, sample, write_through=True)
    results = EvalResults(
        total_samples=summary.samples,
        completed_samples=summary.samples - summary.failed,
        scores=[
            EvalScore(
                name=key,
                scorer=t.scorer,
                scored_samples=t.n,
                unscored_samples=t.ungradable,
                metrics={"mean": EvalMetric(name="mean", value=t.k / t.n if t.n else 0.0)},
            )
            for key, t in sorted(summary.tallies.items())
        ],
    )
    usage = ModelUsage(
        input_tokens=tokens_in, output_tokens=tokens_out, total_tokens=tokens_in + tokens_out
    )
    stats = EvalStats(
        started_at=started, completed_at=_iso(time.time()), model_usage={model: usage}
    )
    await recorder.log_finish(spec, "success", stats, results, None)


def _replay_model(store: Store, spec_hash: str) -> str:
    row = store.db.execute("SELECT model FROM replay_specs WHERE hash = ?", (spec_hash,)).fetchone()
    return str(row[0])


def _manifest(
    store: Store, name: str, spec: Any, spec_sha: str, spec_hash: str | None
) -> dict[str, Any]:
    from deploysim.forecast import prefix_manifest_hash

    graders = {
        h: {"spec": s, "category": c, "definition": json.loads(d)}
        for h, s, c, d in store.db.execute("SELECT hash, spec, category, definition FROM graders")
    }
    replay_spec = (
        None
        if spec_hash is None
        else json.loads(
            store.db.execute(
                "SELECT spec FROM replay_specs WHERE hash = ?", (spec_hash,)
            ).fetchone()[0]
        )
    )
    prereg = [
        f["content_hash"]
        for f in data.forecasts(store)
        if (f.get("sample") or {}).get("name") == name
    ]
    return {
        "deploysim_version": __version__,
        "run_id": data.run_id(store),
        "taxonomy": sorted({g["category"] for g in graders.values()}),
        "graders": graders,
        "sample": {"name": name, "spec": spec, "spec_hash": spec_sha},
        "prefix_manifest_hash": prefix_manifest_hash(store, name),
        "condition": spec_hash or LOGGED,
        "replay_spec": replay_spec,
        "preregistration_ids": prereg,
    }


def _samples(
    store: Store,
    sample_id: int,
    spec_hash: str | None,
    keys: dict[str, str],
    mode: str | None,
    meta: dict[str, str],
    summary: LogSummary,
) -> Iterator[tuple[Any, tuple[int, int]]]:
    from inspect_ai.log import EvalError, EvalSample
    from inspect_ai.model import ChatCompletionChoice, ChatMessageAssistant, ModelOutput

    graders = dict(store.db.execute("SELECT hash, spec FROM graders").fetchall())
    definitions = {
        h: json.loads(d) for h, d in store.db.execute("SELECT hash, definition FROM graders")
    }
    if spec_hash is None:
        rows = store.db.execute(
            "SELECT p.id, p.id, 0, 'ok', NULL, 'stop', NULL, NULL, 0, 0, p.conversation_hash, "
            "p.cut, p.reference_index, p.inclusion_prob, p.stratum, c.message_hashes "
            "FROM prefixes p JOIN conversations c ON c.hash = p.conversation_hash "
            "WHERE p.sample_id = ? AND p.reference_index IS NOT NULL ORDER BY p.id",
            (sample_id,),
        )
    else:
        rows = store.db.execute(
            "SELECT r.id, p.id, r.draw, r.status, r.response, r.finish_reason, r.error_kind, "
            "r.error, r.input_tokens, r.output_tokens, p.conversation_hash, p.cut, "
            "p.reference_index, p.inclusion_prob, p.stratum, c.message_hashes FROM replays r "
            "JOIN prefixes p ON p.id = r.prefix_id JOIN conversations c ON "
            "c.hash = p.conversation_hash WHERE r.spec_hash = ? AND p.sample_id = ? "
            "ORDER BY p.id, r.draw",
            (spec_hash, sample_id),
        )
    target = "replay" if spec_hash is not None else "reference"
    for (
        tid,
        pid,
        draw,
        status,
        response,
        finish,
        error_kind,
        error,
        t_in,
        t_out,
        chash,
        cut,
        ref,
        prob,
        stratum,
        mhashes,
    ) in rows:
        hashes: list[str] = json.loads(mhashes)
        bodies = _bodies(store, hashes[:cut] + ([hashes[ref]] if spec_hash is None else []))
        prefix = [to_inspect(Message.model_validate_json(bodies[h]), "input") for h in hashes[:cut]]
        if spec_hash is None:
            turn = [Message.model_validate_json(bodies[hashes[ref]])]
        else:
            turn = [Message.model_validate(m) for m in json.loads(response or "[]")]
        generated = [to_inspect(m, "generate") for m in turn]
        scores: dict[str, Any] = {}
        ungradable: list[str] = []
        for gh, category, g_status, score, flagged, rationale in store.db.execute(
            "SELECT grader_hash, category, status, score, flagged, rationale FROM grades "
            "WHERE target = ? AND target_id = ?",
            (target, tid),
        ):
            key = keys.get(gh, category)
            tally = summary.tallies.setdefault(key, _Tally(graders.get(gh, gh)))
            if g_status != "ok":
                tally.ungradable += 1
                ungradable.append(key)
                continue
            tally.n += 1
            tally.k += int(bool(flagged))
            scores[key] = _score(gh, graders, definitions, score, flagged, rationale)
        source_id = store.db.execute(
            "SELECT source_id FROM sightings WHERE conversation_hash = ? ORDER BY id LIMIT 1",
            (chash,),
        ).fetchone()
        metadata = {
            "source_conversation_id": source_id[0] if source_id else None,
            "conversation_hash": chash,
            "prefix_id": pid,
            "cut_turn_index": cut,
            "sampling_mode": mode,
            "sampling_weight": 1.0 / prob if prob else None,
            "stratum": stratum,
            "condition": spec_hash or LOGGED,
            "deid_version": meta.get("deid_version"),
            "tool_result_sources": sorted(
                {str(m.metadata["tool_source"]) for m in turn if "tool_source" in m.metadata}
            ),
            "ungradable": ungradable,
        }
        if spec_hash is not None:
            metadata.update({"replay_id": tid, "draw": draw, "finish_reason": finish})
        last = next((m for m in reversed(generated) if isinstance(m, ChatMessageAssistant)), None)
        model_name = summary.model
        output = (
            ModelOutput(
                model=model_name,
                choices=[
                    ChatCompletionChoice(message=last, stop_reason=_STOP.get(finish, "unknown"))
                ],
            )
            if last is not None
            else ModelOutput(model=model_name)
        )
        sample = EvalSample(
            id=prefix_hash(chash, cut),
            epoch=int(draw) + 1,
            input=prefix,
            target="",
            messages=prefix + generated,
            output=output,
            scores=scores or None,
            metadata=metadata,
            error=(
                EvalError(
                    message=f"replay failed ({error_kind or 'error'}): {error or ''}",
                    traceback="",
                    traceback_ansi="",
                )
                if status == "failed"
                else None
            ),
        )
        summary.samples += 1
        summary.scores += len(scores)
        summary.failed += status == "failed"
        yield sample, (int(t_in or 0), int(t_out or 0))


def _bodies(store: Store, hashes: list[str]) -> dict[str, str]:
    unique = list(dict.fromkeys(hashes))
    return dict(
        store.db.execute(
            f"SELECT hash, body FROM messages WHERE hash IN ({','.join('?' * len(unique))})",
            unique,
        ).fetchall()
    )


def _score(
    gh: str,
    graders: dict[str, str],
    definitions: dict[str, Any],
    score: float | None,
    flagged: int | None,
    rationale: str | None,
) -> Any:
    from inspect_ai.scorer import Score

    meta: dict[str, Any] = {"grader_id": graders.get(gh, gh), "grader_hash": gh}
    cot = definitions.get(gh, {}).get("cot_visible")
    if cot is not None:
        meta["cot_visible"] = cot
    if score is not None:
        meta["score"] = score
    return Score(
        value=int(bool(flagged)),
        answer="flagged" if flagged else "not_flagged",
        explanation=rationale,
        metadata=meta,
    )


def to_inspect(m: Message, source: str) -> Any:
    """A deploysim message as Inspect's ``ChatMessage`` (``developer`` becomes ``system``,
    with the original role kept in metadata)."""
    from inspect_ai.model import (
        ChatMessageAssistant,
        ChatMessageSystem,
        ChatMessageTool,
        ChatMessageUser,
    )
    from inspect_ai.tool import ToolCall, ToolCallError

    content = _content(m)
    meta: dict[str, Any] = {"role": m.role} if m.role == "developer" else {}
    src: Any = source
    if m.role in ("system", "developer"):
        return ChatMessageSystem(content=content, source=src, metadata=meta or None)
    if m.role == "user":
        return ChatMessageUser(content=content, source=src)
    if m.role == "tool":
        return ChatMessageTool(
            content=content,
            source=src,
            tool_call_id=m.tool_call_id,
            function=m.function,
            error=ToolCallError("unknown", m.error) if m.error else None,
        )
    calls = [
        ToolCall(
            id=c.id,
            function=c.function,
            arguments=c.arguments if isinstance(c.arguments, dict) else {},
            parse_error=c.parse_error
            or (None if isinstance(c.arguments, dict) else "arguments were not a JSON object"),
        )
        for c in m.tool_calls
    ]
    return ChatMessageAssistant(
        content=content, source=src, tool_calls=calls or None, model=m.model
    )


def _content(m: Message) -> Any:
    from inspect_ai.model import ContentImage, ContentReasoning, ContentText

    if isinstance(m.content, str):
        return m.content
    parts: list[Any] = []
    for p in m.content:
        if isinstance(p, TextPart):
            parts.append(ContentText(text=p.text))
        elif isinstance(p, ReasoningPart):
            parts.append(
                ContentReasoning(
                    reasoning=p.reasoning,
                    summary=p.summary,
                    signature=p.signature,
                    redacted=p.redacted,
                )
            )
        elif isinstance(p, ImagePart):
            detail = p.detail if p.detail in ("auto", "low", "high") else "auto"
            parts.append(ContentImage(image=p.image, detail=detail))
        else:
            parts.append(ContentText(text=f"[{p.kind}]"))
    return parts


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(t))
