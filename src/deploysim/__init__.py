"""deploysim: predict how a new LLM will behave once deployed, before it is released.

Logged conversations are ingested into one conversation model (:mod:`deploysim.schema`) and a
SQLite run store (:mod:`deploysim.store`), from which every later stage reads and writes.

The Python API is the names below (the CLI is a thin layer over them)::

    import deploysim as ds

    with ds.Store("run.db") as store:
        ds.ingest_file(Path("logs.jsonl"), store)
        ds.create_sample(store, "default", ds.SamplingSpec(size=200))
        ds.run_replay(store, ds.ReplaySpec(model="llamacpp/qwen2.5-coder-0.5b"))
        ds.run_grading(store, [("rule/refusal", ds.get_grader("rule/refusal"))])
        for e in ds.estimate(store):
            print(e.model, e.category, e.k, e.n, e.rate)

Names are imported on first use, so ``import deploysim`` stays cheap.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("deploysim")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

if TYPE_CHECKING:
    from deploysim.backtest import load_backtest_config, run_backtest
    from deploysim.config import load_config
    from deploysim.errors import DeploysimError, InputError, UsageError
    from deploysim.estimates import Estimate, compare, estimate
    from deploysim.forecast import read_manifest, register, run_scorecard, write_manifest
    from deploysim.graders import get_grader
    from deploysim.grading import run_grading
    from deploysim.ingest import expand_paths, ingest_file
    from deploysim.models import GenerateConfig, get_model
    from deploysim.pipeline import run_pipeline
    from deploysim.replay import ReplaySpec, create_sample, run_replay
    from deploysim.report import write_report
    from deploysim.rollout import rollout
    from deploysim.sampling import SamplingSpec
    from deploysim.schema import Conversation, Message
    from deploysim.store import Store

#: Where each public name lives (imported lazily by :func:`__getattr__`).
_HOMES = {
    "Conversation": "schema",
    "DeploysimError": "errors",
    "Estimate": "estimates",
    "GenerateConfig": "models",
    "InputError": "errors",
    "Message": "schema",
    "ReplaySpec": "replay",
    "SamplingSpec": "sampling",
    "Store": "store",
    "UsageError": "errors",
    "compare": "estimates",
    "create_sample": "replay",
    "estimate": "estimates",
    "expand_paths": "ingest",
    "get_grader": "graders",
    "get_model": "models",
    "ingest_file": "ingest",
    "load_backtest_config": "backtest",
    "load_config": "config",
    "read_manifest": "forecast",
    "register": "forecast",
    "rollout": "rollout",
    "run_backtest": "backtest",
    "run_grading": "grading",
    "run_pipeline": "pipeline",
    "run_replay": "replay",
    "run_scorecard": "forecast",
    "write_manifest": "forecast",
    "write_report": "report",
}

__all__ = [
    "Conversation",
    "DeploysimError",
    "Estimate",
    "GenerateConfig",
    "InputError",
    "Message",
    "ReplaySpec",
    "SamplingSpec",
    "Store",
    "UsageError",
    "__version__",
    "compare",
    "create_sample",
    "estimate",
    "expand_paths",
    "get_grader",
    "get_model",
    "ingest_file",
    "load_backtest_config",
    "load_config",
    "read_manifest",
    "register",
    "rollout",
    "run_backtest",
    "run_grading",
    "run_pipeline",
    "run_replay",
    "run_scorecard",
    "write_manifest",
    "write_report",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'deploysim' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"deploysim.{home}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
