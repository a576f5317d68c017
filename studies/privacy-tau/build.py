"""A second labelled source for the PII detector, built from real agent logs (issue #21).

tau-bench's airline trajectories (``shared/data/agentic``, tasks 0-24, four trials each) hold
fake customer records in their tool results: names, addresses, e-mails, dates of birth, user,
reservation and payment ids. The customer (a simulated user) and the agent write those values in
their messages. Every exact occurrence of a record's value in a user or assistant message is a
labelled span, so the messages become span-labelled texts in presidio-research's JSON format,
with the task id as ``template_id``: ``deploysim privacy eval FILE --part dev|test`` splits them
by the task's parity (even: dev, odd: test), so one task's trials never straddle the parts.

Labels are what the records say, not what a person would mark: a value the text writes another
way ("April 5th" for a date of birth) is not labelled, and a name or place the text holds that no
record lists (a friend the customer mentions) is not either, so character precision here is a
lower bound. Flight numbers, airports and cabin classes are public or no identifier, and the
customers' home towns are the cities they fly between (public places in these texts): not
labelled.

    .venv/bin/python studies/privacy-tau/build.py /tmp/tau-labelled.json
    .venv/bin/deploysim privacy eval /tmp/tau-labelled.json --part test --json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

SHARED = Path(__file__).resolve().parents[3] / "shared"
DATA = SHARED / "data/agentic/tau-bench-airline-gpt4o.tasks00-24.json"

# The record fields that are personal data, by label (presidio-research's label names where it
# has one).
_FIELDS = {
    "first_name": "PERSON",
    "last_name": "PERSON",
    "address1": "STREET_ADDRESS",
    "address2": "STREET_ADDRESS",
    "zip": "ZIP_CODE",
    "email": "EMAIL_ADDRESS",
    "dob": "DATE_TIME",
    "user_id": "ACCOUNT_ID",
    "reservation_id": "ACCOUNT_ID",
    "payment_id": "ACCOUNT_ID",
    "id": "ACCOUNT_ID",
}


def _walk(value: Any, out: list[tuple[str, str]], key: str = "") -> None:
    """Every (label, value) of a JSON value's personal fields, full names too."""
    if isinstance(value, dict):
        first, last = value.get("first_name"), value.get("last_name")
        if isinstance(first, str) and isinstance(last, str):
            out.append(("PERSON", f"{first} {last}"))
        for k, v in value.items():
            if k == "payment_methods" and isinstance(v, dict):
                out.extend(("ACCOUNT_ID", pid) for pid in v)  # ids are the keys
            _walk(v, out, k)
    elif isinstance(value, list):
        for v in value:
            _walk(v, out, key)
    elif isinstance(value, str) and key in _FIELDS and len(value) >= 2:
        out.append((_FIELDS[key], value))
        if key == "dob":
            d = dt.date.fromisoformat(value)
            for fmt in (f"%B {d.day}, %Y", f"{d.month}/{d.day}/%Y", "%m/%d/%Y"):
                out.append(("DATE_TIME", d.strftime(fmt)))


def _records(traj: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The personal values of one trajectory's tool results and tool-call arguments."""
    out: list[tuple[str, str]] = []
    for m in traj:
        texts = [m["content"]] if m.get("role") == "tool" else []
        texts += [tc["function"]["arguments"] for tc in m.get("tool_calls") or []]
        for t in texts:
            try:
                _walk(json.loads(t), out)
            except (TypeError, ValueError):
                continue
    return sorted(set(out), key=lambda lv: -len(lv[1]))  # the longest value first


def label(traj: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Each user or assistant message of a trajectory with its labelled spans."""
    values = _records(traj)
    out = []
    for m in traj:
        text = m.get("content")
        if m.get("role") not in ("user", "assistant") or not isinstance(text, str) or not text:
            continue
        spans: list[dict[str, Any]] = []
        taken = [False] * len(text)
        for etype, value in values:
            for hit in re.finditer(rf"(?<![\w@.]){re.escape(value)}(?![\w@]|\.\w)", text):
                s, e = hit.span()
                if any(taken[s:e]):
                    continue  # inside a longer value ("Mia" of "Mia Li")
                taken[s:e] = [True] * (e - s)
                spans.append(
                    {"entity_type": etype, "entity_value": value, "start_position": s,
                     "end_position": e}
                )  # fmt: skip
        out.append((text, sorted(spans, key=lambda sp: sp["start_position"])))
    return out


def build(path: Path = DATA) -> list[dict[str, Any]]:
    """The labelled records of every trajectory of the file."""
    records = []
    for run in json.loads(path.read_text(encoding="utf-8")):
        for text, spans in label(run["traj"]):
            records.append({"full_text": text, "spans": spans, "template_id": int(run["task_id"])})
    return records


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="Where to write the labelled JSON (not in the repo).")
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args()
    records = build(args.data)
    args.out.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    spans = [s["entity_type"] for r in records for s in r["spans"]]
    counts = {t: spans.count(t) for t in sorted(set(spans))}
    print(f"{len(records)} texts, {len(spans)} labelled spans {counts} -> {args.out}")


if __name__ == "__main__":
    main()
