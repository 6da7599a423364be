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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from superbuild.errors import SuperbuildError, disk_full

if TYPE_CHECKING:
    from superbuild.proc import Session

_E = TypeVar("_E", bound="Executor")

Status = Literal["succeeded", "failed", "skipped", "cancelled"]


@dataclass
class JobResult:
    """What a job's task reports when its collect phase is done.

    ``artifacts`` are paths relative to the output repository; ``exports`` the absolute
    paths of the artifacts that dependents may need on another machine (a remote executor
    hands them to tasks with ``needs_dependency_artifacts``); ``log`` the job's log folder.
    """

    status: Literal["succeeded", "failed"]
    reason: str = ""
    artifacts: list[str] = field(default_factory=list)
    log: str | None = None
    version: str | None = None
    release: str | None = None
    #: Seconds spent per stage, in the order the stages ran.
    stage_durations: dict[str, float] = field(default_factory=dict)
    #: Where the run phase ran (a host name) when that was not this process.
    worker: str | None = None
    exports: tuple[str, ...] = ()


@dataclass(frozen=True)
class Placement:
    """What an executor tells a task's prepare phase about where ``run`` will execute.

    ``remote``: on another machine, which sees none of this one's files (so the task must
    carry its inputs as data).  ``dependency_artifacts``: for a task that
    ``needs_dependency_artifacts`` and runs remotely, the ``exports`` of the job's
    dependencies in this run, transitively (absolute paths on this machine).
    """

    remote: bool = False
    dependency_artifacts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Work:
    """The run phase of a job: ``fn(*args, session=SESSION)``, picklable.

    ``fn`` must be a module-level function and ``args`` picklable, so that a remote
    executor can ship it; ``session`` is the :class:`superbuild.proc.Session` whose
    processes the executor may cancel (on a remote worker, one made there).
    """

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()


class Task(Protocol):
    """What a job does, in three declared phases.

    1. :meth:`prepare` on the coordinator: read what ``run`` needs (git objects, a spec)
       and return the :class:`Work`;
    2. the work runs wherever the executor puts it (a thread here, a Dask worker);
    3. :meth:`collect` on the coordinator turns what the work returned into the
       :class:`JobResult` (copies artifacts into the output repository, ...).

    ``resources`` are what a worker must offer to run the work (e.g. ``{"mock": 1}``);
    ``needs_dependency_artifacts`` asks a remote executor for the dependencies' exports;
    ``prepare_blocks`` says that prepare does I/O (git) and should not run on the
    executor's scheduling thread.  An exception raised by any phase fails the job.
    """

    @property
    def resources(self) -> Mapping[str, int]: ...

    @property
    def needs_dependency_artifacts(self) -> bool: ...

    @property
    def prepare_blocks(self) -> bool: ...

    def prepare(self, placement: Placement, session: Session) -> Work: ...

    def collect(self, value: Any, session: Session) -> JobResult: ...


def _call(fn: Callable[..., Any], args: tuple[Any, ...], *, session: Session) -> Any:
    return fn(*args)


@dataclass(frozen=True)
class FunctionTask:
    """A task that is one function call ``fn(*args)`` returning a :class:`JobResult`.

    With ``pass_session`` the call is ``fn(*args, session=SESSION)``, for a function that
    starts processes the executor must be able to cancel.
    """

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    pass_session: bool = False
    resources: Mapping[str, int] = field(default_factory=dict)
    needs_dependency_artifacts: bool = False
    prepare_blocks: bool = False

    def prepare(self, placement: Placement, session: Session) -> Work:
        if self.pass_session:
            return Work(self.fn, self.args)
        return Work(_call, (self.fn, self.args))

    def collect(self, value: Any, session: Session) -> JobResult:
        # The scheduler fails a job whose function broke the contract (returned no result).
        result: JobResult = value
        return result


def call(fn: Callable[..., Any], *args: Any, session: bool = False) -> FunctionTask:
    """The task ``fn(*args)`` (``fn(*args, session=...)`` with ``session``): ``fn``
    module-level and ``args`` picklable for remote executors."""
    return FunctionTask(fn, args, pass_session=session)


def run_here(task: Task, session: Session) -> JobResult:
    """All three phases of ``task`` in this thread (what the local executor does)."""
    work = task.prepare(Placement(), session)
    return task.collect(work.fn(*work.args, session=session), session)


@dataclass(frozen=True)
class Job:
    """One unit of work: ``task`` once ``dependencies`` (job ids) have succeeded.

    ``weight`` is the expected duration (e.g. from past runs); it only orders the ready
    jobs.  Dependencies that are not jobs of the same run count as already built.
    """

    id: str
    dependencies: frozenset[str]
    task: Task
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
    #: Seconds between being handed to the executor and a worker beginning it (a remote
    #: executor's queue; not part of ``duration_s``).
    queued_s: float = 0.0


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
    """One line for a job failure: a SuperbuildError's message, a full disk's own line,
    else ``Type: message``."""
    if (full := disk_full(exc)) is not None:
        return full
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
class JobRunning:
    """A worker began ``job_id`` at ``time`` (epoch seconds, the coordinator's clock).

    Only an executor that queues jobs (Dask) reports it, after :class:`JobStarted`
    (which is when the job was handed over): the time in between is queue time.
    """

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


Event = JobStarted | JobRunning | JobFinished | JobSkipped | JobCancelled
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

        An executor that queues jobs may also have a ``began()`` method returning the
        :class:`JobRunning` records since its last call; its ``wait()`` then also returns
        (maybe an empty list) when a job began.

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
