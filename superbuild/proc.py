"""The one place that starts processes.

Every child gets ``stdin`` closed (``subprocess.DEVNULL``) unless the caller feeds it
input, runs in its own process group (``start_new_session=True``) so that a timeout,
Ctrl-C or a cancelled build stops the whole tree, and is given an argv list, never a
shell string built from a path or a name.

Waiting is event-driven: a wait with a timeout (a stage timeout, a kill's grace period)
sleeps on a pidfd of the child (Linux >= 5.3) and wakes the moment it exits, where
:meth:`subprocess.Popen.wait` would poll with sleeps growing to 50 ms.  (Children are
started by ``subprocess`` with ``vfork``, which ``start_new_session`` does not prevent;
``os.posix_spawn`` saves under 0.1 ms a start here and cannot set a working directory.)
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, NamedTuple

from superbuild.errors import Interrupted, SuperbuildError, ToolMissingError

#: How to install the programs superbuild runs, for the "missing tool" error.
INSTALL_HINTS = {
    "git": "install git (apt-get install git / dnf install git)",
    "rpmbuild": "install rpm-build (dnf install rpm-build / apt-get install rpm)",
    "rpmsign": "install rpm-sign (dnf install rpm-sign / apt-get install rpm)",
    "rpm": "install rpm (dnf install rpm / apt-get install rpm)",
    "createrepo_c": "install createrepo_c (dnf install createrepo_c / apt-get install createrepo-c)",
    "mock": "install mock (dnf install mock) or use --builder rpmbuild",
    "gpg": "install gnupg (apt-get install gnupg)",
    "tar": "install tar",
}


class ProcessError(SuperbuildError):
    """A command exited non-zero (or timed out) where success was required."""

    def __init__(self, result: Completed, what: str | None = None) -> None:
        self.result = result
        detail = result.stderr.decode(errors="replace").strip().splitlines()
        tail = detail[-1] if detail else ""
        how = "timed out" if result.timed_out else f"exited {result.returncode}"
        head = what or f"command {' '.join(result.args)!r}"
        super().__init__(f"{head} {how}" + (f": {tail}" if tail else ""))


class Completed(NamedTuple):
    args: tuple[str, ...]
    returncode: int
    stdout: bytes = b""
    stderr: bytes = b""
    timed_out: bool = False
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


#: Longest single ``poll()`` (milliseconds; the system call takes an int).
_MAX_POLL_MS = 2**31 - 1


def _pidfd_open(pid: int) -> int:
    """A pidfd for ``pid``, or -1 (not Linux >= 5.3, or out of descriptors)."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return -1
    try:
        fd: int = opener(pid)
    except OSError:
        return -1
    return fd


def _readable(fd: int, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``fd`` to become readable."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if poller.poll(max(0, math.ceil(min(left * 1000, _MAX_POLL_MS)))):
            return True
        if left <= 0:
            return False


class _Child(subprocess.Popen[bytes]):
    """A child whose timed waits sleep on its pidfd instead of polling.

    The pidfd is opened right after the start, before any other thread can know (and
    reap) the child, so it can never name a recycled pid; it is closed with the object,
    when no thread can be waiting on it any more.
    """

    _pidfd = -1

    def wait(self, timeout: float | None = None) -> int:
        if timeout is not None and self.returncode is None and self._pidfd >= 0:
            if not _readable(self._pidfd, timeout):
                raise subprocess.TimeoutExpired(self.args, timeout)
            timeout = None  # it has exited: reap it without polling
        return super().wait(timeout)

    def __del__(self, _close: Callable[[int], None] = os.close) -> None:
        fd, self._pidfd = self._pidfd, -1
        if fd >= 0:
            _close(fd)
        super().__del__()


_live: set[subprocess.Popen[bytes]] = set()
_live_lock = threading.Lock()
_cancelled = threading.Event()


def _popen(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    cwd: str | os.PathLike[str] | None,
    env: Mapping[str, str] | None,
    stdin: int | IO[bytes] | None,
    stdout: int | IO[bytes] | None,
    stderr: int | IO[bytes] | None,
) -> subprocess.Popen[bytes]:
    if _cancelled.is_set():
        raise Interrupted("interrupted")
    args = [os.fspath(c) for c in cmd]
    # A test double patched over subprocess.Popen (pytest-subprocess) replaces _Child too.
    popen = _Child if subprocess.Popen is _Child.__base__ else subprocess.Popen
    try:
        proc = popen(  # an argv list, never a shell string
            args,
            cwd=cwd,
            env=None if env is None else dict(env),
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        if cwd is not None and not Path(cwd).is_dir():
            raise SuperbuildError(f"working directory {os.fspath(cwd)} does not exist") from None
        tool = Path(args[0]).name
        hint = INSTALL_HINTS.get(tool, f"install {tool} or put it on PATH")
        raise ToolMissingError(f"{tool} not found: {hint}") from exc
    if isinstance(proc, _Child):
        proc._pidfd = _pidfd_open(proc.pid)
    with _live_lock:
        _live.add(proc)
        late = _cancelled.is_set()
    if late:
        # terminate_all() ran between the check above and Popen: it did not see this
        # child, so stop it here rather than let it escape.
        _stop(proc, grace=0.5)
        _forget(proc)
        raise Interrupted("interrupted")
    return proc


def _forget(proc: subprocess.Popen[bytes]) -> None:
    with _live_lock:
        _live.discard(proc)


def _kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _stop(proc: subprocess.Popen[bytes], grace: float = 2.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it has not gone after ``grace``."""
    _kill_group(proc, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace)
    # Kill whatever is left of the group (children that ignored SIGTERM).
    _kill_group(proc, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace)


def run(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    check: bool = True,
    timeout: float | None = None,
    what: str | None = None,
) -> Completed:
    """Run ``cmd`` to completion and capture its output.

    ``check`` raises :class:`ProcessError` (its message names ``what``, or the command)
    when the command fails.  On Ctrl-C the child's process group is stopped.
    """
    start = time.monotonic()
    proc = _popen(
        cmd,
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    timed_out = False
    try:
        try:
            out, err = proc.communicate(input, timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _stop(proc, grace=0.5)
            out, err = proc.communicate()
    except BaseException:
        _stop(proc)
        raise
    finally:
        _forget(proc)
    result = Completed(
        tuple(os.fspath(c) for c in cmd),
        proc.returncode,
        out,
        err,
        timed_out,
        time.monotonic() - start,
    )
    if check and not result.ok:
        raise ProcessError(result, what)
    return result


def run_logged(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    log: IO[bytes],
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> Completed:
    """Run ``cmd`` with stdout and stderr going to the open binary file ``log``."""
    start = time.monotonic()
    log.flush()
    proc = _popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    timed_out = False
    try:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _stop(proc, grace=0.5)
    except BaseException:
        _stop(proc)
        raise
    finally:
        _forget(proc)
    if _cancelled.is_set():
        raise Interrupted("interrupted")
    return Completed(
        tuple(os.fspath(c) for c in cmd),
        proc.returncode,
        timed_out=timed_out,
        duration_s=time.monotonic() - start,
    )


def spawn_pipe(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a long-lived helper (``git cat-file --batch``) with pipes on all three ends."""
    return _popen(
        cmd,
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def finish_pipe(proc: subprocess.Popen[bytes]) -> None:
    """Reap a process started by :func:`spawn_pipe`."""
    try:
        proc.wait()
    finally:
        _forget(proc)


def terminate_all(grace: float = 2.0) -> None:
    """Stop every process group started here that still runs; refuse new ones.

    Used on Ctrl-C / SIGTERM and on ``--fail-fast``: worker threads that try to start
    another step afterwards get :class:`Interrupted`.
    """
    with _live_lock:
        _cancelled.set()  # under the lock: a child registered after this sees the flag
        procs = list(_live)
    for proc in procs:
        _kill_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(max(0.0, deadline - time.monotonic()))
    for proc in procs:
        _kill_group(proc, signal.SIGKILL)


def reset_cancellation() -> None:
    """Allow new processes again (tests and long-lived library users)."""
    _cancelled.clear()


def cancelled() -> bool:
    return _cancelled.is_set()
