"""Executors: where the work of a stage (replay, grading) runs.

Every executor implements :class:`deploysim.stage.Executor`: it runs a stage's per-batch
function over the blocks of pending work the stage plans, and hands the results to the stage,
which stores them. So the stored results do not depend on the executor.

- ``local`` (:class:`~deploysim.stage.LocalExecutor`, the default): one asyncio process;
- ``processes`` (:class:`~deploysim.execute.processes.ProcessExecutor`): several local
  processes, for endpoints faster than one Python process can drive;
- ``ray`` (:class:`~deploysim.execute.ray_executor.RayExecutor`): Ray Data actor pools on a
  cluster; needs the optional extra ``deploysim[ray]`` and is imported only when chosen.

:func:`choose` is the one place that turns a name (``--executor``, a config's ``executor``) into
an executor; stages (:mod:`deploysim.replay`, :mod:`deploysim.grading`) take one and never
import this package.
"""

from __future__ import annotations

from typing import Literal

from deploysim.errors import UsageError
from deploysim.stage import Executor, LocalExecutor

__all__ = ["EXECUTORS", "Executor", "ExecutorName", "LocalExecutor", "choose"]

ExecutorName = Literal["local", "processes", "ray"]
EXECUTORS: tuple[ExecutorName, ...] = ("local", "processes", "ray")


def choose(
    name: str = "local",
    *,
    workers: int | None = None,
    num_actors: int = 2,
    ray_address: str | None = None,
) -> Executor:
    """The executor called ``name``.

    ``workers``: processes of the ``processes`` executor (default 2); with ``local``, more than
    one means ``processes`` (``--workers N`` alone asks for processes). ``num_actors`` and
    ``ray_address``: the Ray executor's pool and cluster (see ``docs/ray.md``).
    """
    if workers is not None and workers < 1:
        raise UsageError("--workers must be at least 1")
    if name == "local":
        return LocalExecutor() if (workers or 1) == 1 else _processes(workers or 1)
    if name == "processes":
        return _processes(workers or 2)
    if name == "ray":
        if (workers or 1) > 1:
            raise UsageError("--workers is for the processes executor; Ray takes --num-actors")
        from deploysim.execute.ray_executor import RayExecutor

        return RayExecutor(num_actors=num_actors, address=ray_address)
    raise UsageError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")


def _processes(workers: int) -> Executor:
    from deploysim.execute.processes import ProcessExecutor

    return ProcessExecutor(workers)
