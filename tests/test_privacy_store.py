"""De-identification at ingest: what reaches the SQLite store, measured on labelled PII."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from deploysim.cli import app
from deploysim.privacy import DEFAULT_KEEP
from deploysim.privacy.detector import Detector
from deploysim.privacy.evaluation import load_labelled
from deploysim.store import Store
from tests.conftest import PII


@pytest.mark.slow
def test_no_detected_pii_value_reaches_the_store(tmp_path: Path) -> None:
    items = load_labelled(PII)
    logs = tmp_path / "pii.jsonl"
    with logs.open("w") as f:
        for it in items:
            messages = [
                {"role": "user", "content": it.text},
                {"role": "assistant", "content": "Thanks, noted."},
            ]
            f.write(json.dumps({"messages": messages}) + "\n")
    db = tmp_path / "s.db"
    result = CliRunner().invoke(app, ["ingest", str(logs), "--store", str(db), "--json"])
    assert result.exit_code == 0, result.output
    with Store(db) as st:
        meta = st.meta()
        # Each labelled text's own stored conversation (record i of the file), and everything
        # else the store keeps about it (provenance metadata): the raw JSON and every string
        # in it decoded (in JSON, "engineer\nmorrow, pike and hale" hides a value that
        # starts a line from a whole-word search).
        stored = {
            record: "\n".join(
                [bodies, metadata, *_strings(json.loads(bodies)), *_strings(json.loads(metadata))]
            )
            for record, bodies, metadata in st.db.execute(
                "SELECT s.record, json_group_array(m.body), s.metadata FROM sightings s "
                "JOIN conversations c ON c.hash = s.conversation_hash, "
                "json_each(c.message_hashes) j JOIN messages m ON m.hash = j.value "
                "GROUP BY s.id"
            )
        }
    assert meta["deid_version"].startswith("deid-") and len(stored) == len(items)
    found = Detector().detect_many([it.text for it in items])
    leaked, leaked_detected = [], []
    for i, (item, dets) in enumerate(zip(items, found, strict=True), start=1):
        dump = stored[i]
        for s in item.spans:
            value = item.text[s.start : s.end].strip()
            if value and re.search(rf"(?<!\w){re.escape(value)}(?!\w)", dump):
                leaked.append((s.entity_type, value))
                if s.entity_type not in DEFAULT_KEEP and any(
                    d.start < s.end and s.start < d.end for d in dets
                ):
                    leaked_detected.append((s.entity_type, value))
    spans = sum(len(it.spans) for it in items)
    print(f"labelled raw values found in the store: {len(leaked)} of {spans}")
    # Every value the detector finds is replaced before anything is stored. What remains are
    # the detector's misses, mostly in texts typed in lower case with no cue; measured values
    # are in docs/design/privacy.md (under 1%). The bound keeps a margin: at most 2% of the
    # labelled values.
    assert leaked_detected == []
    assert len(leaked) <= 0.02 * spans, leaked


def _strings(value: Any) -> Iterator[str]:
    """Every string in a JSON value (keys too), and those in JSON texts inside it."""
    if isinstance(value, str):
        yield value
        try:
            inner = json.loads(value) if value[:1] in "{[" else None
        except ValueError:
            inner = None
        if inner is not None:
            yield from _strings(inner)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def test_ingest_deidentifies_by_default_and_off_is_recorded(tmp_path: Path) -> None:
    logs = tmp_path / "one.jsonl"
    text = "Hi, I'm Jonathan Pemberton, email jonathan.pemberton@gmail.com, call 415-555-0199."
    logs.write_text(json.dumps({"messages": [{"role": "user", "content": text}]}) + "\n")
    runner = CliRunner()
    on, off = tmp_path / "on.db", tmp_path / "off.db"
    assert runner.invoke(app, ["ingest", str(logs), "--store", str(on)]).exit_code == 0
    assert (
        runner.invoke(app, ["ingest", str(logs), "--store", str(off), "--no-deidentify"]).exit_code
        == 0
    )
    with Store(on) as st:
        dump = "\n".join(st.db.iterdump())
        assert st.meta()["deid_version"].startswith("deid-")
    for raw in ("Pemberton", "jonathan.pemberton@gmail.com", "415-555-0199"):
        assert raw not in dump
    with Store(off) as st:
        assert st.meta()["deid_version"] == "off"
        assert "Pemberton" in "\n".join(st.db.iterdump())


@pytest.mark.slow
def test_what_only_the_model_said_is_kept_unless_asked(tmp_path: Path) -> None:
    logs = tmp_path / "film.jsonl"
    messages = [
        {"role": "user", "content": "I'm Marisol Quintero. Which film about a diner won?"},
        {
            "role": "assistant",
            "content": "You may mean Salt and Embers, a 1987 film directed by Edvard Lindqvist.",
        },
    ]
    logs.write_text(json.dumps({"messages": messages}) + "\n")
    runner = CliRunner()
    kept, replaced = tmp_path / "kept.db", tmp_path / "replaced.db"
    assert runner.invoke(app, ["ingest", str(logs), "--store", str(kept)]).exit_code == 0
    args = ["ingest", str(logs), "--store", str(replaced), "--deid-replace-introduced"]
    assert runner.invoke(app, args).exit_code == 0
    with Store(kept) as st:
        dump = "\n".join(st.db.iterdump())
    assert "Quintero" not in dump and "Edvard Lindqvist" in dump
    with Store(replaced) as st:
        dump = "\n".join(st.db.iterdump())
    assert "Quintero" not in dump and "Lindqvist" not in dump
    assert "deid_keep_introduced" in dump  # the non-default choice is recorded
