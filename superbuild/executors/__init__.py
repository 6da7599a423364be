"""Where jobs run: the :class:`Executor` protocol and the registry of executors.

The scheduler drives an executor from a single thread: it calls :meth:`Executor.submit`
for at most ``parallel`` jobs at a time, blocks in :meth:`Executor.wait` for the next
completions, and calls :meth:`Executor.cancel` on ``--fail-fast`` or Ctrl-C.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Literal, Protocol, TypeVar

from superbuild.errors import ToolMissingError, UsageError
from superbuild.executors.local import LocalExecutor
from superbuild.scheduler import Job, JobResult

__all__ = [
    "EXECUTORS",
    "Completion",
    "Executor",
    "ExecutorName",
    "LocalExecutor",
    "dask_options",
    "make_executor",
]

#: ``(job id, what its function returned or raised, duration in seconds)``.
Completion = tuple[str, JobResult | BaseException, float]

_E = TypeVar("_E", bound="Executor")


class Executor(Protocol):
    """Runs submitted jobs and hands back their completions."""

    def submit(self, job: Job, priority: float) -> None:
        """Start ``job`` (or queue it; higher ``priority`` first) and return at once."""
        ...

    def wait(self) -> list[Completion]:
        """Block until at least one submitted job has finished; return all finished ones.

        Must be interruptible by KeyboardInterrupt (no uninterruptible blocking call).
        """
        ...

    def cancel(self) -> None:
        """Stop every running job as fast as possible and drop the queued ones.

        Their completions are never returned.  Nothing of the executor may keep running
        afterwards (threads joined, process groups killed).
        """
        ...

    def close(self) -> None:
        """Release the executor's resources; it accepts no more jobs."""
        ...

    def __enter__(self: _E) -> _E: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


#: Names of the executors (``--executor``).
ExecutorName = Literal["local", "dask"]

#: Environment variable naming the Dask scheduler when ``--scheduler-address`` is absent.
SCHEDULER_ADDRESS_ENV = "SUPERBUILD_SCHEDULER_ADDRESS"


def _dask(**options: Any) -> Executor:
    """The Dask executor; Dask is imported here, only when it is chosen."""
    try:
        from superbuild.executors.dask import DaskExecutor
    except ImportError as exc:
        raise ToolMissingError(
            f"--executor dask needs Dask ({exc}): pip install 'superbuild[dask]'"
        ) from None
    return DaskExecutor(**options)


#: Executor factories by ``--executor`` name; each is called with ``parallel=`` and
#: executor-specific options.  ``import superbuild.executors`` never imports Dask.
EXECUTORS: dict[str, Callable[..., Executor]] = {
    "local": LocalExecutor,
    "dask": _dask,
}


def dask_options(
    address: str | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Options of the Dask executor: ``address`` from ``--scheduler-address``, else
    ``$SUPERBUILD_SCHEDULER_ADDRESS``; none (an embedded LocalCluster) without either.
    """
    env = os.environ if environ is None else environ
    chosen = address or env.get(SCHEDULER_ADDRESS_ENV) or None
    return {"address": chosen} if chosen else {}


def make_executor(name: str, **options: Any) -> Executor:
    """Create the executor registered as ``name``; UsageError for an unknown name."""
    try:
        factory = EXECUTORS[name]
    except KeyError:
        known = ", ".join(sorted(EXECUTORS))
        raise UsageError(f"unknown executor {name!r} (known: {known})") from None
    return factory(**options)
