"""superbuild.proc: the guarantees of every child, and event-driven timed waits."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from superbuild import proc
from superbuild.errors import Interrupted

PY = sys.executable


def test_stdin_closed_own_session_argv_list(tmp_path: Path) -> None:
    code = "import os, sys; print(sys.stdin.read() == '', os.getsid(0) == os.getpid())"
    result = proc.run([PY, "-c", code])
    assert result.stdout.split() == [b"True", b"True"]
    log = tmp_path / "log"
    with log.open("wb") as fh:
        done = proc.Session().run_logged([PY, "-c", code], log=fh, timeout=60)
    assert done.ok
    assert log.read_text().split() == ["True", "True"]


def test_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    script = 'sleep 60 & echo $! > "$1.tmp" && mv "$1.tmp" "$1"; wait'
    start = time.monotonic()
    session = proc.Session()
    with (tmp_path / "log").open("wb") as fh:
        done = session.run_logged(["sh", "-c", script, "sh", str(pidfile)], log=fh, timeout=1.0)
    assert done.timed_out
    assert not done.ok
    assert time.monotonic() - start < 20
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while True:  # SIGKILLed; its parent (init or a subreaper) reaps it soon
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        status = Path(f"/proc/{grandchild}/stat")
        if status.exists() and status.read_text().split()[2] == "Z":
            break
        assert time.monotonic() < deadline, "the group's other process survived the timeout"
        time.sleep(0.05)
    assert session.running == 0


def test_captured_run_with_timeout() -> None:
    result = proc.run(["sh", "-c", "echo out; echo err >&2"], timeout=60)
    assert (result.stdout, result.stderr, result.timed_out) == (b"out\n", b"err\n", False)
    result = proc.run(["sleep", "30"], timeout=0.2, check=False)
    assert result.timed_out


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="no pidfd on this platform")
def test_input_to_a_child_slower_than_one_wait_step() -> None:
    # cat-file --batch over 10,000 manifests reads its input for longer than the capture
    # loop's step: the input is fed once, the rest of the output still collected.
    data = b"".join(b"line %d\n" % i for i in range(100_000))
    done = proc.run(["sh", "-c", "sleep 0.3; cat"], input=data)
    assert done.stdout == data


def test_timed_wait_wakes_at_exit_and_leaks_no_descriptor(tmp_path: Path) -> None:
    fds = sum(1 for _ in Path("/proc/self/fd").iterdir())
    session = proc.Session()
    with (tmp_path / "log").open("wb") as fh:
        start = time.monotonic()
        # A timeout far longer than the child: the wait must end when it exits.
        assert session.run_logged(["sleep", "0.3"], log=fh, timeout=600).ok
        assert time.monotonic() - start < 10
        for _ in range(20):
            assert session.run_logged(["true"], log=fh, timeout=60).ok
    assert sum(1 for _ in Path("/proc/self/fd").iterdir()) == fds


def test_cancel_and_the_runner_both_wait_for_one_child(tmp_path: Path) -> None:
    """cancel() waits (up to its grace) for the child the runner thread waits for too:
    both return as soon as it exits."""
    session = proc.Session()
    results: list[proc.Completed | BaseException] = []

    def job() -> None:
        try:
            with (tmp_path / "log").open("wb") as fh:
                script = "trap '' TERM; sleep 0.5"  # ignores SIGTERM, exits by itself
                results.append(session.run_logged(["sh", "-c", script], log=fh, timeout=600))
        except BaseException as exc:
            results.append(exc)

    worker = threading.Thread(target=job)
    worker.start()
    deadline = time.monotonic() + 10
    while not session.running:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    start = time.monotonic()
    session.cancel(grace=60)
    worker.join(30)
    assert time.monotonic() - start < 20
    assert len(results) == 1 and isinstance(results[0], Interrupted)


def test_cancel_stops_a_waiting_run_of_its_session_only(tmp_path: Path) -> None:
    session, other = proc.Session(), proc.Session()
    results: list[proc.Completed | BaseException] = []

    def job() -> None:
        try:
            with (tmp_path / "log").open("wb") as fh:
                results.append(session.run_logged(["sleep", "60"], log=fh, timeout=600))
        except BaseException as exc:
            results.append(exc)

    worker = threading.Thread(target=job)
    worker.start()
    deadline = time.monotonic() + 10
    while not session.running:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    start = time.monotonic()
    session.cancel()
    worker.join(30)
    assert time.monotonic() - start < 10
    assert len(results) == 1
    assert isinstance(results[0], Interrupted)
    assert session.running == 0
    # A cancelled session refuses new children; another session, and plain runs, do not.
    with (tmp_path / "log").open("wb") as fh, pytest.raises(Interrupted):
        session.run_logged(["true"], log=fh)
    with (tmp_path / "log").open("wb") as fh:
        assert other.run_logged(["true"], log=fh).ok
    assert proc.run(["true"]).ok


def test_session_marks_its_children() -> None:
    session = proc.Session(env={"SUPERBUILD_TEST_MARK": "x1"})
    out = session.run(["sh", "-c", 'echo "$SUPERBUILD_TEST_MARK"']).stdout
    assert out == b"x1\n"


def test_a_failed_command_names_its_reason_not_the_advice() -> None:
    script = "echo 'fatal: no such remote' >&2; echo 'Please make sure it exists.' >&2; exit 128"
    with pytest.raises(proc.ProcessError) as info:
        proc.run(["sh", "-c", script], what="git fetch origin")
    assert str(info.value) == "git fetch origin exited 128: fatal: no such remote"


def _alive(marker: str) -> list[int]:
    return proc.marked_pids("SB_TEST_MARK", marker)


def _wait_gone(marker: str, bound: float = 10.0) -> list[int]:
    end = time.monotonic() + bound
    while (left := _alive(marker)) and time.monotonic() < end:
        time.sleep(0.05)
    return left


def test_a_daemon_holding_the_pipes_does_not_hold_the_timeout(tmp_path: Path) -> None:
    mark = f"pipe-{os.getpid()}-{time.monotonic_ns()}"
    env = {**os.environ, "SB_TEST_MARK": mark}
    try:
        start = time.monotonic()
        done = proc.run(
            ["sh", "-c", "echo hi; setsid sleep 45 &"], env=env, check=False, timeout=30
        )
        assert time.monotonic() - start < 20  # not the 45 s the daemon lives
        assert done.ok
        assert done.stdout == b"hi\n"
        assert not done.timed_out
        # The daemon left the process group, and was stopped when the command ended.
        assert _wait_gone(mark) == []
    finally:
        proc.kill_marked("SB_TEST_MARK", mark)


def test_a_timeout_holds_when_a_descendant_keeps_the_pipes(tmp_path: Path) -> None:
    mark = f"to-{os.getpid()}-{time.monotonic_ns()}"
    env = {**os.environ, "SB_TEST_MARK": mark}
    try:
        start = time.monotonic()
        done = proc.run(["sh", "-c", "setsid sleep 45 & sleep 45"], env=env, check=False, timeout=1)
        assert time.monotonic() - start < 20
        assert done.timed_out
        assert _wait_gone(mark) == []  # the daemon too, not only the process group
    finally:
        proc.kill_marked("SB_TEST_MARK", mark)


def test_daemons_a_users_captured_command_leaves_are_stopped() -> None:
    """``Session.run(cap=...)`` (the hook's ``verify``) stops what the command left running."""
    mark = f"cap-{os.getpid()}-{time.monotonic_ns()}"
    env = {**os.environ, "SB_TEST_MARK": mark}
    try:
        done = proc.Session().run(
            ["sh", "-c", "setsid sleep 600 & nohup sleep 600 >/dev/null 2>&1 & echo ok"],
            env=env,
            cap=1 << 16,
        )
        assert done.stdout == b"ok\n"
        assert _wait_gone(mark) == []
    finally:
        proc.kill_marked("SB_TEST_MARK", mark)


@pytest.mark.parametrize(
    "script",
    [
        "sleep 600 &",
        "setsid sleep 600 &",
        "nohup sleep 600 >/dev/null 2>&1 &",
        "setsid sleep 600 & exit 3",
    ],
)
def test_daemons_a_logged_step_leaves_are_stopped(tmp_path: Path, script: str) -> None:
    mark = f"daemon-{os.getpid()}-{time.monotonic_ns()}"
    env = {**os.environ, "SB_TEST_MARK": mark}
    log = tmp_path / "log"
    try:
        with log.open("wb") as fh:
            proc.Session().run_logged(["sh", "-c", script], log=fh, env=env, timeout=60)
        assert _wait_gone(mark) == []
        assert "left running" in log.read_text()
    finally:
        proc.kill_marked("SB_TEST_MARK", mark)


def test_input_to_a_command_that_takes_longer_than_a_poll_step() -> None:
    """The input is sent once: the waits after the first poll step must not resend it
    (``communicate`` raised "Cannot send input after starting communication")."""
    done = proc.run(["sh", "-c", "sleep 0.5; cat"], input=b"hello\n", timeout=30)
    assert done.stdout == b"hello\n"


def test_a_census_limits_the_marker_scan_to_processes_started_since(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The scan after a step reads only the processes started after the census taken
    before it; when pids may have been reused since (pid_max too small for the tasks
    created), it reads them all again."""
    import subprocess

    env = {**os.environ, "SB_TEST_MARK": "census"}
    spawn = [sys.executable, "-c", "import time; time.sleep(30)"]
    old = subprocess.Popen(spawn, env=env, stdin=subprocess.DEVNULL)
    try:
        before = proc.census()
        assert before is not None and old.pid in before.pids
        new = subprocess.Popen(spawn, env=env, stdin=subprocess.DEVNULL)
        try:
            assert proc.marked_pids("SB_TEST_MARK", "census", before) == [new.pid]
            assert sorted(proc.marked_pids("SB_TEST_MARK", "census")) == sorted([old.pid, new.pid])
            monkeypatch.setattr(proc, "_pid_max", lambda: 300)  # the counter may have come round
            assert sorted(proc.marked_pids("SB_TEST_MARK", "census", before)) == sorted(
                [old.pid, new.pid]
            )
        finally:
            new.kill()
            new.wait()
    finally:
        old.kill()
        old.wait()
