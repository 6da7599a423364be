"""Run a DAG of jobs on an executor, longest critical path first.

No CLI, no RPM: :func:`run_jobs` takes :class:`Job` records (a module-level function and
its arguments, so that a remote executor can pickle them), starts each one as soon as
every dependency among the jobs has succeeded, at most ``parallel`` at a time, and
returns one :class:`Outcome` per job.  Progress is reported to observers as
:mod:`superbuild.jobs` event records; nothing here prints.

Cost: O((V + E) log V) for V jobs and E dependencies.  The loop never scans all jobs
and never polls: it blocks in :meth:`Executor.wait` for the next completion.  After a
completion it hands the newly ready jobs to the executor *before* it calls the observers
(progress output, the state database), so their time overlaps the running jobs instead
of keeping a slot idle; the observers still receive every event, in order.
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from collections.abc import Iterable, Mapping

from superbuild.errors import CycleError, Interrupted, disk_full
from superbuild.graph import DependencyGraph
from superbuild.jobs import (
    Event,
    Executor,
    Job,
    JobCancelled,
    JobFinished,
    JobResult,
    JobRunning,
    JobSkipped,
    JobStarted,
    Observer,
    OnError,
    Outcome,
    RunResult,
    describe_exception,
)

__all__ = ["run_jobs"]


def run_jobs(
    jobs: Mapping[str, Job],
    executor: Executor,
    *,
    parallel: int,
    on_error: OnError = OnError.continue_,
    observers: Iterable[Observer] = (),
) -> RunResult:
    """Run ``jobs`` on ``executor``, at most ``parallel`` at a time, and say how each ended.

    Ready jobs start longest remaining critical path first (ties by id).  A job whose
    function raises fails with a one-line reason.  On KeyboardInterrupt the executor is
    cancelled, unfinished jobs become ``cancelled`` and the result has ``interrupted``
    set (nothing is re-raised).  The caller owns (and closes) ``executor``.

    Raises :class:`CycleError` if the jobs' dependencies form a cycle, ValueError on
    ``parallel < 1`` or a key that is not its job's id.
    """
    if parallel < 1:
        raise ValueError(f"parallel must be at least 1, not {parallel}")
    for key, job in jobs.items():
        if key != job.id:
            raise ValueError(f"job {job.id!r} is stored under the key {key!r}")
    graph = DependencyGraph({job_id: job.dependencies for job_id, job in jobs.items()})
    try:
        priority = graph.critical_paths(jobs.keys(), lambda job_id: jobs[job_id].weight)
    except ValueError:
        cycle = graph.find_cycle() or sorted(jobs)
        raise CycleError(f"dependency cycle between jobs: {' -> '.join(cycle)}") from None
    run = _Run(
        jobs,
        graph,
        priority,
        executor,
        parallel=parallel,
        on_error=on_error,
        observers=tuple(observers),
    )
    return run.run()


class _Run:
    """The state of one :func:`run_jobs` call."""

    def __init__(
        self,
        jobs: Mapping[str, Job],
        graph: DependencyGraph,
        priority: dict[str, float],
        executor: Executor,
        *,
        parallel: int,
        on_error: OnError,
        observers: tuple[Observer, ...],
    ) -> None:
        self.jobs = jobs
        self.dependents = graph.required_by
        self.priority = priority
        self.executor = executor
        self.parallel = parallel
        self.on_error = on_error
        self.observers = observers
        #: Dependencies (among the jobs) each job still waits for.
        self.waiting = {job_id: len(reqs) for job_id, reqs in graph.requires.items()}
        self.ready = [(-priority[j], j) for j, n in self.waiting.items() if n == 0]
        heapq.heapify(self.ready)
        #: Job id -> (epoch, monotonic) start time, for jobs handed to the executor.
        self.running: dict[str, tuple[float, float]] = {}
        #: Job id -> seconds it was queued before a worker began it (JobRunning).
        self.queued: dict[str, float] = {}
        self.outcomes: dict[str, Outcome] = {}
        #: Events not yet delivered to the observers, oldest first (see :meth:`flush`).
        self.pending: deque[Event] = deque()

    def emit(self, event: Event) -> None:
        """Queue ``event``; :meth:`flush` delivers it."""
        self.pending.append(event)

    def flush(self) -> None:
        """Deliver the queued events to every observer, in order."""
        pending, observers = self.pending, self.observers
        while pending:
            event = pending.popleft()
            for observer in observers:
                observer(event)

    def run(self) -> RunResult:
        try:
            interrupted = self.loop()
            if interrupted:
                self.stop("interrupted", "not started: interrupted", skip_pending=False)
        except KeyboardInterrupt:
            self.stop("interrupted", "not started: interrupted", skip_pending=False)
            interrupted = True
        except BaseException:
            # A bug (an observer or the executor raised): leave no job running behind.
            self.executor.cancel()
            raise
        return RunResult(((j, self.outcomes[j]) for j in self.jobs), interrupted=interrupted)

    def loop(self) -> bool:
        """Run until no job can start; True if a job reported an interruption."""
        ready, running = self.ready, self.running
        while True:
            while ready and len(running) < self.parallel:
                self.start(heapq.heappop(ready)[1])
            # The jobs are submitted: the observers now run while they do.
            self.flush()
            if not running:
                return False
            first_failure = None
            interrupted = False
            full = None
            completions = self.executor.wait()
            for item in self.began():
                if item.job_id in self.running and item.job_id not in self.queued:
                    self.queued[item.job_id] = max(0.0, item.time - self.running[item.job_id][0])
                    self.emit(item)
            for job_id, result, duration in completions:
                if isinstance(result, (Interrupted, KeyboardInterrupt)):
                    interrupted = True  # proc.terminate_all() ran: the build is stopping
                elif not self.finish(job_id, result, duration):
                    first_failure = first_failure or job_id
                    if full is None and isinstance(result, BaseException):
                        full = disk_full(result)
            if interrupted:
                return True
            if full is not None:
                # Every later job would fail the same way: stop, whatever --keep-going says.
                self.stop(f"stopped: {full}", f"not started: {full}", skip_pending=True)
                return False
            if first_failure is not None and self.on_error is OnError.interrupt:
                self.stop(
                    f"--fail-fast after {first_failure} failed",
                    f"not started: --fail-fast after {first_failure} failed",
                    skip_pending=True,
                )
                return False

    def began(self) -> list[JobRunning]:
        """What the executor says began on a worker (executors that queue jobs)."""
        began = getattr(self.executor, "began", None)
        found: list[JobRunning] = began() if callable(began) else []
        return found

    def start(self, job_id: str) -> None:
        now = time.time()
        self.running[job_id] = (now, time.monotonic())
        self.emit(JobStarted(job_id, now))
        self.executor.submit(self.jobs[job_id], self.priority[job_id])

    def finish(self, job_id: str, result: JobResult | BaseException, duration: float) -> bool:
        """Record a completion; True if the job succeeded."""
        exception = None
        if isinstance(result, JobResult):
            job_result: JobResult | None = result
            status, reason = result.status, result.reason
            if status not in ("succeeded", "failed"):
                status, reason = "failed", f"job returned the status {status!r}"
        elif isinstance(result, BaseException):
            job_result, exception = None, result
            status, reason = "failed", describe_exception(result)
        else:  # a job function that broke its contract
            job_result = None
            status, reason = "failed", f"job returned {type(result).__name__}, not a JobResult"
        if status == "failed" and not reason:
            reason = "failed"
        started = self.running[job_id][0]
        self.outcomes[job_id] = Outcome(
            status,
            reason,
            duration,
            job_result,
            started,
            time.time(),
            exception,
            self.queued.get(job_id, 0.0),
        )
        del self.running[job_id]
        self.emit(JobFinished(job_id, status, reason, duration, job_result, exception))
        if status == "succeeded":
            for dependent in self.dependents[job_id]:
                self.waiting[dependent] -= 1
                if self.waiting[dependent] == 0 and dependent not in self.outcomes:
                    heapq.heappush(self.ready, (-self.priority[dependent], dependent))
            return True
        if self.on_error is OnError.continue_:
            self.skip_dependents(job_id)
        return False

    def skip_dependents(self, failed: str) -> None:
        """Mark every job downstream of ``failed`` skipped (none of them can have started)."""
        reason = f"dependency {failed} failed"
        skipped = []
        todo = list(self.dependents[failed])
        while todo:
            job_id = todo.pop()
            if job_id in self.outcomes:
                continue
            self.outcomes[job_id] = Outcome("skipped", reason)
            skipped.append(job_id)
            todo.extend(self.dependents[job_id])
        for job_id in sorted(skipped):
            self.emit(JobSkipped(job_id, reason))

    def stop(self, running_reason: str, pending_reason: str, *, skip_pending: bool) -> None:
        """Cancel the executor; running jobs become cancelled, the others skipped/cancelled."""
        self.executor.cancel()
        now, mono = time.time(), time.monotonic()
        for job_id, (started, started_mono) in sorted(self.running.items()):
            if job_id not in self.outcomes:
                outcome = Outcome(
                    "cancelled", running_reason, mono - started_mono, None, started, now
                )
                self.outcomes[job_id] = outcome
                self.emit(JobCancelled(job_id, running_reason))
        self.running.clear()
        self.ready.clear()
        for job_id in self.jobs:
            if job_id not in self.outcomes:
                if skip_pending:
                    self.outcomes[job_id] = Outcome("skipped", pending_reason)
                    self.emit(JobSkipped(job_id, pending_reason))
                else:
                    self.outcomes[job_id] = Outcome("cancelled", pending_reason)
                    self.emit(JobCancelled(job_id, pending_reason))
        self.flush()
