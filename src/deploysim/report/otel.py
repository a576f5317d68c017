"""OpenTelemetry export: one ``gen_ai.evaluation.result`` event per grade, as JSON lines.

Each line is one log record in the OpenTelemetry log data model, with the attributes flattened
into one object (``{"event_name", "time_unix_nano", "severity_number", "attributes",
"resource", "scope", "schema_url"}``), ready for a collector's file receiver or a short script
that calls the Logs API. Attributes (formats.md §2):

* ``gen_ai.evaluation.name`` (required): ``deploysim.<category>``;
* ``gen_ai.evaluation.score.value`` and ``gen_ai.evaluation.score.label``
  (``flagged`` / ``not_flagged``) when the grade was made; ``error.type`` = ``ungradable``
  when it was not;
* ``gen_ai.response.id``: the provider's id of the graded response when the replay recorded
  one, else ``deploysim:replay:<id>`` / ``deploysim:reference:<prefix id>``;
* ``gen_ai.request.model`` (replays), ``gen_ai.conversation.id`` (the logged conversation's
  content hash);
* ``gen_ai.evaluation.explanation`` (the rationale) only with ``include_explanations``: it can
  quote user content;
* ``deploysim.*``: model label, grader, grader hash, target, prefix hash, draw, severity, sample.

The GenAI conventions are in Development; :data:`SCHEMA_URL` pins the version written against.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from deploysim import __version__
from deploysim.estimates import LOGGED
from deploysim.report import data
from deploysim.report.transcripts import prefix_hash
from deploysim.store import Store

EVENT_NAME = "gen_ai.evaluation.result"
SCHEMA_URL = "https://opentelemetry.io/schemas/1.38.0"
_SEVERITY_INFO = 9


def evaluation_events(
    store: Store, *, include_explanations: bool = False, sample: str | None = None
) -> Iterator[dict[str, Any]]:
    """Every grade as a ``gen_ai.evaluation.result`` log record; streamed from the store."""
    labels = data.model_labels(store)
    models = dict(store.db.execute("SELECT hash, model FROM replay_specs").fetchall())
    graders = dict(store.db.execute("SELECT hash, spec FROM graders").fetchall())
    rid = data.run_id(store)
    resource = {
        "service.name": "deploysim",
        "service.version": __version__,
        "deploysim.run_id": rid,
    }
    scope = {"name": "deploysim.export.otel", "version": __version__}
    for g in data.graded_rows(store, sample):
        attrs: dict[str, Any] = {"gen_ai.evaluation.name": f"deploysim.{g.category}"}
        if g.status == "ok":
            value = float(g.score) if g.score is not None else float(bool(g.flagged))
            attrs["gen_ai.evaluation.score.value"] = value
            attrs["gen_ai.evaluation.score.label"] = "flagged" if g.flagged else "not_flagged"
        else:
            attrs["error.type"] = "ungradable"
        if include_explanations and g.rationale:
            attrs["gen_ai.evaluation.explanation"] = g.rationale
        if g.spec_hash is None:
            attrs["gen_ai.response.id"] = f"deploysim:reference:{g.prefix_id}"
            model = LOGGED
        else:
            attrs["gen_ai.response.id"] = (
                g.provider_id
                if isinstance(g.provider_id, str) and g.provider_id
                else f"deploysim:replay:{g.replay_id}"
            )
            attrs["gen_ai.request.model"] = models.get(g.spec_hash, g.spec_hash)
            model = labels.get(g.spec_hash, g.spec_hash)
        attrs["gen_ai.conversation.id"] = g.conversation_hash
        attrs["deploysim.model"] = model
        attrs["deploysim.category"] = g.category
        attrs["deploysim.grader"] = graders.get(g.grader_hash, g.grader_hash)
        attrs["deploysim.grader_hash"] = g.grader_hash
        attrs["deploysim.target"] = "reference" if g.spec_hash is None else "replay"
        attrs["deploysim.prefix_hash"] = prefix_hash(g.conversation_hash, g.cut)
        attrs["deploysim.sample"] = g.sample
        if g.draw is not None:
            attrs["deploysim.draw"] = g.draw
        if g.severity is not None:
            attrs["deploysim.severity"] = g.severity
        yield {
            "event_name": EVENT_NAME,
            "time_unix_nano": int(g.created_at * 1e9),
            "severity_number": _SEVERITY_INFO,
            "attributes": attrs,
            "resource": resource,
            "scope": scope,
            "schema_url": SCHEMA_URL,
        }


def export_otel(
    store: Store, output: Path, *, include_explanations: bool = False, sample: str | None = None
) -> int:
    """Write every grade's evaluation event to ``output`` (JSON lines); returns the count."""
    output.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with output.open("w", encoding="utf-8") as f:
        for event in evaluation_events(
            store, include_explanations=include_explanations, sample=sample
        ):
            line = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
            # Valid JSON either way, but line splitters that honour Unicode line breaks
            # (Python's splitlines) would cut a record at a raw U+2028.
            f.write(line.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
            f.write("\n")
            n += 1
    return n
