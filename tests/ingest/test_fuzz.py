"""Property test: corrupting random lines of valid JSONL never crashes ingest and never loses a
valid line."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploysim.ingest import ingest_file
from deploysim.ingest.openai import convert
from deploysim.store import Store

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)


@st.composite
def record(draw: st.DrawFn) -> dict[str, object]:
    n = draw(st.integers(1, 4))
    messages: list[dict[str, object]] = []
    for i in range(n):
        if i % 2 == 0:
            messages.append({"role": "user", "content": draw(text)})
        elif draw(st.booleans()):
            args = json.dumps({"q": draw(text)})
            messages.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": f"c{i}",
                            "type": "function",
                            "function": {"name": "f", "arguments": args},
                        }
                    ],
                }
            )
            messages.append({"role": "tool", "tool_call_id": f"c{i}", "content": draw(text)})
        else:
            messages.append({"role": "assistant", "content": draw(text)})
    return {"messages": messages, "id": draw(text)}


def _corrupt(line: bytes, how: str, where: float) -> bytes:
    if how == "truncate":
        return line[: max(1, int(where * (len(line) - 1)))]
    if how == "invalid-utf8":
        at = int(where * len(line))
        return line[:at] + b"\xff\xfe" + line[at:]
    obj = json.loads(line)
    if how == "wrong-type":
        obj["messages"] = [42, "x"] if where < 0.5 else {"role": "user"}
    else:  # missing field
        del obj["messages"]
    return json.dumps(obj).encode()


corruption = st.tuples(
    st.sampled_from(["truncate", "invalid-utf8", "wrong-type", "missing-field"]),
    st.floats(0, 1),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=st.lists(record(), min_size=1, max_size=12),
    corruptions=st.lists(st.one_of(st.none(), corruption), min_size=12, max_size=12),
)
def test_corrupted_lines_never_crash_and_never_lose_valid_lines(
    records: list[dict[str, object]], corruptions: list[tuple[str, float] | None]
) -> None:
    lines: list[bytes] = []
    valid_hashes: set[str] = set()
    n_valid = 0
    for rec, bad in zip(records, corruptions, strict=False):
        line = json.dumps(rec).encode()
        if bad is None:
            n_valid += 1
            valid_hashes.add(convert(rec)[0].conversation.content_hash())
        else:
            line = _corrupt(line, *bad)
        lines.append(line)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "log.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        with Store(Path(tmp) / "s.db") as store:
            report = ingest_file(path, store, fmt="openai")
            stored = {c.content_hash() for c in store.conversations()}
    assert report.kept == n_valid
    assert report.skipped == len(lines) - n_valid
    assert stored == valid_hashes


def test_a_jsonl_file_whose_every_line_is_corrupt_counts_each_line(tmp_path: Path) -> None:
    # Every line a fragment: by its name the file is JSONL, so each line is one bad record
    # (not one unreadable pretty-printed document).
    path = tmp_path / "broken.jsonl"
    path.write_text('{"messages": [\n{\n{"role": "user"\n')
    with Store(tmp_path / "s.db") as store:
        report = ingest_file(path, store, fmt="openai")
    assert report.kept == 0 and report.skipped == 3
