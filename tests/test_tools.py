"""The tool layer and agent loop on real tau-bench trajectories."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

import pytest

from deploysim.ingest import ingest_file
from deploysim.models import GenerateConfig, Generation, Model, ModelSpec
from deploysim.replay import ReplaySpec, create_sample, run_replay
from deploysim.sampling import SamplingSpec
from deploysim.schema import Message, ToolCall, ToolDef
from deploysim.store import Store
from deploysim.tools import (
    ToolDatabase,
    ToolLayer,
    ToolPolicy,
    matches_shape,
    render_state,
    result_shape,
)
from tests.conftest import TAU, tau_user


@pytest.fixture(scope="module")
def db() -> ToolDatabase:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "s.db") as st:
        ingest_file(TAU, st)
        database = ToolDatabase()
        for conv in st.conversations(with_tool_calls=True):
            database.add(conv)
    return database


def test_database_counts_calls_errors_and_formats(db: ToolDatabase) -> None:
    stats = db.stats()
    # Counted independently from the raw file: 38 book_reservation results, 23 of them errors.
    assert stats["book_reservation"]["calls"] == 38
    assert stats["book_reservation"]["error_rate"] == pytest.approx(23 / 38)
    assert stats["get_user_details"]["error_rate"] == 0 and stats["get_user_details"]["json"]
    kind, keys = result_shape(db.examples["get_user_details"])
    assert kind == "object" and {"name", "email", "payment_methods"} <= keys
    assert result_shape(db.examples["calculate"])[0] == "number"
    assert result_shape(db.examples["think"])[0] == "text"


def test_matches_shape() -> None:
    shape = ("object", frozenset({"a", "b"}))
    assert matches_shape('```json\n{"a": 1, "b": 2, "c": 3}\n```', shape) is not None
    assert matches_shape('{"a": 1}', shape) is None
    assert matches_shape("not json", shape) is None
    assert matches_shape("42.0", ("number", frozenset())) == "42.0"


def _resolve(layer: ToolLayer, call: ToolCall, salt: str = "s") -> object:
    return asyncio.run(
        layer.resolve(call, offered=(), conversation=None, continuation="", salt=salt)
    )


def test_resolution_order(db: ToolDatabase) -> None:
    layer = ToolLayer(db, ToolPolicy(mode="replay"))
    recorded = ToolCall(id="1", function="get_user_details", arguments={"user_id": tau_user()[0]})
    r = _resolve(layer, recorded)
    assert r.source == "recorded" and tau_user()[1] in r.content  # type: ignore[attr-defined]
    unknown = ToolCall(id="2", function="launch_rocket", arguments={})
    assert _resolve(layer, unknown).source == "unknown_tool"  # type: ignore[attr-defined]
    bad = ToolCall(id="3", function="get_user_details", raw_arguments="{oops", parse_error="x")
    assert _resolve(layer, bad).source == "malformed"  # type: ignore[attr-defined]
    unrecorded = ToolCall(id="4", function="get_user_details", arguments={"user_id": "nobody_1"})
    r = _resolve(layer, unrecorded)  # no simulator: an honest tool error
    assert r.source == "simulator_error" and r.error  # type: ignore[attr-defined]


def test_failure_injection_follows_logged_error_rates(db: ToolDatabase) -> None:
    layer = ToolLayer(db, ToolPolicy(mode="replay", simulator="scripted/constant?text=%7B%7D"))
    call = ToolCall(id="1", function="book_reservation", arguments={"user_id": "x"})
    sources = [_resolve(layer, call, salt=str(i)).source for i in range(400)]  # type: ignore[attr-defined]
    injected = sources.count("injected") / len(sources)
    assert injected == pytest.approx(23 / 38, abs=0.08)
    # Tools that never failed in the logs are never failed by injection.
    never = ToolCall(id="2", function="get_user_details", arguments={"user_id": "nobody"})
    assert all(_resolve(layer, never, str(i)).source != "injected" for i in range(50))  # type: ignore[attr-defined]
    off = ToolLayer(db, ToolPolicy(mode="replay", inject_failures=False))
    assert all(_resolve(off, call, str(i)).source != "injected" for i in range(50))  # type: ignore[attr-defined]


def test_simulator_output_must_match_recorded_format(db: ToolDatabase) -> None:
    keys = result_shape(db.examples["get_user_details"])[1]
    good = json.dumps({k: "x" for k in keys})
    call = ToolCall(id="1", function="get_user_details", arguments={"user_id": "nobody_2"})
    ok = ToolLayer(db, ToolPolicy(mode="replay", simulator=f"scripted/constant?text={quote(good)}"))
    assert _resolve(ok, call).source == "simulated"  # type: ignore[attr-defined]
    wrong = ToolLayer(db, ToolPolicy(mode="replay", simulator="scripted/constant?text=hello"))
    r = _resolve(wrong, call)
    assert r.source == "simulator_error" and "format" in r.content  # type: ignore[attr-defined]


def _agentic_store(tmp_path: Path) -> Store:
    st = Store(tmp_path / "s.db")
    ingest_file(TAU, st)
    create_sample(st, "default", SamplingSpec(size=6, seed=3))
    return st


def _responses(st: Store) -> list[tuple[str, list[Message]]]:
    return [
        (finish, [Message.model_validate(m) for m in json.loads(body)])
        for finish, body in st.db.execute(
            "SELECT finish_reason, response FROM replays WHERE status = 'ok'"
        )
    ]


def test_agent_loop_answers_calls_and_ends_the_turn(tmp_path: Path) -> None:
    st = _agentic_store(tmp_path)
    args = quote(json.dumps({"user_id": tau_user()[0]}))
    spec = ReplaySpec(
        model=f"scripted/call?tool=get_user_details&args={args}&times=2",
        tools=ToolPolicy(mode="replay"),
    )
    assert run_replay(st, spec).ok == 6
    for finish, messages in _responses(st):
        assert [m.role for m in messages] == ["assistant", "tool", "assistant", "tool", "assistant"]
        assert finish == "stop" and messages[-1].text.startswith("Done:")
        assert {m.metadata["tool_source"] for m in messages if m.role == "tool"} == {"recorded"}


def test_step_limit_ends_a_looping_agent(tmp_path: Path) -> None:
    st = _agentic_store(tmp_path)
    spec = ReplaySpec(
        model="scripted/call?tool=think&args=%7B%7D&times=99",
        tools=ToolPolicy(mode="replay", max_steps=3),
    )
    run_replay(st, spec)
    for finish, messages in _responses(st):
        assert finish == "step_limit"
        assert sum(m.role == "assistant" for m in messages) == 3


def test_candidate_mistakes_are_stored_as_data(tmp_path: Path) -> None:
    st = _agentic_store(tmp_path)
    for tool, args in (("launch_rocket", "%7B%7D"), ("get_user_details", "%7Bbroken")):
        spec = ReplaySpec(
            model=f"scripted/call?tool={tool}&args={args}", tools=ToolPolicy(mode="replay")
        )
        assert run_replay(st, spec).ok == 6
    sources = {
        m.metadata["tool_source"] for _, ms in _responses(st) for m in ms if m.role == "tool"
    }
    assert sources == {"unknown_tool", "malformed"}


def test_without_tool_mode_the_turn_stops_at_the_call(tmp_path: Path) -> None:
    st = _agentic_store(tmp_path)
    run_replay(st, ReplaySpec(model="scripted/call?tool=think&args=%7B%7D"))
    for finish, messages in _responses(st):
        assert finish == "tool_calls" and len(messages) == 1 and messages[0].tool_calls


def test_tools_the_logs_call_but_never_define_are_offered_as_inferred(db: ToolDatabase) -> None:
    offered = {t.name: t for t in db.offered()}
    assert set(offered) == set(db.calls)  # tau-bench trajectories carry no definitions
    user = offered["get_user_details"].parameters
    assert user == {
        "type": "object",
        "properties": {"user_id": {"type": "string"}},
        "required": ["user_id"],
    }
    send = offered["send_certificate"].parameters
    assert send is not None and send["properties"]["amount"] == {"type": "integer"}
    # A logged definition wins over an inferred one.
    defined = ToolDatabase(definitions={"calculate": offered["think"]}, calls={"calculate": 1})
    assert defined.offered() == (offered["think"],)


def test_simulator_sees_whole_examples_and_has_room_to_answer() -> None:
    from deploysim.tools import _output_budget, _shown_examples

    long, short = "[" + "1," * 2000 + "1]", '{"a": 1}'
    assert _shown_examples([long, short, short + " "]) == [short, short + " "]  # shortest first
    assert _shown_examples([long]) == [long[:3000]]  # at least one, clipped past 3,000
    assert _output_budget([short], "{}") == 512
    assert _output_budget([short], "x" * 2000) == 1004  # outputs echo long arguments
    assert _output_budget([long], "x" * 9000) == 2048


# --- state consistency: ids a call names must exist in the trajectory's state ---------------


def test_id_arguments_are_recognised_by_name_and_value() -> None:
    from deploysim.tool_state import id_arguments

    args = {
        "orderId": "q7",  # camelCase name
        "items": [{"sku_code": "box"}, {"sku_code": "lid"}],  # nested, lists keep their key
        "ticket": "TK-4410",  # no id name, an id-like value
        "account_number": 88120,  # an integer id
        "note": "call me at 5 pm",  # free text
        "day": "2031-02-03",  # a date is not an id
        "count": 3,
        "email": "kim@example.org",
    }
    found = [(a.name, a.value) for a in id_arguments(args)]
    assert found == [
        ("orderId", "q7"),
        ("sku_code", "box"),
        ("sku_code", "lid"),
        ("ticket", "TK-4410"),
        ("account_number", "88120"),
    ]


def _conversation() -> list[Message]:
    return [
        Message(role="system", content="You help the customers of a bike shop."),
        Message(role="user", content="Hi, my customer id is ola_n_17."),
        Message(
            role="assistant",
            content="Looking at order ZZ900 for you.",  # the assistant's word is no evidence
            tool_calls=(ToolCall(id="1", function="find_customer", arguments={"id": "ola_n_17"}),),
        ),
        Message(
            role="tool",
            tool_call_id="1",
            function="find_customer",
            content=json.dumps({"name": "Ola", "orders": ["RB31X", "RB32Y"]}),
        ),
        Message(
            role="tool", function="get_order", content="Oops: order QQ7 not found", error="404"
        ),
    ]


def test_state_holds_user_and_tool_ids_only() -> None:
    from deploysim.tool_state import State

    state = State.of(_conversation())
    assert state.unknown({"customer_id": "ola_n_17", "order_id": "rb31x"}) is None  # any case
    assert state.unknown({"order_id": "ZZ900"}) is not None  # only the assistant said it
    assert state.unknown({"order_id": "QQ7"}) is not None  # only a failed result named it
    missing = state.unknown({"order_id": "RB32Y", "coupon_code": "SPRING50"})
    assert missing is not None and (missing.name, missing.value) == ("coupon_code", "SPRING50")


def test_not_found_errors_take_the_logged_shape() -> None:
    from deploysim.tool_state import IdArgument, not_found_shape

    mine = ["Oops: order QQ7 not found", "Oops: order QQ8 not found", "Oops: shop not found"]
    corpus = ["Error: customer not found"]
    shape = not_found_shape(mine, corpus)  # the trajectory's own errors win
    assert shape.render(IdArgument("order_id", "AB1")) == "Oops: order AB1 not found"
    assert shape.render(IdArgument("customer_id", "x_2")) == "Oops: customer x_2 not found"
    assert not_found_shape([], corpus).render(IdArgument("cart_id", "c9")) == (
        "Error: cart not found"
    )
    # A logged name that extends the argument's is the tool's own wording.
    long = not_found_shape(["Error: gift card gc_1 not found"])
    assert long.render(IdArgument("gift_id", "gc_2")) == "Error: gift card gc_2 not found"
    as_json = not_found_shape(['{"status": 404, "detail": "item it_5 not found"}'])
    assert json.loads(as_json.render(IdArgument("item_id", "it_9"))) == {
        "status": 404,
        "detail": "item it_9 not found",
    }
    generic = not_found_shape(["Error: payment declined"], [])
    assert generic.render(IdArgument("seat_no", "12C")) == "Error: seat 12C not found"


def _ask(layer: ToolLayer, call: ToolCall, history: list[Message]) -> object:
    return asyncio.run(
        layer.resolve(
            call, offered=(), conversation=None, continuation="", salt="s", history=history
        )
    )


def test_made_up_ids_get_the_logged_error_not_a_simulated_success(db: ToolDatabase) -> None:
    keys = result_shape(db.examples["cancel_reservation"])[1]
    success = _Recorder(json.dumps({k: "ok" for k in keys}))  # a plausible success
    policy = ToolPolicy(mode="replay", inject_failures=False)
    layer = ToolLayer(db, policy, simulator=success)
    history = _conversation()[:2]
    made_up = ToolCall(
        id="9", function="cancel_reservation", arguments={"reservation_id": "1234567890"}
    )
    r = _ask(layer, made_up, history)
    # tau-bench's logged not-found errors name the thing and its id after "Error: ".
    assert r.source == "unknown_id"  # type: ignore[attr-defined]
    assert r.content == "Error: reservation 1234567890 not found" == r.error  # type: ignore[attr-defined]
    # The same call once a tool result has shown the id goes on to the simulator.
    shown = Message(role="tool", function="find_customer", content='{"orders": ["1234567890"]}')
    assert _ask(layer, made_up, [*history, shown]).source == "simulated"  # type: ignore[attr-defined]
    off = ToolLayer(db, policy.model_copy(update={"state": "off"}), simulator=success)
    assert _ask(off, made_up, history).source == "simulated"  # type: ignore[attr-defined]


def test_state_check_refuses_no_real_successful_tau_call() -> None:
    from deploysim.tool_state import State, id_arguments, is_failure

    with Store(Path(tempfile_dir()) / "s.db") as st:
        ingest_file(TAU, st)
        convs = list(st.conversations(with_tool_calls=True))
    checked = refused = with_ids = 0
    for conv in convs:
        for i, m in enumerate(conv.messages):
            for call in m.tool_calls:
                result = next((r for r in conv.messages[i:] if r.tool_call_id == call.id), None)
                if result is None or is_failure(result):
                    continue
                checked += 1
                with_ids += any(id_arguments(call.arguments))
                refused += State.of(conv.messages[:i]).unknown(call.arguments) is not None
    # Counted by benchmarks/simulator.py: 558 successful calls, none refused.
    assert checked > 400 and with_ids > 200 and refused <= checked * 0.01


def tempfile_dir() -> str:
    import tempfile

    return tempfile.mkdtemp()


class _Recorder(Model):
    """A simulator that remembers its prompts and answers with a fixed JSON object."""

    def __init__(self, answer: str) -> None:
        super().__init__(ModelSpec.parse("scripted/constant"))
        self.answer = answer
        self.prompts: list[str] = []

    async def generate(
        self, messages: Sequence[Message], tools: Sequence[ToolDef], config: GenerateConfig
    ) -> Generation:
        self.prompts.append(messages[-1].text)
        return Generation(text=self.answer, finish_reason="stop")


def test_simulator_sees_the_state_and_the_continuation_unless_hidden(db: ToolDatabase) -> None:
    keys = result_shape(db.examples["get_user_details"])[1]
    sim = _Recorder(json.dumps({k: "x" for k in keys}))
    call = ToolCall(id="1", function="get_user_details", arguments={"user_id": "ola_n_17"})
    history = _conversation()
    for show in (True, False):
        layer = ToolLayer(db, ToolPolicy(mode="replay", show_continuation=show), simulator=sim)
        r = asyncio.run(
            layer.resolve(
                call,
                offered=(),
                conversation=None,
                continuation="TOOL get_user_details: the logged answer",
                salt="s",
                history=history,
            )
        )
        assert r.source == "simulated"
        assert '"RB31X"' in sim.prompts[-1]  # an earlier successful result: the state
        assert "QQ7" not in sim.prompts[-1]  # failed results are not state
        assert ("the logged answer" in sim.prompts[-1]) is show


def test_the_state_shows_whole_results_and_marks_a_cut() -> None:
    # Records past the old 600-character clip: a cut one was copied, broken, by a small simulator.
    def record(i: int) -> str:
        return json.dumps({"order_id": f"OR{i}", "lines": [{"sku": f"S{j}"} for j in range(60)]})

    history = [
        Message(role="user", content="where are my orders?"),
        *(
            Message(role="tool", content=record(i), function="get_order", tool_call_id=str(i))
            for i in range(3)
        ),
    ]
    assert 600 < len(record(0)) < 1000
    lines = render_state(history).splitlines()
    assert len(lines) == 2  # the two newest fit whole; the oldest is left out, not cut
    assert [json.loads(line.removeprefix("get_order: "))["order_id"] for line in lines] == [
        "OR1",
        "OR2",
    ]
    (cut,) = render_state(history, budget=300).splitlines()
    assert cut.startswith('get_order: {"order_id": "OR2"') and cut.endswith("... (cut)")
