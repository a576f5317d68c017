"""The fixed-latency benchmark server, driven as a process by the openai provider."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from deploysim.models import GenerateConfig, ModelSpec, get_model
from deploysim.schema import Message


@pytest.fixture
def server() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "deploysim.testing.fixed_server", "--latency=0.05", "--text=hi"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("serving http://127.0.0.1:"), line
    try:
        yield line.split()[1], proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_answers_each_request_after_the_latency(
    server: tuple[str, subprocess.Popen[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, proc = server
    monkeypatch.setenv("OPENAI_API_KEY", "unused")
    model = get_model(ModelSpec(provider="openai", name="bench", options={"base_url": base}))
    messages = [Message(role="user", content="hello")]

    async def many() -> list[float]:
        async def one() -> float:
            start = time.perf_counter()
            g = await model.generate(messages, (), GenerateConfig())
            assert g.text == "hi" and g.finish_reason == "stop"
            return time.perf_counter() - start

        try:
            return list(await asyncio.gather(*(one() for _ in range(20))))
        finally:
            await model.aclose()

    took = asyncio.run(many())
    assert min(took) >= 0.05
    # 20 concurrent requests overlap: all of them take about one latency, not 20.
    assert max(took) < 0.5
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=10)
    assert "served 20 requests; latency mean" in err


def test_a_chunked_body_gets_411(server: tuple[str, subprocess.Popen[str]]) -> None:
    base, _ = server
    host, port = base.removeprefix("http://").removesuffix("/v1").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 411")
