"""The one exception tree of deploysim.

::

    DeploysimError                  every error deploysim raises on purpose
    ├── UsageError                  a user mistake: bad option, config or path (names the fix)
    ├── InputError                  an input file cannot be read at all
    │   └── RecordError             one record of an input is malformed (file, record, line, why)
    ├── StoreError                  the run store is unusable (wrong schema version, corrupt)
    ├── StatsError                  a statistic asked for with impossible inputs
    ├── ModelError                  one model call failed (kind, retryable, retry_after)
    └── IncompleteRunError          work still missing after every pass (what was done is stored)

Per-item problems inside a run (a bad record, a failed model call) are *data*: they are counted
and reported, and only raise when the user asked for ``--strict``. A :class:`ModelError` is
such a problem: callers catch it per call, so that it reaches the CLI only where a single call
is the whole command.
"""

from __future__ import annotations


class DeploysimError(Exception):
    """Base class of every error deploysim raises on purpose."""


class UsageError(DeploysimError):
    """A user mistake: a bad option, config value or path. The message says how to fix it."""


class InputError(DeploysimError):
    """An input file cannot be read at all (missing, unknown format, not a log)."""


class RecordError(InputError):
    """One record of an input file is malformed.

    Carries where it is (file, 1-based record number, 1-based line number when the format is
    line-based) and what is wrong, so that the message alone lets a user find and fix it.
    """

    def __init__(
        self,
        reason: str,
        *,
        path: str | None = None,
        record: int | None = None,
        line: int | None = None,
    ) -> None:
        self.reason = reason
        self.path = path
        self.record = record
        self.line = line
        super().__init__(self._message())

    def _message(self) -> str:
        where = [p for p in (self.path, _opt("record", self.record), _opt("line", self.line)) if p]
        return f"{', '.join(where)}: {self.reason}" if where else self.reason

    def located(self, *, path: str, record: int, line: int | None) -> RecordError:
        """The same error with its location filled in."""
        return RecordError(self.reason, path=path, record=record, line=line)


class StoreError(DeploysimError):
    """The run store cannot be used (unknown schema version, corrupt file)."""


class StatsError(DeploysimError):
    """A statistic was asked for with impossible inputs (e.g. k > n)."""


class ModelError(DeploysimError):
    """A model call failed.

    ``retryable`` errors (429, 5xx, timeouts, dropped connections) are retried by the caller;
    others are recorded as failures at once. ``kind`` names the error type that is stored with
    the failure; ``retry_after`` is the server's requested wait in seconds, when it named one.
    """

    def __init__(
        self, kind: str, message: str, *, retryable: bool, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable
        self.retry_after = retry_after


class IncompleteRunError(DeploysimError):
    """Work was still missing after every pass; what was done is stored (re-run to resume)."""


def _opt(label: str, value: int | None) -> str | None:
    return None if value is None else f"{label} {value}"
