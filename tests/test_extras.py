"""The optional extras' markers: registered, and DEPLOYSIM_REQUIRE_EXTRAS=1 turns a skip into a
failure (``.ci/run`` sets it, so CI cannot pass by skipping)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from tests import extras

pytest_plugins = ["pytester"]

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
NOWHERE = extras.Extra(("deploysim_no_such_module",), "pip install nothing")


def _markers() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    lines = config["tool"]["pytest"]["ini_options"]["markers"]
    return {line.split(":", 1)[0] for line in lines}


def test_every_extra_is_a_registered_marker() -> None:
    assert set(extras.EXTRAS) == _markers() - {"slow"}


def test_ci_requires_the_extras() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert f"export {extras.REQUIRE_ENV}=1" in ci


def test_a_missing_extra_skips_or_fails_when_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(extras.EXTRAS, "ray", NOWHERE)
    reason = extras.missing("ray")
    assert reason is not None and "deploysim_no_such_module" in reason
    monkeypatch.setenv(extras.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="DEPLOYSIM_REQUIRE_EXTRAS=1 but 'ray'"):
        extras.require("ray")
    monkeypatch.delenv(extras.REQUIRE_ENV)
    with pytest.raises(pytest.skip.Exception, match="pip install nothing"):
        extras.require("ray")


@pytest.mark.parametrize(("required", "outcome"), [("", "skipped"), ("1", "errors")])
def test_a_marked_test_of_a_missing_extra_fails_only_when_required(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, required: str, outcome: str
) -> None:
    """End to end: the conftest hook reads the marker, in a pytest run of its own."""
    monkeypatch.setitem(extras.EXTRAS, "ray", NOWHERE)
    monkeypatch.setenv(extras.REQUIRE_ENV, required)
    pytester.makeini("[pytest]\nmarkers =\n    ray: a fake extra\n")
    pytester.makeconftest("from tests.conftest import pytest_runtest_setup  # noqa: F401\n")
    pytester.makepyfile(
        "import pytest\n\n@pytest.mark.ray\ndef test_needs_it():\n    pass\n\n"
        "def test_needs_nothing():\n    pass\n"
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    # Failed in setup, before any fixture: pytest counts it among the errors.
    result.assert_outcomes(passed=1, **{outcome: 1})


def test_no_test_skips_for_a_missing_package_but_through_the_markers() -> None:
    """``importorskip`` or a ``find_spec`` condition would skip where the switch cannot see."""
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted(TESTS.rglob("*.py"))
        if path.name not in ("extras.py", "test_extras.py")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\bimportorskip\(|\bfind_spec\(", line)
    ]
    assert not offenders, f"use the extras' markers (tests/extras.py) instead: {offenders}"
