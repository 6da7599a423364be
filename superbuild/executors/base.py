"""What every executor shares: completions on a queue, and how it is used as a context."""

from __future__ import annotations

import queue
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from superbuild.jobs import JobRunning

if TYPE_CHECKING:
    from superbuild.jobs import Completion

#: How often a blocked ``wait()`` wakes up.  A completion wakes it at once; the timeout
#: is for signals: when the kernel delivers the process's SIGINT/SIGTERM to a worker
#: thread, the main thread's untimed lock wait is not interrupted, and KeyboardInterrupt
#: would only be raised at the next completion.
SIGNAL_CHECK_S = 0.2

_B = TypeVar("_B", bound="QueueExecutor")


class QueueExecutor:
    """Base of executors whose finished jobs arrive on ``self._done``.

    Subclasses set ``self._done`` and ``self._pending`` (submitted, not yet returned by
    :meth:`wait`) and implement ``cancel()`` and ``close()``.
    """

    _done: queue.SimpleQueue[Completion | JobRunning]
    #: Jobs begun on a worker, not yet returned by :meth:`began`.
    _began: list[JobRunning]
    _pending: int

    def cancel(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def wait(self) -> list[Completion]:
        """Block until a submitted job finishes, or one begins on a worker (subclasses
        that queue jobs put :class:`JobRunning` records on ``_done``); return every
        finished one (maybe none: then :meth:`began` has news)."""
        if self._pending <= 0:
            raise RuntimeError("wait() with no job submitted")
        while True:
            try:
                finished = [self._done.get(timeout=SIGNAL_CHECK_S)]
                break
            except queue.Empty:
                continue  # the interpreter runs pending signal handlers here
        while True:
            try:
                finished.append(self._done.get_nowait())
            except queue.Empty:
                break
        completions: list[Completion] = []
        for item in finished:
            if isinstance(item, JobRunning):
                self._began.append(item)
            else:
                completions.append(item)
        self._pending -= len(completions)
        return completions

    def began(self) -> list[JobRunning]:
        """The jobs that began on a worker since the last call (:class:`JobRunning`)."""
        began, self._began = self._began, []
        return began

    def __enter__(self: _B) -> _B:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None and self._pending:
            self.cancel()
        self.close()
