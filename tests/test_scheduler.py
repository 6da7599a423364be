"""The scheduler, driven by a fake executor that completes jobs when the test says so."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from types import TracebackType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from superbuild import proc
from superbuild.errors import CycleError, Interrupted, SuperbuildError
from superbuild.jobs import (
    Event,
    Job,
    JobCancelled,
    JobFinished,
    JobResult,
    JobSkipped,
    JobStarted,
    OnError,
    RunResult,
    call,
    describe_exception,
    run_here,
)
from superbuild.scheduler import run_jobs

# ---------------------------------------------------------------- job functions


def succeed(*_args: object) -> JobResult:
    return JobResult("succeeded", artifacts=["out.rpm"])


def fail(reason: str = "boom") -> JobResult:
    return JobResult("failed", reason)


def raise_(exc: BaseException) -> JobResult:
    raise exc


def return_none() -> JobResult:
    return None  # type: ignore[return-value]


# ---------------------------------------------------------------- fake executor

Pick = Callable[["FakeExecutor"], Iterable[str]]


def oldest(ex: FakeExecutor) -> list[str]:
    """Complete the job submitted first, one per wait()."""
    return [next(iter(ex.running))]


class FakeExecutor:
    """Runs a job's function inline when ``pick`` chooses it to complete.

    ``log`` records ("start", id) and ("end", id) in order.
    """

    def __init__(self, pick: Pick = oldest) -> None:
        self.pick = pick
        self.running: dict[str, Job] = {}
        self.submitted: list[tuple[str, float]] = []
        self.log: list[tuple[str, str]] = []
        self.max_running = 0
        self.waits = 0
        self.cancels = 0
        self.cancelled_running: list[str] = []

    def submit(self, job: Job, priority: float) -> None:
        assert job.id not in self.running
        assert not self.cancels, "submit() after cancel()"
        self.running[job.id] = job
        self.submitted.append((job.id, priority))
        self.log.append(("start", job.id))
        self.max_running = max(self.max_running, len(self.running))

    def wait(self) -> list[tuple[str, JobResult | BaseException, float]]:
        assert self.running, "wait() with nothing running would block forever"
        self.waits += 1
        finished: list[tuple[str, JobResult | BaseException, float]] = []
        for job_id in list(self.pick(self)):
            job = self.running.pop(job_id)
            result: JobResult | BaseException
            try:
                result = run_here(job.task, proc.Session())
            except BaseException as exc:
                result = exc
            finished.append((job_id, result, 1.5))
            self.log.append(("end", job_id))
        return finished

    def cancel(self) -> None:
        self.cancels += 1
        self.cancelled_running = sorted(self.running)
        self.running.clear()

    def close(self) -> None:
        pass

    def __enter__(self) -> FakeExecutor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def started(self) -> list[str]:
        return [job_id for what, job_id in self.log if what == "start"]


#: A job's function, or its function and arguments.
JobSpec = Callable[..., JobResult] | tuple[Callable[..., JobResult], tuple[object, ...]]


def make_jobs(
    deps: Mapping[str, str],
    *,
    failing: Mapping[str, JobSpec] | None = None,
    weights: Mapping[str, float] | None = None,
) -> dict[str, Job]:
    """``deps`` maps a job id to its space-separated dependencies."""
    jobs = {}
    for job_id, requires in deps.items():
        spec = (failing or {}).get(job_id, succeed)
        fn, args = spec if isinstance(spec, tuple) else (spec, ())
        jobs[job_id] = Job(
            job_id,
            frozenset(requires.split()),
            call(fn, *args),
            weight=(weights or {}).get(job_id, 1.0),
        )
    return jobs


def statuses(result: RunResult) -> dict[str, tuple[str, str]]:
    return {job_id: (o.status, o.reason) for job_id, o in result.items()}


# ---------------------------------------------------------------- ordering


def test_start_order_follows_critical_path_then_id() -> None:
    # a -> b -> c is a chain of 3; d weighs 5 alone; e weighs 1 alone.
    jobs = make_jobs(
        {"a": "", "b": "a", "c": "b", "d": "", "e": ""},
        weights={"d": 5.0},
    )
    ex = FakeExecutor()
    result = run_jobs(jobs, ex, parallel=1)
    assert result.ok
    # d (5) > a (3); then b (2) > e (1); then c (1) ties e (1): c by id.
    assert ex.started == ["d", "a", "b", "c", "e"]
    assert dict(ex.submitted) == {"a": 3.0, "b": 2.0, "c": 1.0, "d": 5.0, "e": 1.0}


def test_dependents_count_through_weights() -> None:
    # x has one heavy dependent; y has two light ones: x goes first.
    jobs = make_jobs(
        {"x": "", "y": "", "heavy": "x", "l1": "y", "l2": "y"},
        weights={"heavy": 10.0},
    )
    ex = FakeExecutor()
    run_jobs(jobs, ex, parallel=1)
    assert ex.started[0] == "x"


def test_never_more_than_parallel_running() -> None:
    jobs = make_jobs({f"j{i}": "" for i in range(10)})
    ex = FakeExecutor()
    result = run_jobs(jobs, ex, parallel=3)
    assert result.ok
    assert ex.max_running == 3
    assert ex.waits == 10


def test_job_starts_only_after_its_dependencies_succeeded() -> None:
    jobs = make_jobs({"a": "", "b": "", "c": "a b", "d": "c", "e": "a"})
    ex = FakeExecutor(pick=lambda ex: sorted(ex.running)[-1:])
    result = run_jobs(jobs, ex, parallel=4)
    assert result.ok
    position = {entry: i for i, entry in enumerate(ex.log)}
    for job in jobs.values():
        for dep in job.dependencies:
            assert position[("end", dep)] < position[("start", job.id)]


def test_dependencies_outside_the_jobs_count_as_built() -> None:
    jobs = make_jobs({"a": "built-last-time", "b": "a elsewhere"})
    ex = FakeExecutor()
    assert run_jobs(jobs, ex, parallel=2).ok
    assert ex.started == ["a", "b"]


def test_batch_of_completions() -> None:
    jobs = make_jobs({"a": "", "b": "", "c": "a b"})
    ex = FakeExecutor(pick=lambda ex: list(ex.running))
    result = run_jobs(jobs, ex, parallel=2)
    assert result.ok
    assert ex.waits == 2


def test_empty() -> None:
    result = run_jobs({}, FakeExecutor(), parallel=1)
    assert result == {}
    assert result.ok
    assert not result.interrupted


# ---------------------------------------------------------------- failures


def test_failure_skips_transitive_dependents_and_independent_branch_goes_on() -> None:
    jobs = make_jobs(
        {"glance": "", "nova": "glance", "horizon": "nova", "keystone": "", "swift": "keystone"},
        failing={"glance": (fail, ("rpmbuild exited 1",))},
    )
    events: list[Event] = []
    ex = FakeExecutor()
    result = run_jobs(jobs, ex, parallel=2, observers=[events.append])
    assert statuses(result) == {
        "glance": ("failed", "rpmbuild exited 1"),
        "nova": ("skipped", "dependency glance failed"),
        "horizon": ("skipped", "dependency glance failed"),
        "keystone": ("succeeded", ""),
        "swift": ("succeeded", ""),
    }
    assert list(result) == list(jobs)
    assert not result.interrupted
    assert not result.ok
    assert result.with_status("skipped") == ["nova", "horizon"]
    assert ex.cancels == 0
    assert [e for e in events if isinstance(e, JobSkipped)] == [
        JobSkipped("horizon", "dependency glance failed"),
        JobSkipped("nova", "dependency glance failed"),
    ]


def test_job_with_a_failed_and_a_succeeded_dependency_is_skipped() -> None:
    jobs = make_jobs({"a": "", "b": "", "c": "a b"}, failing={"a": fail})
    # b completes after a failed: c must not become ready.
    result = run_jobs(jobs, FakeExecutor(), parallel=2)
    assert statuses(result)["c"] == ("skipped", "dependency a failed")
    assert result["b"].status == "succeeded"


def test_fail_fast_cancels_running_and_skips_pending() -> None:
    jobs = make_jobs({"a": "", "b": "", "c": "", "d": "b"}, failing={"a": fail}, weights={"a": 3.0})
    ex = FakeExecutor()
    events: list[Event] = []
    result = run_jobs(jobs, ex, parallel=2, on_error=OnError.interrupt, observers=[events.append])
    assert ex.started == ["a", "b"]
    assert ex.cancels == 1
    assert ex.cancelled_running == ["b"]
    assert statuses(result) == {
        "a": ("failed", "boom"),
        "b": ("cancelled", "--fail-fast after a failed"),
        "c": ("skipped", "not started: --fail-fast after a failed"),
        "d": ("skipped", "not started: --fail-fast after a failed"),
    }
    assert not result.interrupted
    assert result["b"].started is not None
    assert result["c"].started is None
    assert JobCancelled("b", "--fail-fast after a failed") in events


def test_fail_fast_keeps_successes_of_the_same_batch() -> None:
    jobs = make_jobs({"a": "", "b": "", "c": ""}, failing={"b": fail})
    ex = FakeExecutor(pick=lambda ex: sorted(ex.running))
    result = run_jobs(jobs, ex, parallel=2, on_error=OnError.interrupt)
    assert statuses(result) == {
        "a": ("succeeded", ""),
        "b": ("failed", "boom"),
        "c": ("skipped", "not started: --fail-fast after b failed"),
    }


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (ValueError("bad value\nsecond line"), "ValueError: bad value"),
        (KeyError("x"), "KeyError: 'x'"),
        (RuntimeError(), "RuntimeError"),
        (SuperbuildError("spec file missing"), "spec file missing"),
        (SuperbuildError("one", "two"), "one; two"),
    ],
)
def test_exception_in_job_becomes_a_failure(exc: BaseException, reason: str) -> None:
    jobs = make_jobs({"a": "", "b": "a", "c": ""}, failing={"a": (raise_, (exc,))})
    events: list[Event] = []
    result = run_jobs(jobs, FakeExecutor(), parallel=2, observers=[events.append])
    assert statuses(result) == {
        "a": ("failed", reason),
        "b": ("skipped", "dependency a failed"),
        "c": ("succeeded", ""),
    }
    assert result["a"].exception is exc
    assert result["a"].result is None
    assert describe_exception(exc) == reason
    finished = [e for e in events if isinstance(e, JobFinished) and e.job_id == "a"]
    assert finished == [JobFinished("a", "failed", reason, 1.5, None, exc)]


def test_a_full_disk_stops_the_run_even_with_keep_going() -> None:
    """Every later job would fail the same way: the run stops at the first full disk."""
    full = OSError(28, "No space left on device", "/out/rpms/noarch/a-1-1.noarch.rpm")
    jobs = make_jobs(
        {"a": "", "b": "", "c": "", "d": "b"}, failing={"a": (raise_, (full,))}, weights={"a": 3.0}
    )
    ex = FakeExecutor()
    result = run_jobs(jobs, ex, parallel=2)  # OnError.continue_, the default
    line = (
        "no space left on device writing /out/rpms/noarch/a-1-1.noarch.rpm: "
        "free space on that file system and run again"
    )
    assert statuses(result) == {
        "a": ("failed", line),
        "b": ("cancelled", f"stopped: {line}"),
        "c": ("skipped", f"not started: {line}"),
        "d": ("skipped", f"not started: {line}"),
    }
    assert ex.cancels == 1


def test_job_returning_garbage_fails() -> None:
    result = run_jobs(make_jobs({"a": ""}, failing={"a": return_none}), FakeExecutor(), parallel=1)
    assert statuses(result) == {"a": ("failed", "job returned NoneType, not a JobResult")}


def test_failed_result_without_reason_gets_one() -> None:
    jobs = make_jobs({"a": ""}, failing={"a": (fail, ("",))})
    assert statuses(run_jobs(jobs, FakeExecutor(), parallel=1)) == {"a": ("failed", "failed")}


# ---------------------------------------------------------------- interruption


def test_keyboard_interrupt_while_waiting() -> None:
    calls = 0

    def pick(ex: FakeExecutor) -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise KeyboardInterrupt
        return oldest(ex)

    jobs = make_jobs({"a": "", "b": "", "c": "", "d": "a"})
    ex = FakeExecutor(pick)
    events: list[Event] = []
    result = run_jobs(jobs, ex, parallel=2, observers=[events.append])
    assert result.interrupted
    assert ex.cancels == 1
    assert statuses(result) == {
        "a": ("succeeded", ""),
        "b": ("cancelled", "interrupted"),
        "c": ("cancelled", "interrupted"),
        "d": ("cancelled", "not started: interrupted"),
    }
    terminal = [e for e in events if not isinstance(e, JobStarted)]
    assert sorted(e.job_id for e in terminal) == ["a", "b", "c", "d"]


def test_interrupted_raised_by_a_job_interrupts_the_run() -> None:
    jobs = make_jobs({"a": "", "b": "", "c": "b"}, failing={"a": (raise_, (Interrupted("x"),))})
    ex = FakeExecutor(pick=lambda ex: ["a"] if "a" in ex.running else oldest(ex))
    result = run_jobs(jobs, ex, parallel=2)
    assert result.interrupted
    assert ex.cancels == 1
    assert statuses(result) == {
        "a": ("cancelled", "interrupted"),
        "b": ("cancelled", "interrupted"),
        "c": ("cancelled", "not started: interrupted"),
    }


def test_observer_error_cancels_executor_and_propagates() -> None:
    def observer(event: Event) -> None:
        if isinstance(event, JobFinished):
            raise RuntimeError("observer bug")

    ex = FakeExecutor()
    with pytest.raises(RuntimeError, match="observer bug"):
        run_jobs(make_jobs({"a": "", "b": ""}), ex, parallel=2, observers=[observer])
    assert ex.cancels == 1


# ---------------------------------------------------------------- events and validation


def test_events_in_order() -> None:
    jobs = make_jobs({"a": "", "b": "a"}, failing={"a": fail})
    events: list[Event] = []
    run_jobs(jobs, FakeExecutor(), parallel=1, observers=[events.append])
    assert [type(e).__name__ for e in events] == ["JobStarted", "JobFinished", "JobSkipped"]
    started, finished = events[0], events[1]
    assert isinstance(started, JobStarted)
    assert isinstance(finished, JobFinished)
    assert started.job_id == finished.job_id == "a"
    assert finished.status == "failed"


def test_next_job_is_submitted_before_observers_hear_of_the_last() -> None:
    """Observers (progress, the state database) run while the next job does."""
    jobs = make_jobs({"a": "", "b": "a"})
    ex = FakeExecutor()
    seen: list[tuple[str, str, list[str]]] = []

    def observer(event: Event) -> None:
        seen.append((type(event).__name__, event.job_id, list(ex.running)))

    run_jobs(jobs, ex, parallel=1, observers=[observer])
    assert seen == [
        ("JobStarted", "a", ["a"]),
        ("JobFinished", "a", ["b"]),  # b already submitted
        ("JobStarted", "b", ["b"]),
        ("JobFinished", "b", []),
    ]


def test_outcome_times() -> None:
    result = run_jobs(make_jobs({"a": ""}), FakeExecutor(), parallel=1)
    outcome = result["a"]
    assert outcome.duration_s == 1.5
    assert outcome.started is not None
    assert outcome.finished is not None
    assert outcome.started <= outcome.finished
    assert outcome.result == JobResult("succeeded", artifacts=["out.rpm"])


def test_cycle_is_rejected() -> None:
    with pytest.raises(CycleError, match="a -> b -> a"):
        run_jobs(make_jobs({"a": "b", "b": "a", "c": ""}), FakeExecutor(), parallel=1)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="parallel"):
        run_jobs(make_jobs({"a": ""}), FakeExecutor(), parallel=0)
    with pytest.raises(ValueError, match="key"):
        run_jobs({"x": Job("a", frozenset(), call(succeed))}, FakeExecutor(), parallel=1)


# ---------------------------------------------------------------- properties


@st.composite
def dags(draw: st.DrawFn) -> tuple[dict[str, Job], set[str]]:
    """A random DAG (names shuffled so that id order is not a topological order)."""
    n = draw(st.integers(1, 12))
    names = [f"p{i:02d}" for i in draw(st.permutations(range(n)))]
    failing = draw(st.sets(st.sampled_from(names)))
    jobs = {}
    for i, name in enumerate(names):
        deps = draw(st.sets(st.sampled_from(names[:i]))) if i else set()
        if draw(st.booleans()):
            deps.add("outside")
        weight = draw(st.sampled_from([0.5, 1.0, 2.0, 7.0]))
        fn = fail if name in failing else succeed
        jobs[name] = Job(name, frozenset(deps), call(fn), weight=weight)
    return jobs, failing


def random_pick(rng: random.Random) -> Pick:
    def pick(ex: FakeExecutor) -> list[str]:
        running = list(ex.running)
        return rng.sample(running, rng.randint(1, len(running)))

    return pick


def ancestors(jobs: Mapping[str, Job], job_id: str) -> set[str]:
    seen: set[str] = set()
    todo = [job_id]
    while todo:
        for dep in jobs[todo.pop()].dependencies:
            if dep in jobs and dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


@settings(max_examples=300, deadline=None)
@given(dags(), st.integers(1, 4), st.randoms(use_true_random=False))
def test_property_keep_going(
    dag: tuple[dict[str, Job], set[str]], parallel: int, rng: random.Random
) -> None:
    jobs, failing = dag
    ex = FakeExecutor(random_pick(rng))
    events: list[Event] = []
    result = run_jobs(jobs, ex, parallel=parallel, observers=[events.append])

    # Every job ends in exactly one status, and gets exactly one terminal event.
    assert list(result) == list(jobs)
    assert all(o.status in ("succeeded", "failed", "skipped") for o in result.values())
    terminal = [e.job_id for e in events if not isinstance(e, JobStarted)]
    assert sorted(terminal) == sorted(jobs)
    assert not result.interrupted
    assert ex.max_running <= parallel
    assert ex.cancels == 0

    # Order respects dependencies: a job starts after all its dependencies succeeded.
    position = {entry: i for i, entry in enumerate(ex.log)}
    for job_id in ex.started:
        for dep in jobs[job_id].dependencies & jobs.keys():
            assert result[dep].status == "succeeded"
            assert position[("end", dep)] < position[("start", job_id)]

    # Succeeded = jobs that do not fail and whose ancestors all succeeded.
    clean = {j for j in jobs if j not in failing and not ancestors(jobs, j) & failing}
    assert set(result.with_status("succeeded")) == clean
    runnable = {j for j in jobs if not ancestors(jobs, j) & failing}
    assert set(result.with_status("failed")) == runnable & failing
    assert set(ex.started) == runnable
    for job_id in result.with_status("skipped"):
        culprit = result[job_id].reason.removeprefix("dependency ").removesuffix(" failed")
        assert culprit in ancestors(jobs, job_id) & failing


@settings(max_examples=200, deadline=None)
@given(dags())
def test_property_serial_order_is_longest_critical_path_first(
    dag: tuple[dict[str, Job], set[str]],
) -> None:
    jobs = {
        j: Job(j, job.dependencies, call(succeed), weight=job.weight) for j, job in dag[0].items()
    }
    dependents: dict[str, list[str]] = {j: [] for j in jobs}
    for job in jobs.values():
        for dep in job.dependencies & jobs.keys():
            dependents[dep].append(job.id)

    @cache
    def critical(job_id: str) -> float:
        return jobs[job_id].weight + max((critical(d) for d in dependents[job_id]), default=0.0)

    ex = FakeExecutor()
    assert run_jobs(jobs, ex, parallel=1).ok
    done: set[str] = set()
    for job_id in ex.started:
        ready = [j for j in jobs if j not in done and jobs[j].dependencies & jobs.keys() <= done]
        assert job_id == min(ready, key=lambda j: (-critical(j), j))
        done.add(job_id)


@settings(max_examples=200, deadline=None)
@given(dags(), st.integers(1, 4), st.randoms(use_true_random=False))
def test_property_fail_fast(
    dag: tuple[dict[str, Job], set[str]], parallel: int, rng: random.Random
) -> None:
    jobs, failing = dag
    ex = FakeExecutor(random_pick(rng))
    result = run_jobs(jobs, ex, parallel=parallel, on_error=OnError.interrupt)
    assert list(result) == list(jobs)
    failed = result.with_status("failed")
    assert set(failed) <= failing
    if not failed:
        assert result.ok
        return
    assert ex.cancels == 1
    assert set(result.with_status("cancelled")) == set(ex.cancelled_running)
    # Nothing started after the first failure was seen.
    first_end = min(ex.log.index(("end", j)) for j in failed)
    assert all(what == "end" for what, _ in ex.log[first_end:])
    never_started = set(jobs) - set(ex.started)
    assert set(result.with_status("skipped")) == never_started
