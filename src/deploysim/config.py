"""The run configuration: one TOML file describing the whole pipeline (``deploysim run``).

Validated strictly (unknown keys are errors that name the key and the file), with paths
relative to the config file. See ``examples/run.toml`` for a commented example.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from deploysim.errors import UsageError
from deploysim.execute import ExecutorName
from deploysim.sampling import SamplingSpec

M = TypeVar("M", bound=BaseModel)


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class IngestConfig(_Section):
    """Which logs to read. A path is a glob relative to the config file, or
    ``package:<python package>/<path inside it>`` for data shipped in an installed package."""

    paths: list[str]
    format: str | None = None
    strict: bool = False
    limit: int | None = Field(None, ge=1)
    deidentify: bool = True
    deid_strict: bool = False
    deid_keep_introduced: bool = True
    """Leave in place names, places, organisations, dates and links that only the logged model
    said (see :data:`deploysim.privacy.deid.INTRODUCED_TYPES`); ``false`` for logs whose model
    saw context the log does not hold (retrieval, memory), where they may be personal."""
    workers: Annotated[int, Field(ge=1)] | Literal["auto"] = 1
    """Processes that de-identify each batch (same output as one); ``"auto"``: every usable
    CPU (worth it for hundreds of conversations; each worker loads the detector, ~6 s)."""


class SampleConfig(SamplingSpec):
    """A sample of prefixes (every :class:`~deploysim.sampling.SamplingSpec` field) and a name."""

    name: str = "default"

    def spec(self) -> SamplingSpec:
        """The sampling spec without the name."""
        return SamplingSpec.model_validate(self.model_dump(exclude={"name"}))


class ReplayConfig(_Section):
    """One model to replay the sample with."""

    model: str
    samples_per_prefix: int = Field(1, ge=1)
    concurrency: int = Field(4, ge=1)
    workers: int | None = Field(None, ge=1)
    """Processes of the ``processes`` executor (default 2); more than one with ``local`` means
    ``processes``, as ``--workers`` does (:func:`deploysim.execute.choose`)."""
    temperature: float | None = None
    max_tokens: int | None = 256
    seed: int | None = 0
    timeout: float = 300.0
    max_attempts: int = Field(5, ge=1)
    system_prompt: str | None = None
    tools: Literal["none", "replay"] = "none"
    simulator: str | None = None
    max_steps: int = Field(8, ge=1)


class GradeConfig(_Section):
    """The graders, and the judge model for those that need one."""

    graders: list[str]
    judge: str | None = None
    concurrency: int = Field(2, ge=1)
    references: bool = True


class CompareConfig(_Section):
    """A candidate-vs-baseline comparison (``baseline = "logged"``: the deployed model)."""

    candidate: str
    baseline: str = "logged"
    alpha: float = 0.1
    bh: bool = False


class ReportConfig(_Section):
    """Where the HTML report goes."""

    path: str = "report.html"


class RunConfig(_Section):
    """The whole pipeline."""

    store: str = "deploysim.db"
    executor: ExecutorName = "local"
    """Where replay and grading run: the CLI's ``--executor`` choices, turned into an executor
    by the one seam :func:`deploysim.execute.choose`."""
    ingest: IngestConfig
    sample: SampleConfig = SampleConfig()
    replay: list[ReplayConfig] = []
    grade: GradeConfig | None = None
    compare: list[CompareConfig] = []
    report: ReportConfig = ReportConfig()


def load_config(path: Path) -> RunConfig:
    """Read and validate a run config, with errors that name the file and the key."""
    return load_toml(path, RunConfig, "config")


def load_toml(path: Path, model: type[M], what: str) -> M:
    """Read a TOML file into ``model``; errors name the file and each bad key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path}: not valid TOML ({e})") from e
    try:
        return model.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
        )
        raise UsageError(f"{path}: invalid {what} ({problems})") from e
