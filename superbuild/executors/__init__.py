"""Where jobs run: the :class:`Executor` protocol and the registry of executors.

The scheduler drives an executor from a single thread: it calls :meth:`Executor.submit`
for at most ``parallel`` jobs at a time, blocks in :meth:`Executor.wait` for the next
completions, and calls :meth:`Executor.cancel` on ``--fail-fast`` or Ctrl-C.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from superbuild.errors import ToolMissingError, UsageError
from superbuild.executors.local import LocalExecutor
from superbuild.jobs import Completion, Executor

__all__ = [
    "EXECUTORS",
    "Completion",
    "Executor",
    "LocalExecutor",
    "make_executor",
]


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


def make_executor(name: str, **options: Any) -> Executor:
    """Create the executor registered as ``name``; UsageError for an unknown name."""
    try:
        factory = EXECUTORS[name]
    except KeyError:
        known = ", ".join(sorted(EXECUTORS))
        raise UsageError(f"unknown executor {name!r} (known: {known})") from None
    return factory(**options)
