"""Run jobs on worker threads of this process.

Jobs spend their time waiting for subprocesses, so threads are enough, and they are
cheap to start.  Completions come back through a queue, so :meth:`LocalExecutor.wait`
blocks (interruptibly) instead of polling.
"""

from __future__ import annotations

import itertools
import math
import queue
import threading
import time
from typing import TYPE_CHECKING

from superbuild.executors.base import QueueExecutor
from superbuild.jobs import run_here
from superbuild.proc import Session

if TYPE_CHECKING:
    from superbuild.jobs import Completion, Job, JobResult, JobRunning

#: How long ``cancel()`` waits for a worker before it cancels the session again: a
#: process whose start raced with the first call (the session registers a child after
#: its cancellation check) is only stopped by a later one.
_RETRY_KILL_S = 0.1

#: ``(-priority, sequence number, job)``; ``None`` tells a worker to exit.
_Task = tuple[float, int, "Job | None"]


def _work(
    todo: queue.PriorityQueue[_Task],
    done: queue.SimpleQueue[Completion | JobRunning],
    stopping: threading.Event,
    session: Session,
) -> None:
    while True:
        job = todo.get()[2]
        if job is None:
            return
        if stopping.is_set():
            continue  # cancelled before it started
        start = time.monotonic()
        result: JobResult | BaseException
        try:
            result = run_here(job.task, session)
        except BaseException as exc:  # reported to the scheduler, which fails the job
            result = exc
        done.put((job.id, result, time.monotonic() - start))
        del job, result


class LocalExecutor(QueueExecutor):
    """Run up to ``parallel`` jobs at once on ``parallel`` worker threads.

    The threads start with the executor (again on the first ``submit()`` after
    ``cancel()``); use it as a context manager, or call ``close()``.  Call ``submit``,
    ``wait``, ``cancel`` and ``close`` from one thread.  Jobs start their processes in
    ``session`` (the run's :class:`~superbuild.proc.Session`; by default one of the
    executor's own); ``cancel()`` cancels it.  An executor with its own session gets a
    fresh one after ``cancel()`` and is usable again; a session given by the caller
    stays cancelled (the run is over).  ``join_timeout`` bounds how long ``cancel()``
    waits for a job function that ignores the cancellation (its daemon thread is then
    abandoned).
    """

    def __init__(
        self,
        parallel: int,
        *,
        session: Session | None = None,
        join_timeout: float | None = 30.0,
    ) -> None:
        if parallel < 1:
            raise ValueError(f"parallel must be at least 1, not {parallel}")
        self.parallel = parallel
        self.join_timeout = join_timeout
        self._own_session = session is None
        self.session = session or Session()
        self._seq = itertools.count()
        self._closed = False
        self._reset()
        self._start_workers()

    def _reset(self) -> None:
        # Fresh queues: a worker abandoned by cancel() can only touch the old ones.
        self._todo: queue.PriorityQueue[_Task] = queue.PriorityQueue()
        self._done: queue.SimpleQueue[Completion | JobRunning] = queue.SimpleQueue()
        self._began: list[JobRunning] = []
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pending = 0  # submitted, not yet returned by wait()

    def _start_workers(self) -> None:
        # All at once, before any job runs: a Ctrl-C that interrupted Thread.start() in
        # the middle of a run could leave a worker the executor does not know about.
        for number in range(1, self.parallel + 1):
            thread = threading.Thread(
                target=_work,
                args=(self._todo, self._done, self._stopping, self.session),
                name=f"superbuild-local-{number}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()

    @property
    def threads(self) -> tuple[threading.Thread, ...]:
        """The current worker threads (for tests and diagnostics)."""
        return tuple(self._threads)

    def submit(self, job: Job, priority: float) -> None:
        """Queue ``job``; the highest ``priority`` (then the oldest) starts first."""
        if self._closed:
            raise RuntimeError("submit() on a closed LocalExecutor")
        if not self._threads:  # first use after cancel()
            self._start_workers()
        self._pending += 1
        self._todo.put((-priority, next(self._seq), job))

    def cancel(self) -> None:
        """Kill the running jobs' process groups, drop queued jobs, join the workers."""
        self._stopping.set()
        self._drain()
        self.session.cancel()
        self._join(kill=True)
        self._reset()
        if self._own_session:
            self.session = Session()

    def close(self) -> None:
        """Drop queued jobs, let running ones finish, join the workers."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        self._drain()
        self._join(kill=False)
        self._reset()

    def _drain(self) -> None:
        while True:
            try:
                self._todo.get_nowait()
            except queue.Empty:
                return

    def _join(self, *, kill: bool) -> None:
        for _ in self._threads:
            self._todo.put((-math.inf, next(self._seq), None))
        # ident is None only if a Ctrl-C interrupted Thread.start(): that thread never
        # ran, or will run just long enough to read its sentinel.
        threads = [t for t in self._threads if t.ident is not None]
        if not kill:
            for thread in threads:
                thread.join()
            return
        deadline = None if self.join_timeout is None else time.monotonic() + self.join_timeout
        for thread in threads:
            while True:
                left = None if deadline is None else deadline - time.monotonic()
                slice_s = _RETRY_KILL_S if left is None else max(0.0, min(_RETRY_KILL_S, left))
                thread.join(slice_s)
                if not thread.is_alive() or (left is not None and left <= _RETRY_KILL_S):
                    break
                self.session.cancel(grace=0.5)
