"""Test helpers shipped with deploysim, for its own tests, users' tests and benchmarks.

:class:`OpenAIServer` is a loopback OpenAI-compatible Chat Completions server with a fixed
latency, deterministic answers and fault injection; :class:`LoopbackServer` its base, for other
fake HTTP services. Both need ``aiohttp``. ``python -m deploysim.testing.fixed_server`` is a
lean server that answers every request after exactly a fixed latency, for throughput benchmarks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deploysim.testing.openai_server import FAULT_KINDS, LoopbackServer, OpenAIServer

__all__ = ["FAULT_KINDS", "LoopbackServer", "OpenAIServer"]


def __getattr__(name: str) -> Any:
    # Imported on first use, not here: `python -m deploysim.testing.openai_server` imports this
    # package first, and a package that had already imported the module makes runpy warn.
    if name in __all__:
        from deploysim.testing import openai_server

        return getattr(openai_server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
