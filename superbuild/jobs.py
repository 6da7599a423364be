"""The bottom of the engine: jobs, their results, the events of a run, the executor protocol.

Nothing here knows about packages, pipelines or RPMs.  The scheduler
(:mod:`superbuild.scheduler`) runs :class:`Job` records on an :class:`Executor` and tells
observers what happens through the event records below (:class:`JobStarted`, then exactly
one of :class:`JobFinished`, :class:`JobSkipped`, :class:`JobCancelled` per job).  The
scheduler never prints: progress bars, log writers and the state database are observers,
plain callables that receive these records in the scheduler's thread, in order.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Protocol, TypeVar

from superbuild.errors import SuperbuildError

_E = TypeVar("_E", bound="Executor")

Status = Literal["succeeded", "failed", "skipped", "cancelled"]


@dataclass
class JobResult:
    """What a job's function returns."""

    status: Literal["succeeded", "failed"]
    reason: str = ""
    artifacts: list[str] = field(default_factory=list)
    log: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    """One unit of work: ``fn(*args)`` once ``dependencies`` (job ids) have succeeded.

    ``fn`` should be a module-level function and ``args`` picklable, so that a remote
    executor can ship the job.  ``weight`` is the expected duration (e.g. from past
    runs); it only orders the ready jobs.  Dependencies that are not jobs of the same
    run count as already built.
    """

    id: str
    dependencies: frozenset[str]
    fn: Callable[..., JobResult]
    args: tuple[Any, ...] = ()
    weight: float = 1.0


@dataclass(frozen=True)
class Outcome:
    """How one job ended.  ``started``/``finished`` are epoch seconds (None if it never ran).

    ``exception`` is what the job's function raised (its ``result`` is then None).
    """

    status: Status
    reason: str = ""
    duration_s: float = 0.0
    result: JobResult | None = None
    started: float | None = None
    finished: float | None = None
    exception: BaseException | None = None


class OnError(enum.Enum):
    """What a failed job does to the rest of the run."""

    #: ``--keep-going``: skip the failed job's dependents, run everything else.
    continue_ = "continue"
    #: ``--fail-fast``: cancel the running jobs and skip those not started.
    interrupt = "interrupt"


class RunResult(dict[str, Outcome]):
    """:class:`Outcome` per job id, in the order of the ``jobs`` given to :func:`run_jobs`.

    ``interrupted`` is True when Ctrl-C (or SIGTERM, turned into KeyboardInterrupt) stopped
    the run; the caller should then exit 130.
    """

    def __init__(
        self, outcomes: Iterable[tuple[str, Outcome]] = (), *, interrupted: bool = False
    ) -> None:
        super().__init__(outcomes)
        self.interrupted = interrupted

    @property
    def ok(self) -> bool:
        """Every job succeeded and the run was not interrupted."""
        return not self.interrupted and all(o.status == "succeeded" for o in self.values())

    def with_status(self, *statuses: Status) -> list[str]:
        """Ids of the jobs that ended with one of ``statuses``."""
        return [job_id for job_id, o in self.items() if o.status in statuses]

    def __repr__(self) -> str:
        return f"RunResult({dict.__repr__(self)}, interrupted={self.interrupted})"


def describe_exception(exc: BaseException) -> str:
    """One line for a job failure: a SuperbuildError's message, else ``Type: message``."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if isinstance(exc, SuperbuildError):
        return "; ".join(lines) or type(exc).__name__
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


@dataclass(frozen=True, slots=True)
class JobStarted:
    """``job_id`` was handed to the executor at ``time`` (seconds since the epoch)."""

    job_id: str
    time: float


@dataclass(frozen=True, slots=True)
class JobFinished:
    """``job_id`` ran to the end; ``result`` is ``None`` when its function raised."""

    job_id: str
    status: Literal["succeeded", "failed"]
    reason: str
    duration_s: float
    result: JobResult | None
    exception: BaseException | None = None


@dataclass(frozen=True, slots=True)
class JobSkipped:
    """``job_id`` never started (a dependency failed, or ``--fail-fast`` stopped the run)."""

    job_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class JobCancelled:
    """``job_id`` was stopped while running, or never started, because of an interrupt."""

    job_id: str
    reason: str


Event = JobStarted | JobFinished | JobSkipped | JobCancelled
Observer = Callable[[Event], None]


#: ``(job id, what its function returned or raised, duration in seconds)``.
Completion = tuple[str, JobResult | BaseException, float]


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
