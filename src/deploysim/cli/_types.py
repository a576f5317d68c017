"""The value types of CLI options with a fixed set of values.

typer turns a ``Literal`` (or an enum, for repeatable options: typer takes no list of
``Literal``) into a choice: it refuses any other value with a usage error and lists the values in
``--help``. Each set here mirrors one in the package (``tests/test_cli_types.py`` checks that
they agree); it is spelled out rather than derived because a type must be static, and because
importing the package modules that own the sets (numpy, the ingest converters) would slow down
every command's start.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from deploysim.execute import ExecutorName as _ExecutorName

# Where replay and grading run: execute owns the names (a light import: no Ray).
ExecutorName = _ExecutorName

ToolMode = Literal["none", "replay"]
"""Replay's tool policy (:class:`deploysim.tools.ToolPolicy` ``mode``)."""

SampleMode = Literal["turn", "final"]
"""Sampling unit (:data:`deploysim.sampling.Mode`)."""

Stratum = Literal["source_format", "source_file", "has_tools", "user_turns"]
"""Stratification keys (:data:`deploysim.sampling.STRATA`)."""

ExportFormat = Literal["openai", "csv", "parquet", "inspect", "otel"]
"""Export formats (:data:`deploysim.export.FORMATS`)."""

DiscoveryUnit = Literal["segment", "response"]
"""What discovery clusters (:data:`deploysim.discovery.Unit`)."""

ClusterMethod = Literal["auto", "agglomerative", "kmeans", "hdbscan"]
"""Discovery's clustering (:data:`deploysim.discovery.Method`)."""

PrimaryMethod = Literal["sim", "bias_corrected"]
"""The forecast method H1 and H2 test (:data:`deploysim.forecast.PRIMARY_METHODS`)."""

Calibrate = Literal["youden", "precision90", "fixed"]
"""How ``graders validate --calibrate`` picks a threshold
(:data:`deploysim.graders.calibration.Criterion`)."""

RealismDiscriminator = Literal["judge", "consistency", "consistency-tools"]
"""Who tells replays from logs in ``realism`` (:data:`deploysim.realism.DiscriminatorName`)."""

SimulatorArms = Literal["both", "blind", "sees-log"]
"""Which arms of the simulator's ablation ``realism --simulator`` runs
(:data:`deploysim.realism.simulated.Arm`; both: blind, then seeing the log)."""

Part = Literal["all", "dev", "test"]
"""Records of a labelled PII file (:data:`deploysim.privacy.evaluation.Part`)."""


class LogFormat(StrEnum):
    """Input log formats (:data:`deploysim.ingest.FORMATS`). An enum, not a ``Literal``:
    ``sample --source-format`` repeats, and typer takes lists of enums only."""

    openai = "openai"
    sharegpt = "sharegpt"
    hh_rlhf = "hh-rlhf"
    oasst = "oasst"
    tau_bench = "tau-bench"
    inspect = "inspect"
    openai_responses = "openai-responses"
    anthropic = "anthropic"
    otel_genai = "otel-genai"
    openinference = "openinference"
    langfuse = "langfuse"
    langsmith = "langsmith"
    swe_agent = "swe-agent"
    openhands = "openhands"
    atif = "atif"
    toolbench = "toolbench"
