"""The HTML report. Self-contained: inline CSS, no scripts or fonts fetched from anywhere."""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any

from deploysim import __version__

_CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:70rem;color:#222;
padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}
td,th{padding:.25rem .6rem;border-bottom:1px solid #eee}
th{text-align:left;background:#f6f6f6}td.n{text-align:right;font-variant-numeric:tabular-nums}
.meta{color:#666;font-size:.9rem}.bar{background:#4a78c2;height:.8rem;display:inline-block}
"""


def write_ingest_report(
    path: Path, summary: dict[str, Any], rejects: list[tuple[int, int | None, str]]
) -> Path:
    """Write the corpus report (what was ingested, and what was not) to ``path``."""
    body = [
        "<h1>deploysim report</h1>",
        f"<p class=meta>store {_e(summary['store'])} · deploysim {_e(__version__)} · "
        f"{_e(time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))}</p>",
        "<h2>Inputs</h2>",
        _table(
            ["file", "format", "status", "records", "kept", "skipped", "conversations"],
            [
                [
                    i["path"],
                    i["format"],
                    i["status"],
                    i["records"],
                    i["kept"],
                    i["skipped"],
                    i["conversations"],
                ]
                for i in summary["by_input"]
            ],
        ),
        "<h2>Skipped records</h2>",
        _table(["record", "line", "reason"], [list(r) for r in rejects[:200]])
        if rejects
        else "<p>None.</p>",
        "<h2>Conversations by format</h2>",
        _table(
            ["format", "inputs", "distinct conversations", "sightings"],
            [
                [r["format"], r["inputs"], r["conversations"], r["sightings"]]
                for r in summary["by_format"]
            ],
        ),
        "<h2>Shape</h2>",
        _table(
            ["", "min", "median", "mean", "p90", "max"],
            [
                [
                    label.replace("_", " "),
                    *(summary[label][k] for k in ("min", "median", "mean", "p90", "max")),
                ]
                for label in ("messages_per_conversation", "user_turns_per_conversation")
            ],
        ),
        "<h2>Tool use</h2>",
        _table(
            ["conversations with tool calls", "tool calls", "conversations offering tools"],
            [
                [
                    summary["tool_use"][k]
                    for k in (
                        "conversations_with_tool_calls",
                        "tool_calls",
                        "conversations_offering_tools",
                    )
                ]
            ],
        ),
    ]
    page = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>deploysim report</title><style>{_CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>"
    )
    path.write_text(page, encoding="utf-8")
    return path


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"<td class=n>{_e(value)}</td>"
    return f"<td>{_e('' if value is None else value)}</td>"


def _e(value: Any) -> str:
    return html.escape(str(value))
