"""The real bad input of the demo: the ShareGPT package file, truncated mid-record."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploysim.demo import sharegpt_file
from deploysim.ingest import ingest_file
from deploysim.store import Store


@pytest.mark.slow
def test_sharegpt_package_file_recovers_17671_whole_records(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        report = ingest_file(sharegpt_file(), store)
        rejects = store.rejects(report.sha256)
        stored = store.count("conversations")
    assert report.format == "sharegpt"
    # 17,671 whole records and one broken tail, which is the only skip.
    assert (report.records, report.kept, report.skipped) == (17_672, 17_671, 1)
    (tail,) = report.skips
    assert tail.record == 17_672
    assert "truncated" in tail.reason and "17671 whole records before it were kept" in tail.reason
    assert rejects == [(17_672, None, tail.reason)]
    # 138 whole records have an empty 'conversations' list: kept, counted, nothing to store.
    assert (report.empty, report.conversations) == (138, 17_533)
    # Conversations repeated verbatim in the dump are stored once.
    assert stored == report.new_conversations < report.conversations
