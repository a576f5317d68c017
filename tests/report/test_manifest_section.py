"""The run manifest's listings in the report (``report.sections.manifest_section``)."""

from __future__ import annotations

import re
from typing import Any

from deploysim.report.sections import manifest_section


def _manifest(validations: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "meta": {"schema": "7", "note": "a<b"},
        "inputs": [
            {
                "path": "logs/week1.jsonl",
                "sha256": "f00d",
                "format": "openai",
                "size": 2048,
                "status": "ingested",
                "records": 5,
                "kept": 4,
                "skipped": 1,
                "conversations": 4,
            }
        ],
        "samples": [
            {"name": "s1", "size": 2, "population": 4, "spec_hash": "aa11", "spec": {"seed": 3}}
        ],
        "replay_specs": [
            {"label": "m-small", "hash": "bb22", "ok": 2, "failed": 0, "spec": {"model": "m"}}
        ],
        "graders": [
            {"category": "R", "spec": "rule/r", "hash": "cc33", "definition": {"kind": "<rule>"}}
        ],
        "validations": validations,
    }


def _headers(html: str, title: str) -> list[str]:
    """The column headings of the table that follows ``<h3>title</h3>``."""
    table = html.split(f"<h3>{title}</h3>", 1)[1].split("</table>", 1)[0]
    return re.findall(r"<th>(.*?)</th>", table)


def test_listings_have_their_headings_and_folded_json() -> None:
    html = manifest_section(_manifest([]))
    assert _headers(html, "Inputs") == [
        "file",
        "sha256",
        "format",
        "bytes",
        "status",
        "records",
        "kept",
        "skipped",
        "convs",
    ]
    assert _headers(html, "Samples") == ["name", "size", "population", "spec hash", "spec"]
    assert _headers(html, "Replay specs") == ["model label", "spec hash", "ok", "failed", "spec"]
    assert _headers(html, "Graders") == ["category", "grader", "hash", "definition"]
    assert "Grader validations" not in html  # no validations, no listing
    # Folded JSON is a collapsed block, escaped; the plain cells are escaped too.
    assert html.count("<details>") == 3
    assert "&quot;&lt;rule&gt;&quot;" in html
    assert "a&lt;b" in html and "a<b" not in html
    assert "<td class=n>2,048</td>" in html


def test_a_validation_folds_its_whole_row() -> None:
    row = {"category": "R", "grader_hash": "cc33", "labels_sha256": "dd44", "auc": 0.91}
    html = manifest_section(_manifest([row]))
    assert _headers(html, "Grader validations") == [
        "category",
        "grader hash",
        "labels sha256",
        "metrics",
    ]
    folded = html.split("<h3>Grader validations</h3>", 1)[1]
    assert "&quot;auc&quot;: 0.91" in folded and "&quot;labels_sha256&quot;" in folded
