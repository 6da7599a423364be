"""What the scheduler reports while it runs jobs.

The scheduler never prints: progress bars, log writers and the state database are
observers, plain callables that receive these records in the scheduler's thread, in
order.  Each job gets at most one :class:`JobStarted` and exactly one terminal event
(:class:`JobFinished`, :class:`JobSkipped` or :class:`JobCancelled`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from superbuild.scheduler import JobResult


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
