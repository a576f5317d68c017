"""Bad input: every bad record is skipped with its reason and location; no good one is lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploysim.errors import RecordError
from deploysim.ingest import ingest_file
from deploysim.store import Store

GOOD = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}


def _line(obj: object) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def _file(tmp_path: Path, lines: list[bytes]) -> Path:
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"".join(lines))
    return path


def test_bad_lines_are_reported_with_line_and_reason(tmp_path: Path) -> None:
    lines = [
        _line(GOOD),
        b'{"messages": [{"role": "user", "content": "trunc\n',
        _line({"messages": [{"role": "wizard", "content": "x"}]}),
        b"\n",
        b'{"messages": [{"role": "user", "content": "caf\xe9"}]}\n',
        _line({"messages": "not a list"}),
        _line({"no_messages": 1}),
        _line({"messages": [{"role": "user", "content": "second good"}]}),
    ]
    with Store(tmp_path / "s.db") as store:
        report = ingest_file(_file(tmp_path, lines), store, fmt="openai")
        stored = store.rejects(report.sha256)
        texts = [c.messages[0].text for c in store.conversations()]
    assert (report.records, report.kept, report.skipped) == (7, 2, 5)
    assert texts == ["hi", "second good"]
    by_line = {s.line: s.reason for s in report.skips}
    assert "invalid JSON" in by_line[2]
    assert "unknown role 'wizard'" in by_line[3]
    assert "invalid UTF-8" in by_line[5]
    assert "must be an array" in by_line[6]
    assert "no 'messages' field" in by_line[7]
    assert [r[1] for r in stored] == [2, 3, 5, 6, 7]


def test_strict_stops_at_first_bad_record_naming_file_and_line(tmp_path: Path) -> None:
    path = _file(tmp_path, [_line(GOOD), _line({"messages": 3}), _line(GOOD)])
    with Store(tmp_path / "s.db") as store, pytest.raises(RecordError) as info:
        ingest_file(path, store, strict=True)
    message = str(info.value)
    assert str(path) in message and "line 2" in message and "'messages'" in message


def test_detection_survives_a_corrupt_first_line(tmp_path: Path) -> None:
    path = _file(tmp_path, [b"{garbage\n", _line(GOOD)])
    with Store(tmp_path / "s.db") as store:
        report = ingest_file(path, store)
    assert (report.format, report.kept, report.skipped) == ("openai", 1, 1)


def test_truncated_json_array_keeps_whole_records_and_reports_tail(tmp_path: Path) -> None:
    items = [{"conversations": [{"from": "human", "value": f"q{i}"}]} for i in range(5)]
    text = json.dumps(items)
    path = tmp_path / "sg.json"
    path.write_text(text[: text.rindex("q4") + 1])  # cut inside the last record
    with Store(tmp_path / "s.db") as store:
        report = ingest_file(path, store)
    assert (report.format, report.kept, report.skipped) == ("sharegpt", 4, 1)
    (tail,) = report.skips
    assert tail.record == 5 and "truncated" in tail.reason and "4 whole records" in tail.reason


def test_interrupted_ingest_resumes_without_duplicates(tmp_path: Path) -> None:
    path = _file(
        tmp_path, [_line({"messages": [{"role": "user", "content": f"m{i}"}]}) for i in range(50)]
    )
    calls = 0

    def flaky(batch):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt
        return batch

    with Store(tmp_path / "s.db") as store:
        with pytest.raises(KeyboardInterrupt):
            ingest_file(path, store, transform=flaky, batch_size=10)
        assert store.count("conversations") == 20
        assert store.input(next(iter(r.sha256 for r in store.inputs()))).status == "partial"  # type: ignore[union-attr]
        report = ingest_file(path, store)
        assert report.status == "ingested" and report.kept == 50
        assert store.count("conversations") == 50


def test_jsonl_of_bare_message_lists(tmp_path: Path) -> None:
    lines = [_line(GOOD["messages"]), _line([{"role": "user", "content": "again"}])]
    with Store(tmp_path / "s.db") as store:
        report = ingest_file(_file(tmp_path, lines), store)
    assert (report.format, report.kept) == ("openai", 2)


def test_unknown_format_names_the_choices(tmp_path: Path) -> None:
    from deploysim.errors import InputError

    with Store(tmp_path / "s.db") as store, pytest.raises(InputError, match="sharegpt"):
        ingest_file(_file(tmp_path, [_line(GOOD)]), store, fmt="nope")
