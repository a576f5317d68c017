"""Detection quality on the labelled presidio-research sample, the eval command, leaks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from deploysim.cli.privacy import app
from deploysim.privacy import DEFAULT_KEEP, Deidentifier
from deploysim.privacy.detector import Detector
from deploysim.privacy.evaluation import LabelledText, Span, evaluate, load_labelled, part_of
from deploysim.privacy.rules import Detection, iban_ok
from deploysim.privacy.surrogates import iban_check, luhn_digit
from deploysim.schema import Conversation, Message

from .conftest import PII, TAU


@pytest.mark.slow
def test_eval_meets_targets_and_beats_presidio_per_entity() -> None:
    """The targets of issue 21 on the test part (never tuned on, see ``part_of``)."""
    result = CliRunner().invoke(app, ["eval", str(PII), "--json", "--part", "test"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    ours, theirs = report["systems"]["deploysim"], report["systems"]["presidio_default"]
    assert report["part"] == "test" and 0 < report["texts"] < 750
    assert ours["recall"] >= 0.97 and ours["char_precision"] >= 0.90
    assert ours["recall"] > theirs["recall"] and ours["f2"] > theirs["f2"]
    for etype, row in theirs["per_entity"].items():
        if row["spans"]:
            assert ours["per_entity"][etype]["recall"] >= row["recall"], etype


@pytest.mark.slow
def test_tau_bench_records_are_a_second_labelled_source(tmp_path: Path) -> None:
    """studies/privacy-tau: customer records of real agent logs label their messages; the test
    part (odd tasks, never tuned on) meets a threshold below its measured recall (0.93)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "studies" / "privacy-tau" / "build.py"
    spec = importlib.util.spec_from_file_location("tau_build", path)
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    records = build.build(TAU)
    kinds = {s["entity_type"] for r in records for s in r["spans"]}
    assert {"PERSON", "ACCOUNT_ID", "DATE_TIME"} <= kinds
    labelled = tmp_path / "tau.json"
    labelled.write_text(json.dumps(records), encoding="utf-8")
    result = CliRunner().invoke(app, ["eval", str(labelled), "--json", "--part", "test"])
    assert result.exit_code == 0, result.output
    ours = json.loads(result.output)["systems"]["deploysim"]
    assert ours["recall"] >= 0.88, ours["per_entity"]


def test_eval_table_and_limit() -> None:
    result = CliRunner().invoke(app, ["eval", str(PII), "--limit", "20"])
    assert result.exit_code == 0, result.output
    assert "PII detection on 20 texts" in result.output
    assert "deploysim" in result.output and "presidio" in result.output


def test_eval_rejects_unreadable_data(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "a list"}')
    result = CliRunner().invoke(app, ["eval", str(bad)])
    assert result.exit_code == 2 and "expected a JSON array" in result.output
    result = CliRunner().invoke(app, ["eval", str(tmp_path / "missing.json")])
    assert result.exit_code == 2 and "cannot read" in result.output


def test_scores_on_known_values() -> None:
    item = LabelledText("Mia Li lives in Oslo", (Span(0, 6, "PERSON"), Span(16, 20, "GPE")))
    score = evaluate([item], [[Detection(0, 3, "PERSON", 1, "t"), Detection(7, 12, "X", 1, "t")]])
    assert score.recall() == 0.5 and score.recall("PERSON") == 1.0 and score.recall("GPE") == 0
    assert score.precision() == 3 / 8 and score.precision("PERSON") == 1.0
    assert score.f2() == pytest.approx(5 * 0.375 * 0.5 / (4 * 0.375 + 0.5))


def test_load_labelled_limit() -> None:
    items = load_labelled(PII, limit=5)
    assert len(items) == 5 and all(isinstance(s, Span) for it in items for s in it.spans)


def test_parts_split_the_file_by_template(tmp_path: Path) -> None:
    dev, test, every = (load_labelled(PII, part=p) for p in ("dev", "test", "all"))
    assert len(dev) + len(test) == len(every) and dev and test
    assert {it.text for it in dev}.isdisjoint({it.text for it in test})
    records = [
        {"full_text": "Ann", "spans": [], "template_id": 7},
        {"full_text": "Bo", "spans": [], "template_id": 8},
        {"full_text": "Cy", "spans": []},  # no template: its index (2) decides
    ]
    path = tmp_path / "l.json"
    path.write_text(json.dumps(records))
    assert [it.text for it in load_labelled(path, part="test")] == ["Ann"]
    assert [it.text for it in load_labelled(path, part="dev")] == ["Bo", "Cy"]
    assert part_of(3, None) == "test" and part_of(3, 4) == "dev"


@pytest.mark.slow
def test_no_detected_raw_value_reaches_the_output() -> None:
    """Each labelled text de-identified: which raw values are left in the new text or in the
    result serialised with model_dump_json? None of the detected ones; the misses (measured
    counts in docs/design/privacy.md) stay under 2% of the labelled values."""
    items = load_labelled(PII)
    detector = Detector()
    deid = Deidentifier(key=b"leak-test", detector=detector)
    results = deid.deidentify_many(
        [Conversation(messages=(Message(role="user", content=it.text),)) for it in items]
    )
    found = detector.detect_many([it.text for it in items])
    leaked, leaked_detected = [], []
    for item, result, dets in zip(items, results, found, strict=True):
        assert result.conversation is not None
        # The text itself too: in JSON, a value that starts a line follows "\n" and hides from
        # the whole-word search.
        dumped = result.model_dump_json() + "\n" + result.conversation.messages[0].text
        assert set(result.model_dump(exclude={"conversation"})["entities"].values()) <= set(
            range(100)
        )  # counts only
        for s in item.spans:
            value = item.text[s.start : s.end].strip()
            forms = {value, json.dumps(value, ensure_ascii=False)[1:-1]}
            if any(re.search(rf"(?<!\w){re.escape(f)}(?!\w)", dumped) for f in forms):
                leaked.append((s.entity_type, value))
                detected = any(d.start < s.end and s.start < d.end for d in dets)
                if detected and s.entity_type not in DEFAULT_KEEP:
                    leaked_detected.append((s.entity_type, value))
    assert leaked_detected == [], leaked_detected
    assert len(leaked) <= 0.02 * sum(len(it.spans) for it in items), leaked


@given(st.text(alphabet="0123456789", min_size=11, max_size=18))
def test_luhn_check_digit(body: str) -> None:
    digits = body + luhn_digit(body)
    total = sum(
        (n * 2 - 9 if n * 2 > 9 else n * 2) if i % 2 else n
        for i, n in enumerate(int(c) for c in reversed(digits))
    )
    assert total % 10 == 0


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=10, max_size=28))
def test_iban_check_digits(bban: str) -> None:
    assert iban_ok("DE" + iban_check("DE", bban) + bban)
