"""The one exception tree: every error deploysim raises on purpose is a DeploysimError."""

from __future__ import annotations

import importlib
import inspect
import sys
import tomllib
from pathlib import Path

import pytest

from deploysim import errors
from deploysim.errors import DeploysimError, IncompleteRunError, ModelError, UsageError
from deploysim.models import EXTRAS, PROVIDERS, get_model

ROOT = Path(__file__).resolve().parents[1]


def test_every_error_class_sits_in_the_one_tree() -> None:
    classes = [
        c for _, c in inspect.getmembers(errors, inspect.isclass) if c.__module__ == errors.__name__
    ]
    assert {c.__name__ for c in classes} >= {"ModelError", "IncompleteRunError", "UsageError"}
    for cls in classes:
        assert issubclass(cls, DeploysimError), cls
        # The tree in the module docstring names every class.
        assert cls.__name__ in (errors.__doc__ or ""), cls


def test_model_error_is_importable_where_it_used_to_live() -> None:
    from deploysim.models import ModelError as from_models
    from deploysim.models.base import ModelError as from_base

    assert from_models is from_base is ModelError
    e = ModelError("rate_limit", "slow down", retryable=True, retry_after=2.0)
    assert isinstance(e, DeploysimError)
    assert (e.kind, e.retryable, e.retry_after, str(e)) == ("rate_limit", True, 2.0, "slow down")


@pytest.mark.ray
def test_incomplete_run_error_is_importable_from_the_ray_executor() -> None:
    from deploysim.execute.ray_executor import IncompleteRunError as from_ray

    assert from_ray is IncompleteRunError


def test_install_hints_name_extras_that_exist() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    extras = set(pyproject["project"]["optional-dependencies"])
    assert set(EXTRAS) <= set(PROVIDERS)
    assert set(EXTRAS.values()) <= extras


def test_a_provider_whose_package_is_missing_names_its_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = PROVIDERS["llamacpp"][0]
    real = importlib.import_module

    def missing(name: str, package: str | None = None) -> object:
        if name == module:
            raise ModuleNotFoundError(f"No module named {'llama_cpp'!r}", name="llama_cpp")
        return real(name, package)

    monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setattr(importlib, "import_module", missing)
    with pytest.raises(UsageError, match=r"'llama_cpp'.*pip install 'deploysim\[local\]'"):
        get_model("llamacpp/smollm2-135m")
