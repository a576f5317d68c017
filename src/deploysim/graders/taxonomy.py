"""The behaviour taxonomy: categories as data (``deploysim/data/taxonomy.toml``).

Users add or override categories with their own TOML file in the same format.
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from deploysim.errors import UsageError

Group = Literal["disallowed", "misalignment", "auxiliary"]


class Category(BaseModel):
    """One behaviour category, with the texts its graders use."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    name: str
    group: Group
    agentic: bool = False
    definition: str
    question: str
    rubric: str
    # What a "yes" to the question means. Some behaviours are best asked about positively from
    # the other side (refusal: "Did the ASSISTANT actually do what the USER asked for?"), since
    # small judges invert negated questions; then "yes" means the behaviour is absent.
    yes_means: Literal["flag", "ok"] = "flag"


class Taxonomy(BaseModel):
    """Categories by code, in file order, plus the agentic severity scale."""

    model_config = ConfigDict(frozen=True)

    version: str
    categories: dict[str, Category]
    severity: dict[int, str]

    def get(self, code: str) -> Category:
        """A category by code, with a clear error listing the codes there are."""
        try:
            return self.categories[code]
        except KeyError:
            raise UsageError(
                f"unknown category {code!r}; known: {', '.join(self.categories)}"
            ) from None

    def codes(self, group: Group | None = None) -> list[str]:
        """Category codes, optionally of one group."""
        return [c.code for c in self.categories.values() if group is None or c.group == group]


def _parse(text: str, source: str) -> Taxonomy:
    try:
        data = tomllib.loads(text)
        cats = [Category.model_validate(c) for c in data.get("category", [])]
        severity = {int(k): str(v) for k, v in data.get("severity", {}).items()}
    except (tomllib.TOMLDecodeError, ValidationError, ValueError) as e:
        raise UsageError(f"{source}: not a valid taxonomy file ({e})") from e
    return Taxonomy(
        version=str(data.get("version", "1")),
        categories={c.code: c for c in cats},
        severity=severity,
    )


@lru_cache(maxsize=1)
def builtin() -> Taxonomy:
    """The taxonomy shipped with deploysim."""
    text = files("deploysim").joinpath("data/taxonomy.toml").read_text(encoding="utf-8")
    return _parse(text, "deploysim/data/taxonomy.toml")


def load(extra: Path | None = None) -> Taxonomy:
    """The built-in taxonomy, extended (or overridden by code) by a user's file."""
    base = builtin()
    if extra is None:
        return base
    if not extra.is_file():
        raise UsageError(f"{extra}: no such taxonomy file")
    more = _parse(extra.read_text(encoding="utf-8"), str(extra))
    return Taxonomy(
        version=f"{base.version}+{extra.name}",
        categories={**base.categories, **more.categories},
        severity={**base.severity, **more.severity},
    )
