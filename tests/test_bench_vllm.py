"""benchmarks/vllm.py without vLLM: its dry run against the loopback fixed-latency server, and
its errors when vLLM is missing.

The dry run proves the plumbing the GPU run depends on: real chat prefixes ingested and
sampled, the vLLM client's prompt file holding exactly the prompts deploysim replays (each
``--draws`` times), every request answered and its tokens counted from the server's usage.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploysim.replay import load_prefix
from deploysim.store import Store
from tests.conftest import HH, OASST

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "vllm.py"


def _run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _strings(value: Any) -> Iterator[str]:
    """Every string in a decoded JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


@pytest.mark.skipif(not (HH.is_file() and OASST.is_file()), reason="shared chat data absent")
def test_dry_run_replays_the_prompts_the_vllm_client_would_send(tmp_path: Path) -> None:
    keep, out = tmp_path / "work", tmp_path / "figures.json"
    done = _run(
        "--dry-run",
        "--data",
        str(HH.parent),
        "--prompts=6",
        "--draws=2",
        "--concurrency=4",
        "--rounds=2",
        "--keep",
        str(keep),
        "--json",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(out.read_text())
    assert figures["prompts"] == 6
    assert figures["requests"] == 12
    for (deploysim,) in figures["rounds"]:
        assert deploysim["client"] == "deploysim"
        assert (deploysim["ok"], deploysim["failed"]) == (12, 0)
        # The fixed server reports one completion token per answer: tokens come from usage.
        assert deploysim["output_tokens"] == 12
        assert deploysim["seconds"] > 0
    assert 0 < figures["share_of_ideal"] <= 1.5
    assert any(c.startswith("deploysim replay ") for c in figures["commands"])

    # The vLLM client's dataset is the replayed sample: the same prompts, each --draws times.
    lines = (keep / "prompts.jsonl").read_text(encoding="utf-8").splitlines()
    dataset = [json.loads(line)["prompt"] for line in lines]
    assert len(dataset) == 12
    assert all(dataset.count(p) == 2 for p in dataset)
    with Store(keep / "bench.db") as store:
        for sample in ("round-1", "round-2"):
            rows = store.db.execute(
                "SELECT p.id FROM prefixes p JOIN samples s ON s.id = p.sample_id WHERE name = ?",
                (sample,),
            ).fetchall()
            sent = [load_prefix(store, r[0]).messages for r in rows]
            assert all(len(m) == 1 and m[0].role == "user" for m in sent)
            assert sorted(m[0].text for m in sent) == sorted(set(dataset))
        replays = store.db.execute("SELECT COUNT(*) FROM replays").fetchone()[0]
        assert replays == 24  # 2 rounds x 6 prefixes x 2 draws
    # Real logged first turns, not made-up prompts.
    logged = "\n".join(
        s
        for f in (HH, OASST)
        for line in f.read_text(encoding="utf-8").splitlines()
        for s in _strings(json.loads(line))
    )
    assert all(p in logged for p in set(dataset))


def test_missing_vllm_is_a_clear_error(tmp_path: Path) -> None:
    done = _run("--model", "some/model", "--vllm", str(tmp_path / "no-vllm-here"), timeout=120)
    assert done.returncode == 2
    assert "vllm is not installed" in done.stderr
    assert "--server fixed" in done.stderr


def test_the_vllm_server_needs_a_model() -> None:
    done = _run("--server", "vllm", timeout=120)
    assert done.returncode == 2
    assert "--model is required" in done.stderr


# A stand-in for the `vllm` command: `serve` answers /v1/models and chat completions (3 tokens
# each) on the given port; `bench serve` checks the flags the benchmark relies on, sends every
# prompt of the dataset file and writes a result file with vLLM's keys. It proves the
# orchestration (start, readiness, both clients, the ratios), nothing about vLLM itself.
_FAKE_VLLM = """
import asyncio, json, sys, time
from aiohttp import ClientSession, web
argv = sys.argv[1:]
def opt(name):
    return argv[argv.index(name) + 1]
if argv[0] == "serve":
    async def models(request):
        return web.json_response({"data": [{"id": opt("--served-model-name")}]})
    async def chat(request):
        body = await request.json()
        assert body["messages"][-1]["role"] == "user"
        return web.json_response({"id": "x", "object": "chat.completion", "created": 0,
            "model": body["model"], "choices": [{"index": 0, "finish_reason": "length",
            "message": {"role": "assistant", "content": "a b c"}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}})
    app = web.Application()
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/chat/completions", chat)
    web.run_app(app, host=opt("--host"), port=int(opt("--port")), print=None)
elif argv[:2] == ["bench", "serve"]:
    for flag in ("--skip-chat-template", "--disable-shuffle", "--save-result"):
        assert flag in argv, flag
    assert opt("--backend") == "openai-chat" and opt("--dataset-name") == "custom"
    prompts = [json.loads(l)["prompt"] for l in open(opt("--dataset-path"))]
    assert len(prompts) == int(opt("--num-prompts"))
    url = opt("--base-url") + opt("--endpoint")
    async def main():
        async with ClientSession() as s:
            async def one(p):
                body = {"model": opt("--model"), "messages": [{"role": "user", "content": p}],
                        "max_completion_tokens": int(opt("--custom-output-len"))}
                async with s.post(url, json=body) as r:
                    return (await r.json())["usage"]["completion_tokens"]
            return await asyncio.gather(*(one(p) for p in prompts))
    t = time.perf_counter()
    tokens = asyncio.run(main())
    result = {"duration": time.perf_counter() - t, "completed": len(tokens),
              "total_output_tokens": sum(tokens)}
    with open(opt("--result-dir") + "/" + opt("--result-filename"), "w") as f:
        json.dump(result, f)
"""


@pytest.mark.skipif(not (HH.is_file() and OASST.is_file()), reason="shared chat data absent")
def test_vllm_mode_with_a_stand_in_vllm_command(tmp_path: Path) -> None:
    fake = tmp_path / "vllm"
    fake.write_text(f"#!{sys.executable}\n{_FAKE_VLLM}")
    fake.chmod(0o755)
    out = tmp_path / "figures.json"
    done = _run(
        *("--model", "some/model", "--vllm", str(fake), "--data", str(HH.parent)),
        *("--prompts=4", "--draws=2", "--concurrency=4", "--max-tokens=8", "--rounds=2"),
        *("--startup-timeout=120", "--json", str(out)),
    )
    assert done.returncode == 0, done.stderr + done.stdout
    figures = json.loads(out.read_text())
    for vllm_client, deploysim in figures["rounds"]:
        assert vllm_client["client"] == "vllm client"
        assert (vllm_client["ok"], vllm_client["output_tokens"]) == (8, 24)
        assert (deploysim["ok"], deploysim["failed"], deploysim["output_tokens"]) == (8, 0, 24)
    assert figures["ratio_requests"] > 0
    assert figures["ratio_tokens"] == pytest.approx(figures["ratio_requests"])
    commands = figures["commands"]
    assert any(" serve some/model " in c and "--served-model-name bench" in c for c in commands)
    assert any(" bench serve " in c and "--tokenizer some/model" in c for c in commands)
    assert "deploysim / vLLM client" in done.stdout
