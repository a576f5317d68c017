"""The consistency discriminator on hand-written conversations, its controls and its CLI."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deploysim.cli import app
from deploysim.errors import UsageError
from deploysim.ingest import ingest_file
from deploysim.realism import NO_FORMAT, RealismSettings, broken, run_controls
from deploysim.realism import consistency as C
from deploysim.replay import create_sample
from deploysim.sampling import SamplingSpec
from deploysim.schema import Conversation, Message, ToolCall
from deploysim.store import Store
from tests.conftest import TAU

SYSTEM = Message(role="system", content="You help members of the Lindenfeld lending library.")


def _book(book_id: str, title: str, due: str) -> str:
    return json.dumps({"book_id": book_id, "title": title, "due": due, "renewals": 1})


def _lookup(book_id: str, title: str, due: str, call_id: str = "c1") -> tuple[Message, ...]:
    """A member asks about a book; the assistant looks it up and reports the due date."""
    return (
        Message(
            role="assistant",
            content="Let me look that loan up.",
            tool_calls=(ToolCall(id=call_id, function="get_loan", arguments={"book_id": book_id}),),
        ),
        Message(
            role="tool",
            tool_call_id=call_id,
            function="get_loan",
            content=_book(book_id, title, due),
        ),
        Message(role="assistant", content=f"Your copy of {title} ({book_id}) is due on {due}."),
    )


def _prefix(book_id: str) -> tuple[Message, ...]:
    return (
        SYSTEM,
        Message(role="user", content=f"When is my loan {book_id} due back?"),
    )


LOANS = [
    ("QX-1001", "Tidal Clocks", "2031-04-02"),
    ("QX-2002", "The Copper Orchard", "2031-05-19"),
    ("QX-3003", "Small Harbours", "2031-06-30"),
    ("QX-4004", "A Field of Lanterns", "2031-07-11"),
]


def _profiles() -> C.Profiles:
    convs = [Conversation(messages=(*_prefix(b), *_lookup(b, t, d))) for b, t, d in LOANS]
    return C.build_profiles(convs)


def test_profiles_learn_each_tools_format_and_echoed_arguments() -> None:
    profiles = _profiles()
    loan = profiles.tools["get_loan"]
    assert loan.shape == ("object", frozenset({"book_id", "title", "due", "renewals"}))
    assert loan.echoed == frozenset({"book_id"})
    assert len(profiles.results["get_loan"]) == len(LOANS)


def test_the_logged_continuation_beats_each_broken_copy() -> None:
    profiles = _profiles()
    book, title, due = "QX-5005", "Paper Comets", "2031-08-08"
    prefix, logged = _prefix(book), _lookup(book, title, due)
    rng = random.Random(0)
    for kind in ("shuffled", "no_format", "shouting"):
        copy = broken(logged, kind, rng)
        assert copy is not None
        assert C.compare(prefix, logged, copy, profiles, "all") == 0.0, kind
    # Right format, wrong world: another loan's record answers this call.
    elsewhere = C.other_world(logged, "this-conversation", profiles, 3)
    assert elsewhere is not None and elsewhere[1].text != logged[1].text
    assert C.compare(prefix, logged, elsewhere, profiles, "all") == 0.0
    assert C.compare(prefix, logged, elsewhere, profiles, "tools") == 0.0


def test_equal_or_empty_sides_decide_nothing() -> None:
    profiles = _profiles()
    prefix, logged = _prefix("QX-1001"), _lookup(*LOANS[0])
    assert C.compare(prefix, logged, logged, profiles, "all") == 0.5
    # The tools-only view cannot see the assistant's style, and a text-only reply has no
    # tool result to score.
    shouting = broken(logged, "shouting", random.Random(0))
    assert shouting is not None
    assert C.compare(prefix, logged, shouting, profiles, "tools") == 0.5
    text_only = (Message(role="assistant", content="It is due soon."),)
    assert C.compare(prefix, logged, text_only, profiles, "tools") is None


def test_a_result_that_does_not_echo_its_call_scores_lower() -> None:
    profiles = _profiles()
    prefix = _prefix("QX-6006")
    real = _lookup("QX-6006", "Quiet Engines", "2031-09-09")
    # The simulated record names another book than the one asked for.
    wrong = _lookup("QX-6006", "Quiet Engines", "2031-09-09")
    wrong = (
        wrong[0],
        wrong[1].model_copy(update={"content": _book("QX-7777", "Quiet Engines", "2031-09-09")}),
        wrong[2],
    )
    assert C.score(prefix, wrong, profiles, "tools") < C.score(prefix, real, profiles, "tools")  # type: ignore[operator]


def test_tokens_normalise_amounts_and_keep_ids_whole() -> None:
    assert C._tokens("paid 1,250.50 for QX-1001") >= {"1250.5", "qx-1001"}
    assert "1234567" in C._tokens("member 1234567")
    assert C._values('{"due": "2031-01-02", "ok": true}') == {"2031-01-02"}


def test_identity_names_version_and_view() -> None:
    a, b = C.identity("all"), C.identity("tools")
    assert a["version"] == b["version"] == C.VERSION
    assert (a["name"], b["name"]) == ("consistency", "consistency-tools")
    assert a["hash"] != b["hash"]


def test_free_text_results_are_compared_with_the_recorded_texts() -> None:
    recorded = ["Noted for the reading club.", "Noted for the archive."]
    assert C._text_format("Noted for the front desk.", recorded) > C._text_format(
        NO_FORMAT, recorded
    )
    empty = ["", ""]
    assert C._text_format("", empty) == 1.0 and C._text_format(NO_FORMAT, empty) == 0.0


def test_an_error_is_judged_against_the_recorded_errors() -> None:
    """consistency-2: a failed simulation no longer passes for a real tool error."""
    from deploysim.schema import ToolCall

    call = ToolCall(id="c", function="find_booking", arguments={"booking": "QX71"})
    real = Message(
        role="tool", tool_call_id="c", function="find_booking", content="Error: booking not found"
    )
    fake = real.model_copy(update={"content": "Error: tool simulator failed (no format fitted)"})
    errors = ("Error: booking not found", "Error: booking not found", "Error: seat not available")
    profiles = C.Profiles(errors=errors)
    assert C._tool_score(call, real, profiles) == 1.0  # its repeats elsewhere still count
    assert C._tool_score(call, fake, profiles) < 0.7
    # With no recorded error to compare with, an error is judged by its lead (consistency-1).
    assert C._tool_score(call, fake, C.Profiles()) == 1.0


def _tau_store(tmp_path: Path, size: int) -> Store:
    st = Store(tmp_path / "s.db")
    ingest_file(TAU, st)
    create_sample(st, "default", SamplingSpec(size=size, seed=3, mode="turn"))
    return st


def test_consistency_catches_controls_on_tau_bench(tmp_path: Path) -> None:
    with _tau_store(tmp_path, 30) as st:
        res = run_controls(st, discriminator="consistency")
    assert res["discriminator"]["version"] == C.VERSION
    assert "get_reservation_details" in res["discriminator"]["profiles"]
    assert res["overall_strict"]["n"] >= 40
    # Measured far above (docs/design/awareness-discovery.md); the margin is for the sample.
    assert res["overall_strict"]["catch_rate"] >= 0.85


def test_cli_runs_the_consistency_controls_and_refuses_a_judge_without_spec(
    tmp_path: Path,
) -> None:
    _tau_store(tmp_path, 6).close()
    args = ["realism", "-s", str(tmp_path / "s.db"), "-m", "scripted/constant"]
    got = CliRunner().invoke(app, [*args, "--discriminator", "consistency", "--controls", "--json"])
    assert got.exit_code == 0, got.output
    res = json.loads(got.output)
    assert res["discriminator"]["name"] == "consistency" and res["overall_strict"]["n"] > 0
    refused = CliRunner().invoke(app, args)
    assert isinstance(refused.exception, UsageError) and "--judge" in str(refused.exception)
    with Store(tmp_path / "s.db") as st, pytest.raises(UsageError, match="writer"):
        run_controls(st, discriminator="consistency", kinds=("other_model",))


@pytest.mark.local
@pytest.mark.smollm2
def test_other_model_controls_come_from_a_real_local_writer(tmp_path: Path) -> None:
    with _tau_store(tmp_path, 4) as st:
        res = run_controls(
            st,
            discriminator="consistency",
            kinds=(),
            writer="llamacpp/smollm2-135m?n_threads=1",
            settings=RealismSettings(limit=2),
        )
    assert res["writer"] == "llamacpp/smollm2-135m?n_threads=1"
    assert res["per_kind_strict"]["other_model"]["n"] >= 1
