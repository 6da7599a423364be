"""LocalExecutor with real (small) jobs and real processes."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from superbuild import proc
from superbuild.errors import UsageError
from superbuild.executors import EXECUTORS, LocalExecutor, make_executor
from superbuild.jobs import Completion, Job, JobResult, OnError, call
from superbuild.scheduler import run_jobs

#: Generous: the suite must pass on a busy 2-core machine.
PATIENCE = 30.0


# ---------------------------------------------------------------- job functions


def run_cmd(*argv: str, session: proc.Session) -> JobResult:
    completed = session.run(argv, check=False)
    if completed.ok:
        return JobResult("succeeded")
    return JobResult("failed", f"{argv[0]} exited {completed.returncode}")


def raise_value_error(**_: object) -> JobResult:
    raise ValueError("broken")


class Tracker:
    """Counts the jobs running at once; each job waits at a barrier of ``parties``."""

    def __init__(self, parties: int) -> None:
        self.lock = threading.Lock()
        self.active = 0
        self.peak = 0
        self.barrier = threading.Barrier(parties, timeout=PATIENCE)


def tracked(tracker: Tracker, **_: object) -> JobResult:
    with tracker.lock:
        tracker.active += 1
        tracker.peak = max(tracker.peak, tracker.active)
    try:
        tracker.barrier.wait()
    finally:
        with tracker.lock:
            tracker.active -= 1
    return JobResult("succeeded")


def blocked(event: threading.Event, **_: object) -> JobResult:
    assert event.wait(PATIENCE)
    return JobResult("succeeded")


def record(into: list[str], name: str, **_: object) -> JobResult:
    into.append(name)
    return JobResult("succeeded")


def sleep_with_pidfile(pidfile: str, *, session: proc.Session) -> JobResult:
    script = 'echo $$ > "$1.tmp" && mv "$1.tmp" "$1" && exec sleep 30'
    return run_cmd("sh", "-c", script, "sh", pidfile, session=session)


def interrupt_main_thread(pidfile: str, *, session: proc.Session) -> JobResult:
    """What Ctrl-C does: SIGINT reaches the process while jobs run."""
    os.kill(os.getpid(), signal.SIGINT)
    return sleep_with_pidfile(pidfile, session=session)


# ---------------------------------------------------------------- helpers


def job(job_id: str, fn: Callable[..., JobResult], *args: object, deps: str = "") -> Job:
    return Job(job_id, frozenset(deps.split()), call(fn, *args, session=True))


def wait_all(ex: LocalExecutor, count: int) -> list[Completion]:
    done: list[Completion] = []
    while len(done) < count:
        done += ex.wait()
    return done


def read_pid(path: Path) -> int:
    deadline = time.monotonic() + PATIENCE
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)
    return int(path.read_text())


def assert_gone(pid: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def live_workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("superbuild-local-")]


# ---------------------------------------------------------------- tests


def test_results_come_back() -> None:
    with LocalExecutor(2) as ex:
        workers = ex.threads
        for i in range(20):
            ex.submit(job(f"t{i}", run_cmd, "true"), 1.0)
        ex.submit(job("f", run_cmd, "false"), 1.0)
        ex.submit(job("e", raise_value_error), 1.0)
        done = wait_all(ex, 22)
    results = {job_id: result for job_id, result, _ in done}
    assert len(results) == 22
    assert all(results[f"t{i}"] == JobResult("succeeded") for i in range(20))
    assert results["f"] == JobResult("failed", "false exited 1")
    assert isinstance(results["e"], ValueError)
    assert all(duration >= 0 for _, _, duration in done)
    assert len(workers) == 2
    assert not any(t.is_alive() for t in workers)


def test_parallelism_is_bounded() -> None:
    tracker = Tracker(parties=2)
    with LocalExecutor(2) as ex:
        for i in range(6):
            ex.submit(job(f"j{i}", tracked, tracker), 1.0)
        done = wait_all(ex, 6)
    assert all(result == JobResult("succeeded") for _, result, _ in done)
    # The barrier needs 2 jobs at once; a third worker would have raised the peak.
    assert tracker.peak == 2


def test_threads_stop_on_cancel_and_restart_on_submit() -> None:
    with LocalExecutor(3) as ex:
        first = ex.threads
        assert len(first) == 3
        ex.cancel()
        assert not any(t.is_alive() for t in first)
        assert ex.threads == ()
        ex.submit(job("a", run_cmd, "true"), 1.0)
        assert len(ex.threads) == 3
        assert [(i, r) for i, r, _ in wait_all(ex, 1)] == [("a", JobResult("succeeded"))]
    assert not live_workers()


def test_highest_priority_first() -> None:
    gate = threading.Event()
    order: list[str] = []
    with LocalExecutor(1) as ex:
        ex.submit(job("gate", blocked, gate), 0.0)
        ex.submit(job("low", record, order, "low"), 1.0)
        ex.submit(job("high", record, order, "high"), 5.0)
        ex.submit(job("mid", record, order, "mid"), 3.0)
        gate.set()
        wait_all(ex, 4)
    assert order == ["high", "mid", "low"]


def test_cancel_kills_running_child_and_drops_queued_jobs(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    never: list[str] = []
    ex = LocalExecutor(1)
    ex.submit(job("sleep", sleep_with_pidfile, str(pidfile)), 2.0)
    ex.submit(job("queued", record, never, "queued"), 1.0)
    pid = read_pid(pidfile)
    workers = ex.threads
    start = time.monotonic()
    ex.cancel()
    assert time.monotonic() - start < PATIENCE / 2  # sleep 30 was killed, not waited for
    assert_gone(pid)
    assert not any(t.is_alive() for t in workers)
    assert never == []
    # Usable again: the executor's own session was replaced.
    ex.submit(job("again", run_cmd, "true"), 1.0)
    assert [(i, r) for i, r, _ in wait_all(ex, 1)] == [("again", JobResult("succeeded"))]
    ex.close()
    with pytest.raises(RuntimeError, match="closed"):
        ex.submit(job("late", run_cmd, "true"), 1.0)


def test_exit_on_error_cancels(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    with pytest.raises(RuntimeError, match="caller bug"), LocalExecutor(2) as ex:
        ex.submit(job("sleep", sleep_with_pidfile, str(pidfile)), 1.0)
        pid = read_pid(pidfile)
        raise RuntimeError("caller bug")
    assert_gone(pid)
    assert not live_workers()


def test_registry() -> None:
    assert EXECUTORS["local"] is LocalExecutor
    ex = make_executor("local", parallel=3)
    assert isinstance(ex, LocalExecutor)
    assert ex.parallel == 3
    ex.close()
    with pytest.raises(UsageError, match="unknown executor 'nope'"):
        make_executor("nope")
    with pytest.raises(ValueError, match="parallel"):
        LocalExecutor(0)


# ---------------------------------------------------------------- with the scheduler


def test_run_jobs_with_real_processes() -> None:
    jobs = {
        "a": job("a", run_cmd, "true"),
        "b": job("b", run_cmd, "false", deps="a"),
        "c": job("c", run_cmd, "true", deps="b"),
        "d": job("d", run_cmd, "true", deps="a"),
    }
    for i in range(40):
        jobs[f"w{i}"] = job(f"w{i}", run_cmd, "true", deps="d")
    with LocalExecutor(2) as ex:
        result = run_jobs(jobs, ex, parallel=2)
    assert result["b"].status == "failed"
    assert result["b"].reason == "false exited 1"
    assert result["c"].status == "skipped"
    assert result["c"].reason == "dependency b failed"
    assert result.with_status("failed", "skipped") == ["b", "c"]
    assert not live_workers()


def test_fail_fast_with_real_processes(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    jobs = {
        "sleep": Job(
            "sleep", frozenset(), call(sleep_with_pidfile, str(pidfile), session=True), weight=10.0
        ),
        "wait": job("wait", read_pid_then_fail, str(pidfile)),
        "later": job("later", run_cmd, "true", deps="sleep"),
    }
    with LocalExecutor(2) as ex:
        result = run_jobs(jobs, ex, parallel=2, on_error=OnError.interrupt)
    assert [(j, o.status) for j, o in result.items()] == [
        ("sleep", "cancelled"),
        ("wait", "failed"),
        ("later", "skipped"),
    ]
    assert_gone(int(pidfile.read_text()))
    assert not live_workers()


def read_pid_then_fail(pidfile: str, **_: object) -> JobResult:
    read_pid(Path(pidfile))
    return JobResult("failed", "on purpose")


def test_ctrl_c_while_waiting(tmp_path: Path) -> None:
    pidfiles = [tmp_path / "pid1", tmp_path / "pid2"]
    jobs = {
        "sleep": job("sleep", sleep_with_pidfile, str(pidfiles[0])),
        "sigint": job("sigint", interrupt_main_thread, str(pidfiles[1])),
        "after": job("after", run_cmd, "true", deps="sleep sigint"),
    }
    with LocalExecutor(2) as ex:
        result = run_jobs(jobs, ex, parallel=2)
    assert result.interrupted
    assert {j: (o.status, o.reason) for j, o in result.items()} == {
        "sleep": ("cancelled", "interrupted"),
        "sigint": ("cancelled", "interrupted"),
        "after": ("cancelled", "not started: interrupted"),
    }
    for pidfile in pidfiles:  # a child that had not started yet is fine too
        if pidfile.exists():
            assert_gone(int(pidfile.read_text()))
    assert not live_workers()
