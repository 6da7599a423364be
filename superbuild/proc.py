"""The one place that starts processes.

Every child gets ``stdin`` closed (``subprocess.DEVNULL``) unless the caller feeds it
input, runs in its own process group (``start_new_session=True``) so that a timeout,
Ctrl-C or a cancelled build stops the whole tree, and is given an argv list, never a
shell string built from a path or a name.

Two ways to run a command:

- :func:`run` (module level): a short command of superbuild's own (git plumbing,
  ``createrepo_c``), stopped if the caller is interrupted.  Nothing can cancel it from
  outside, and nothing else is remembered about it.
- :class:`Session`: the processes of one build run (or one job on a remote worker).
  :meth:`Session.run` and :meth:`Session.run_logged` start children that
  :meth:`Session.cancel` stops together (``--fail-fast``, Ctrl-C); once cancelled the
  session refuses new children with :class:`~superbuild.errors.Interrupted`.  Each run
  has its own session, so cancelling one never affects another, nor the commands
  superbuild runs after it (the final ``createrepo_c`` of a ``--fail-fast`` run).

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
from collections.abc import Callable, Iterator, Mapping, Sequence
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


def reason_line(stderr: bytes) -> str:
    """The line of a command's stderr that says why it failed.

    Tools such as git write the cause first (``fatal: 'x' does not appear to be a git
    repository``) and generic advice last (``Please make sure ... and the repository
    exists.``): the first line that is not blank, a ``hint:`` or a ``warning:``; empty if
    there is none.
    """
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines()]
    lines = [line for line in lines if line]
    for line in lines:
        if not line.startswith(("hint:", "warning:")):
            return line
    return lines[0] if lines else ""


class ProcessError(SuperbuildError):
    """A command exited non-zero (or timed out) where success was required."""

    def __init__(self, result: Completed, what: str | None = None) -> None:
        self.result = result
        tail = reason_line(result.stderr)
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


def _spawn(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    cwd: str | os.PathLike[str] | None,
    env: Mapping[str, str] | None,
    stdin: int | IO[bytes] | None,
    stdout: int | IO[bytes] | None,
    stderr: int | IO[bytes] | None,
) -> subprocess.Popen[bytes]:
    args = [os.fspath(c) for c in cmd]
    # A test double patched over subprocess.Popen (pytest-subprocess) replaces _Child too.
    popen = _Child if subprocess.Popen is _Child.__base__ else subprocess.Popen
    try:
        child = popen(  # an argv list, never a shell string
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
    if isinstance(child, _Child):
        child._pidfd = _pidfd_open(child.pid)
    return child


def _kill_group(child: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, sig)


def _stop(child: subprocess.Popen[bytes], grace: float = 2.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it has not gone after ``grace``."""
    _kill_group(child, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(grace)
    # Kill whatever is left of the group (children that ignored SIGTERM).
    _kill_group(child, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(grace)


#: How long output is still read after the main child exited (a daemon it left behind
#: may hold the pipes open for ever).
_DRAIN_S = 0.5

#: The variable that marks the processes of one logged step (and all they start).
STEP_MARKER = "_SUPERBUILD_STEP"  # not SUPERBUILD_*: those are the documented step variables

_step_counter = iter(range(1, 2**62))


def start_time(pid: int) -> str:
    """The start time of process ``pid`` (``/proc/<pid>/stat`` field 22), ``""`` if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rpartition(")")[2].split()[19]


def owner_tag() -> str:
    """This process as ``p<pid>t<start time>``: put in the name of a temporary folder, it
    lets a later run tell (:func:`owner_alive`) whether the folder's owner still runs."""
    pid = os.getpid()
    return f"p{pid}t{start_time(pid) or 'x'}"


def owner_alive(pid: int, start: str) -> bool:
    """Whether process ``pid`` runs and started at ``start`` (``x``: unknown, any start)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    now = start_time(pid)
    return not now or start in (now, "x")


def marked_pids(name: str, value: str) -> list[int]:
    """The processes whose environment carries ``name=value`` (Linux ``/proc``; else none)."""
    needle = f"{name}={value}".encode()
    pids: list[int] = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with Path(f"/proc/{entry.name}/environ").open("rb") as fh:
                    environ = fh.read()
            except OSError:
                continue
            if needle in environ.split(b"\0"):
                pids.append(int(entry.name))
    return [pid for pid in pids if pid != os.getpid()]


def kill_marked(name: str, value: str, grace: float = 0.5) -> int:
    """SIGTERM every process marked ``name=value``, SIGKILL those left after ``grace``.

    Returns how many processes were found.
    """
    seen: set[int] = set()
    deadline = time.monotonic() + grace
    empty = 0
    # Scan again until nothing is found twice in a row: a process may be between fork
    # and exec (its environment unreadable for a moment) when the first scan runs.
    while empty < 2:
        pids = marked_pids(name, value)
        if not pids:
            if not seen:
                break  # the common case: the step left nothing behind
            empty += 1
        else:
            empty = 0
        sig = signal.SIGTERM if time.monotonic() < deadline else signal.SIGKILL
        for pid in pids:
            if pid in seen and sig == signal.SIGTERM:
                continue
            seen.add(pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        if empty < 2:
            time.sleep(0.02)
    return len(seen)


def _captured(
    child: subprocess.Popen[bytes],
    cmd: Sequence[str | os.PathLike[str]],
    input: bytes | None,
    timeout: float | None,
    start: float,
) -> Completed:
    """Wait for ``child`` (at most ``timeout``) and collect its output.

    Output is read until the pipes close, but never longer than :data:`_DRAIN_S` after
    the child itself exited: a descendant that keeps stdout or stderr open (``setsid
    sleep 45 &``) cannot hold the caller, and the timeout holds.
    """
    timed_out = False
    deadline = None if timeout is None else start + timeout
    exited_at: float | None = None
    out: bytes | None = b""
    err: bytes | None = b""
    try:
        while True:
            now = time.monotonic()
            if exited_at is None and child.poll() is not None:
                exited_at = now
            step = 0.1 if exited_at is None else max(0.0, exited_at + _DRAIN_S - now)
            if deadline is not None and exited_at is None:
                step = min(step, max(0.0, deadline - now))
            try:
                out, err = child.communicate(input, step)
                break
            except subprocess.TimeoutExpired as exc:
                out, err = exc.output, exc.stderr
                now = time.monotonic()
                if exited_at is not None and now >= exited_at + _DRAIN_S:
                    break
                if exited_at is None and deadline is not None and now >= deadline:
                    timed_out = True
                    _stop(child, grace=0.5)
                    exited_at = time.monotonic()
    except BaseException:
        _stop(child)
        raise
    finally:
        for pipe in (child.stdout, child.stderr, child.stdin):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
    return Completed(
        tuple(os.fspath(c) for c in cmd),
        child.returncode if child.returncode is not None else -signal.SIGKILL,
        out or b"",
        err or b"",
        timed_out,
        time.monotonic() - start,
    )


def _logged(
    child: subprocess.Popen[bytes],
    cmd: Sequence[str | os.PathLike[str]],
    timeout: float | None,
    start: float,
) -> Completed:
    timed_out = False
    try:
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _stop(child, grace=0.5)
    except BaseException:
        _stop(child)
        raise
    return Completed(
        tuple(os.fspath(c) for c in cmd),
        child.returncode,
        timed_out=timed_out,
        duration_s=time.monotonic() - start,
    )


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
    """Run ``cmd`` to completion and capture its output (no session: see the module doc).

    ``check`` raises :class:`ProcessError` (its message names ``what``, or the command)
    when the command fails.  On Ctrl-C the child's process group is stopped.
    """
    result = _run_captured(_spawn, cmd, cwd=cwd, env=env, input=input, timeout=timeout)
    if check and not result.ok:
        raise ProcessError(result, what)
    return result


def _run_captured(
    spawn: Callable[..., subprocess.Popen[bytes]],
    cmd: Sequence[str | os.PathLike[str]],
    *,
    cwd: str | os.PathLike[str] | None,
    env: Mapping[str, str] | None,
    input: bytes | None,
    timeout: float | None,
    done: Callable[[subprocess.Popen[bytes]], None] | None = None,
) -> Completed:
    """Start ``cmd`` with ``spawn`` (stdin closed unless there is input), capture its
    output; ``done(child)`` is called however it ends."""
    start = time.monotonic()
    child = spawn(
        cmd,
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        return _captured(child, cmd, input, timeout, start)
    finally:
        if done is not None:
            done(child)


class Session:
    """The processes of one build run, stopped together by :meth:`cancel`.

    ``env`` is added to the environment of every child (the Dask worker marks a job's
    processes with it, see :mod:`superbuild.worker`).  Thread-safe: worker threads start
    children while the scheduler's thread may cancel.
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = dict(env or {})
        self._live: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._watchdog_fd = -1

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` ran: new children are refused."""
        return self._cancelled.is_set()

    @property
    def running(self) -> int:
        """How many children of the session are running now."""
        with self._lock:
            return len(self._live)

    def _env(self, env: Mapping[str, str] | None) -> Mapping[str, str] | None:
        if not self.env:
            return env
        return {**(os.environ if env is None else env), **self.env}

    def _start(
        self,
        cmd: Sequence[str | os.PathLike[str]],
        *,
        cwd: str | os.PathLike[str] | None,
        env: Mapping[str, str] | None,
        stdin: int | IO[bytes] | None,
        stdout: int | IO[bytes] | None,
        stderr: int | IO[bytes] | None,
    ) -> subprocess.Popen[bytes]:
        if self._cancelled.is_set():
            raise Interrupted("interrupted")
        child = _spawn(cmd, cwd=cwd, env=self._env(env), stdin=stdin, stdout=stdout, stderr=stderr)
        with self._lock:
            self._live.add(child)
            late = self._cancelled.is_set()
        if late:
            # cancel() ran between the check above and the start: it did not see this
            # child, so stop it here rather than let it escape.
            _stop(child, grace=0.5)
            self._forget(child)
            raise Interrupted("interrupted")
        return child

    def _forget(self, child: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._live.discard(child)

    def run(
        self,
        cmd: Sequence[str | os.PathLike[str]],
        *,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        input: bytes | None = None,
        check: bool = True,
        timeout: float | None = None,
        what: str | None = None,
    ) -> Completed:
        """:func:`run`, as a child of this session."""
        result = _run_captured(
            self._start, cmd, cwd=cwd, env=env, input=input, timeout=timeout, done=self._forget
        )
        if self._cancelled.is_set():
            raise Interrupted("interrupted")
        if check and not result.ok:
            raise ProcessError(result, what)
        return result

    def run_logged(
        self,
        cmd: Sequence[str | os.PathLike[str]],
        *,
        log: IO[bytes],
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Completed:
        """Run ``cmd`` with stdout and stderr going to the open binary file ``log``.

        Raises :class:`~superbuild.errors.Interrupted` when the session was cancelled
        before or while it ran.
        """
        start = time.monotonic()
        log.flush()
        step = f"{os.getpid()}-{next(_step_counter)}"
        env = {**(os.environ if env is None else env), STEP_MARKER: step}
        child = self._start(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            result = _logged(child, cmd, timeout, start)
        finally:
            self._forget(child)
            # Daemons the step left behind (``sleep 600 &``, ``setsid ...``) end with it.
            left = kill_marked(STEP_MARKER, step)
            if left:
                with contextlib.suppress(OSError, ValueError):
                    log.write(f"# stopped {left} process(es) the step left running\n".encode())
                    log.flush()
        if self._cancelled.is_set():
            raise Interrupted("interrupted")
        return result

    def start_watchdog(self, name: str = "_SUPERBUILD_RUN") -> None:
        """Mark every later child with ``name=<unique>`` and start :mod:`superbuild.reaper`,
        which stops all marked processes once this process dies or :meth:`stop_watchdog`
        runs: nothing the run started outlives it, even after a SIGKILL."""
        import sys

        value = f"{os.getpid()}-{time.time_ns()}"
        read_end, write_end = os.pipe()
        os.set_inheritable(write_end, False)
        try:
            env = {k: v for k, v in os.environ.items() if k != name}
            self._watchdog = _spawn(
                [sys.executable, "-m", "superbuild.reaper", name, value],
                cwd=None,
                env=env,
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                stderr=None,
            )
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        self._watchdog_fd = write_end
        self.env[name] = value

    def stop_watchdog(self) -> None:
        """Close the watchdog's pipe: it stops the run's leftover processes and exits."""
        fd, self._watchdog_fd = self._watchdog_fd, -1
        if fd >= 0:
            os.close(fd)
        if self._watchdog is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._watchdog.wait(10)
            self._watchdog = None

    def cancel(self, grace: float = 2.0) -> None:
        """Stop every process group of the session that still runs; refuse new ones.

        Used on Ctrl-C / SIGTERM and on ``--fail-fast``: threads that try to start
        another step afterwards get :class:`~superbuild.errors.Interrupted`.  Can be
        called again (a child whose start raced with the first call is stopped then).
        """
        with self._lock:
            self._cancelled.set()  # under the lock: a child registered after this sees it
            children = list(self._live)
        for child in children:
            _kill_group(child, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(max(0.0, deadline - time.monotonic()))
        for child in children:
            _kill_group(child, signal.SIGKILL)


@contextlib.contextmanager
def session_watchdog(session: Session) -> Iterator[Session]:
    """Stop ``session``'s watchdog (and so its leftover processes) on leaving."""
    try:
        yield session
    finally:
        session.stop_watchdog()
