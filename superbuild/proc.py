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

Output is bounded: a logged step whose log is a :class:`CappedLog` (every stage log,
``SUPERBUILD_LOG_CAP``, see :func:`log_cap`) is read through a pipe and keeps its head and
tail; :meth:`Session.run` with ``cap`` keeps at most that much of a user command's stdout
and stderr each.  Module-level :func:`run` keeps everything (git's output must stay whole).

Waiting is event-driven: a wait with a timeout (a stage timeout, a kill's grace period)
sleeps on a pidfd of the child (Linux >= 5.3) and wakes the moment it exits, where
:meth:`subprocess.Popen.wait` would poll with sleeps growing to 50 ms.  (Children are
started by ``subprocess`` with ``vfork``, which ``start_new_session`` does not prevent;
``os.posix_spawn`` saves under 0.1 ms a start here and cannot set a working directory.)
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import select
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, NamedTuple

from superbuild.errors import Interrupted, SuperbuildError, ToolMissingError, UsageError

if TYPE_CHECKING:
    from superbuild.prestart import Started

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


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


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
    if not pid_alive(pid):
        return False
    now = start_time(pid)
    return not now or start in (now, "x")


class Census(NamedTuple):
    """The processes of this ``/proc`` at a moment, to tell the ones started after it.

    ``pids``: the process ids listed; ``forks``: the tasks created since boot (``processes``
    of ``/proc/stat``, threads included); ``tasks``: the tasks then (``/proc/loadavg``)."""

    pids: frozenset[int]
    forks: int
    tasks: int


def census() -> Census | None:
    """The processes now (three reads of ``/proc``); None where ``/proc`` cannot tell."""
    try:
        # The counters first: a process started while the folder is listed is then
        # counted as created since (the safe side), never as one already there.
        stat = _read_proc("/proc/stat")
        loadavg = _read_proc("/proc/loadavg").split()
        names = os.listdir("/proc")  # noqa: PTH208 - names only, without pathlib
        forks = next(
            int(line.split()[1]) for line in stat.splitlines() if line.startswith(b"processes ")
        )
        tasks = int(loadavg[3].split(b"/")[1])
    except (OSError, StopIteration, IndexError, ValueError):
        return None
    return Census(frozenset(int(n) for n in names if n.isdigit()), forks, tasks)


def _pid_max() -> int:
    try:
        return int(_read_proc("/proc/sys/kernel/pid_max"))
    except (OSError, ValueError):
        return 0


def _started_since(before: Census, now: Census) -> frozenset[int] | None:
    """The processes of ``now`` started after ``before``, or None when pids may have been
    reused in between.

    Linux hands out pids in increasing order, wrapping at ``pid_max`` (to 300), skipping
    those in use; a pid listed before can be handed out again only once the counter came
    round past every other one.  It moves at most one place per task created and one per
    task in use it skips, so while twice the tasks created since, plus those that
    existed then, stay below ``pid_max`` less the 300 reserved, it cannot have come round:
    every process started since has a pid not listed before.
    """
    forks = now.forks - before.forks
    if forks < 0 or 2 * forks + before.tasks + 300 >= _pid_max():
        return None
    return now.pids - before.pids


def marked_pids(name: str, value: str, since: Census | None = None) -> list[int]:
    """The processes whose environment carries ``name=value`` (Linux ``/proc``; else none).

    With ``since`` (a :func:`census` taken before the processes that may carry the mark
    were started), only the processes started after it are read, when that can be told
    (:func:`_started_since`).  Read with plain ``os`` calls: it runs after every logged
    step, once per process of the machine, so pathlib's per-call cost would be most of it.
    """
    needle = f"\0{name}={value}\0".encode()
    me = os.getpid()
    pids: list[int] = []
    now = census() if since is not None else None
    fresh = _started_since(since, now) if since is not None and now is not None else None
    if fresh is not None:
        entries = [str(pid) for pid in sorted(fresh)]
    else:
        try:
            entries = os.listdir("/proc")  # noqa: PTH208 - names only, without pathlib
        except OSError:
            return pids
    for entry in entries:
        if not entry.isdigit():
            continue
        environ = _environ(entry)
        if environ is not None and needle in b"\0" + environ + b"\0" and int(entry) != me:
            pids.append(int(entry))
    return pids


def _read_proc(path: str) -> bytes:
    """A whole ``/proc`` file (its size reads 0: read until the end); OSError if gone."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _environ(pid: str) -> bytes | None:
    """``/proc/<pid>/environ``; re-read for a moment while a process is in ``execve``
    (its environment reads empty then), never for kernel threads or zombies."""
    for attempt in range(6):
        try:
            environ = _read_proc(f"/proc/{pid}/environ")
        except OSError:
            return None
        if environ:
            return environ
        if attempt == 0:
            try:
                stat = _read_proc(f"/proc/{pid}/stat")
            except OSError:
                return None
            fields = stat.rsplit(b")", 1)[-1].split()
            if fields[0] in (b"Z", b"X") or int(fields[1]) in (0, 2):
                return None  # a zombie, or a kernel thread (kthreadd's child)
        time.sleep(0.002)
    return None


def kill_marked(name: str, value: str, grace: float = 0.5, since: Census | None = None) -> int:
    """SIGTERM every process marked ``name=value``, SIGKILL those left after ``grace``.

    ``since``: a :func:`census` from before the first marked process started (fewer
    processes to read, see :func:`marked_pids`).  Returns how many processes were found.
    """
    seen: set[int] = set()
    deadline = time.monotonic() + grace
    empty = 0
    # Scan again until nothing is found twice in a row: a process may be between fork
    # and exec (its environment unreadable for a moment) when the first scan runs.
    while empty < 2:
        pids = marked_pids(name, value, since)
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


#: The variable that sets the log cap (bytes; K, M, G suffixes; 0: no cap).
LOG_CAP_ENV = "SUPERBUILD_LOG_CAP"
#: The log cap when :data:`LOG_CAP_ENV` is not set: 64 MiB.
DEFAULT_LOG_CAP = 64 * 1024 * 1024

_SIZE = re.compile(r"(\d+)\s*([KMG]?)(?:I?B)?", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}

#: The most read from a pipe at once.
_CHUNK = 1 << 16


def log_cap(environ: Mapping[str, str] | None = None) -> int:
    """The log cap in bytes from :data:`LOG_CAP_ENV` (0: no cap); a bad value is a
    :class:`~superbuild.errors.UsageError` naming the variable."""
    value = (os.environ if environ is None else environ).get(LOG_CAP_ENV, "").strip()
    if not value:
        return DEFAULT_LOG_CAP
    match = _SIZE.fullmatch(value)
    if match is None:
        raise UsageError(
            f"{LOG_CAP_ENV}={value!r} is not a size: give a number of bytes, "
            "optionally with a K, M or G suffix (0 for no cap)"
        )
    return int(match[1]) * _UNITS[match[2].upper()]


def cut_line(cut: int, cap: int) -> bytes:
    """The line that stands for the ``cut`` bytes a log or a capture left out."""
    return f"[... superbuild: {cut} bytes cut (log cap {cap} bytes, {LOG_CAP_ENV}) ...]\n".encode()


class _Tail:
    """The last ``size`` bytes of a stream, in a ring of chunks (never much more in memory)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._chunks: deque[bytes] = deque()
        self._held = 0

    def add(self, data: bytes) -> None:
        if self.size <= 0:
            return
        if len(data) >= self.size:
            self._chunks.clear()
            self._held = 0
            data = data[-self.size :]
        self._chunks.append(data)
        self._held += len(data)
        while self._held - len(self._chunks[0]) >= self.size:
            self._held -= len(self._chunks.popleft())

    def value(self) -> bytes:
        data = b"".join(self._chunks)
        return data[-self.size :] if len(data) > self.size else data


def _joined(head: bytes, cut: int, cap: int, tail: bytes) -> bytes:
    """``head``, then the cut line (on a line of its own), then ``tail``."""
    gap = b"" if not head or head.endswith(b"\n") else b"\n"
    return head + gap + cut_line(cut, cap) + tail


class _Capped:
    """Captured output kept to ``cap`` bytes: the first half and the last half of it,
    with :func:`cut_line` between them when something was left out."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._head = bytearray()
        self._head_size = cap // 2
        self._tail = _Tail(cap - self._head_size)
        self.total = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self._head_size - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
        if data:
            self._tail.add(data)

    def value(self) -> bytes:
        tail = self._tail.value()
        cut = self.total - len(self._head) - len(tail)
        if cut <= 0:
            return bytes(self._head) + tail
        return _joined(bytes(self._head), cut, self.cap, tail)


class CappedLog(io.FileIO):
    """A log file that keeps at most ``cap`` bytes of what is written to it (0: all).

    Writes go to the file as they come until the cap is reached.  Beyond it the file
    keeps the head (the first half of the cap) and the last half of the cap is held in a
    bounded ring: :func:`cut_line` and that tail are written after the head at most every
    :data:`TAIL_SYNC_S` seconds while writes come, and at :meth:`close`; so the log of a
    run that was SIGKILLed still ends with the last lines the step wrote (up to that
    long before the kill).  A step that logs through it is never stopped for writing a lot
    (:meth:`Session.run_logged` reads its output through a pipe and writes it here).
    """

    #: How often the tail held in memory is written to the file, at most.
    TAIL_SYNC_S = 1.0

    def __init__(self, path: str | os.PathLike[str], cap: int) -> None:
        super().__init__(path, "w+")
        self.cap = cap
        self.written = 0  # bytes given to write()
        self._head = cap // 2
        self._tail: _Tail | None = None  # once over the cap
        self._synced = 0.0

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        data = bytes(data)
        size = len(data)
        if self._tail is not None:
            self._tail.add(data)
            self.written += size
            if time.monotonic() - self._synced >= self.TAIL_SYNC_S:
                self._sync_tail()
            return size
        if self.cap <= 0 or self.written + size <= self.cap:
            _write_all(self, data)
        else:
            # Over the cap now: the file keeps its head, the rest goes to the ring.
            if self.written < self._head:
                first = self._head - self.written
                _write_all(self, data[:first])
                self.written += first
                data = data[first:]
            self._tail = _Tail(self.cap - self._head)
            past_head = self.written - self._head
            if past_head > 0:
                self._tail.add(os.pread(self.fileno(), past_head, self._head))
            self._tail.add(data)
            self.seek(self._head)
            self.truncate()
            self.written += len(data)
            return size
        self.written += size
        return size

    def _sync_tail(self) -> None:
        """Write the cut line and the tail after the head (replacing the previous ones)."""
        assert self._tail is not None
        tail = self._tail.value()
        cut = self.written - self._head - len(tail)
        last = os.pread(self.fileno(), 1, self._head - 1) if self._head else b""
        rest = _joined(last, cut, self.cap, tail)[len(last) :]
        os.ftruncate(self.fileno(), self._head + len(rest))
        view, offset = memoryview(rest), self._head
        while view:
            done = os.pwrite(self.fileno(), view, offset)
            view, offset = view[done:], offset + done
        self._synced = time.monotonic()

    def close(self) -> None:
        if not self.closed and self._tail is not None:
            self._sync_tail()
            self._tail = None
        super().close()


def _write_all(raw: io.FileIO, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[io.FileIO.write(raw, view) or 0 :]


def _pump(
    child: subprocess.Popen[bytes],
    sinks: Mapping[int, Callable[[bytes], object]],
    deadline: float | None,
) -> bool:
    """Read the pipes ``sinks`` names (fd -> what takes the data) while ``child`` runs;
    stop it at ``deadline``.  Returns whether it timed out.

    As in :func:`_captured`, the pipes are read at most :data:`_DRAIN_S` after the child
    exited: a descendant holding them open cannot hold the caller.
    """
    poller = select.poll()
    open_fds = set(sinks)
    for fd in open_fds:
        poller.register(fd, select.POLLIN)
    pidfd = getattr(child, "_pidfd", -1)
    if pidfd >= 0:
        poller.register(pidfd, select.POLLIN)
    exited_at: float | None = None
    timed_out = False
    while True:
        now = time.monotonic()
        if exited_at is None and child.poll() is not None:
            exited_at = now
            if pidfd >= 0:
                poller.unregister(pidfd)
                pidfd = -1
        wait: float | None
        if exited_at is not None:
            if not open_fds or now >= exited_at + _DRAIN_S:
                return timed_out
            wait = exited_at + _DRAIN_S - now
        else:
            wait = None if pidfd >= 0 else 0.05
            if deadline is not None:
                left = deadline - now
                if left <= 0:
                    timed_out = True
                    _stop(child, grace=0.5)
                    continue
                wait = left if wait is None else min(wait, left)
            if not open_fds:  # the output is closed, the child still runs
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(wait)
                continue
        ms = -1 if wait is None else math.ceil(min(wait * 1000, _MAX_POLL_MS))
        for fd, _ in poller.poll(ms):
            if fd not in open_fds:
                continue
            data = os.read(fd, _CHUNK)
            if data:
                sinks[fd](data)
            else:
                open_fds.discard(fd)
                poller.unregister(fd)


def _drain(fd: int, sink: Callable[[bytes], object]) -> None:
    """Read what is left in pipe ``fd`` without waiting for more."""
    os.set_blocking(fd, False)
    with contextlib.suppress(BlockingIOError, OSError):
        while data := os.read(fd, _CHUNK):
            sink(data)


def _captured_capped(
    child: subprocess.Popen[bytes],
    cmd: Sequence[str | os.PathLike[str]],
    timeout: float | None,
    start: float,
    cap: int,
) -> Completed:
    """:func:`_captured` keeping at most ``cap`` bytes of stdout and of stderr each."""
    out, err = _Capped(cap), _Capped(cap)
    try:
        pipes = {}
        for pipe, sink in ((child.stdout, out), (child.stderr, err)):
            if pipe is not None:
                try:
                    pipes[pipe.fileno()] = sink.add
                except (OSError, ValueError, AttributeError):  # a test double's pipe
                    sink.add(pipe.read() or b"")
        deadline = None if timeout is None else start + timeout
        timed_out = _pump(child, pipes, deadline)
    except BaseException:
        _stop(child)
        raise
    finally:
        _close_pipes(child)
    return _completed(
        child, cmd, out=out.value(), err=err.value(), timed_out=timed_out, start=start
    )


def _completed(
    child: subprocess.Popen[bytes],
    cmd: Sequence[str | os.PathLike[str]],
    *,
    out: bytes,
    err: bytes,
    timed_out: bool,
    start: float,
) -> Completed:
    """The result of a captured run (a child killed before it was reaped: -SIGKILL)."""
    return Completed(
        tuple(os.fspath(c) for c in cmd),
        child.returncode if child.returncode is not None else -signal.SIGKILL,
        out,
        err,
        timed_out,
        time.monotonic() - start,
    )


def _close_pipes(child: subprocess.Popen[bytes]) -> None:
    for pipe in (child.stdout, child.stderr, child.stdin):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


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
    feeder = _feed(child, input)
    try:
        while True:
            now = time.monotonic()
            if exited_at is None and child.poll() is not None:
                exited_at = now
            step = 0.1 if exited_at is None else max(0.0, exited_at + _DRAIN_S - now)
            if deadline is not None and exited_at is None:
                step = min(step, max(0.0, deadline - now))
            try:
                out, err = child.communicate(None, step)
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
        _close_pipes(child)
        if feeder is not None:
            feeder.join(_DRAIN_S)  # the child is gone: the write ends (EPIPE at worst)
    return _completed(child, cmd, out=out or b"", err=err or b"", timed_out=timed_out, start=start)


def _feed(child: subprocess.Popen[bytes], data: bytes | None) -> threading.Thread | None:
    """Write ``data`` to the child's stdin from a thread, then close it.

    Not through ``communicate(input, timeout)``: after a first timeout, CPython neither
    accepts the input again (ValueError) nor goes on writing the rest of it, so a child
    slower than one wait step to read its input (``cat-file --batch`` of 10,000 blobs)
    would wait for it forever.
    """
    stdin = child.stdin
    if data is None or stdin is None:
        return None
    child.stdin = None  # communicate() reads the outputs only

    def write() -> None:
        try:
            stdin.write(data)
        except OSError:
            pass  # the child exited (or was stopped) without reading it all
        finally:
            with contextlib.suppress(OSError):
                stdin.close()

    thread = threading.Thread(target=write, name="superbuild-stdin", daemon=True)
    thread.start()
    return thread


def _logged(
    child: subprocess.Popen[bytes],
    cmd: Sequence[str | os.PathLike[str]],
    timeout: float | None,
    start: float,
    pipe: tuple[int, Callable[[bytes], object]] | None = None,
) -> Completed:
    """Wait for ``child`` (at most ``timeout``); with ``pipe`` (fd, sink), feed its
    output to the sink meanwhile."""
    timed_out = False
    try:
        if pipe is not None:
            deadline = None if timeout is None else start + timeout
            timed_out = _pump(child, dict([pipe]), deadline)
        else:
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


def finish_started(started: Started, *, check: bool = True, what: str | None = None) -> Completed:
    """Collect a process :mod:`superbuild.prestart` started (as :func:`run` collects its
    own): its output, its exit status; ``check`` raises :class:`ProcessError`.  On
    Ctrl-C (or any error) its process group is killed and it is reaped."""
    chunks: list[bytes] = []  # stderr: as much as came before the join below

    def drain() -> None:  # closes the descriptor it reads: no other thread touches it
        try:
            while chunk := os.read(started.err, 1 << 16):
                chunks.append(chunk)
        except OSError:
            pass
        finally:
            os.close(started.err)

    reader = threading.Thread(target=drain, name="superbuild-stderr", daemon=True)
    reader.start()
    out: list[bytes] = []
    status = None
    try:
        while chunk := os.read(started.out, 1 << 16):
            out.append(chunk)
        _, status = os.waitpid(started.pid, 0)
    finally:
        if status is None:
            with contextlib.suppress(OSError):
                os.killpg(started.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(started.pid, 0)
        reader.join(_DRAIN_S)  # a descendant holding stderr open cannot hold the caller
        with contextlib.suppress(OSError):
            os.close(started.out)
    result = Completed(
        started.argv,
        os.waitstatus_to_exitcode(status),
        b"".join(out),
        b"".join(chunks),
        False,
        time.monotonic() - started.started,
    )
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
    cap: int = 0,
) -> Completed:
    """Start ``cmd`` with ``spawn`` (stdin closed unless there is input), capture its
    output (at most ``cap`` bytes of each stream, see :class:`_Capped`; 0: all of it);
    ``done(child)`` is called however it ends."""
    if cap > 0 and input is not None:
        raise ValueError("a capped capture takes no input")
    start = time.monotonic()
    # A command that may time out, or a user's command (capped), is marked: what it
    # leaves running (a daemon that left its process group) is stopped when it ends.
    step = ""
    before = None
    if cap > 0 or timeout is not None:
        step = f"{os.getpid()}-{next(_step_counter)}"
        env = {**(os.environ if env is None else env), STEP_MARKER: step}
        before = census()
    child = spawn(
        cmd,
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        if cap > 0:
            return _captured_capped(child, cmd, timeout, start, cap)
        return _captured(child, cmd, input, timeout, start)
    finally:
        if done is not None:
            done(child)
        if step:
            kill_marked(STEP_MARKER, step, since=before)


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
        cap: int = 0,
    ) -> Completed:
        """:func:`run`, as a child of this session.

        ``cap`` > 0 keeps at most that many bytes of stdout and of stderr each (the first
        and the last half, :func:`cut_line` between them), read as they come: for user
        commands (the hook's ``verify``), whose output may have no end.  0 keeps it all
        (git's output must stay complete).
        """
        result = _run_captured(
            self._start,
            cmd,
            cwd=cwd,
            env=env,
            input=input,
            timeout=timeout,
            done=self._forget,
            cap=cap,
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

        A :class:`CappedLog` gets the output through a pipe (so that it keeps its head
        and tail only); any other file is given to the child as it is.  Raises
        :class:`~superbuild.errors.Interrupted` when the session was cancelled before or
        while it ran.
        """
        start = time.monotonic()
        log.flush()
        step = f"{os.getpid()}-{next(_step_counter)}"
        env = {**(os.environ if env is None else env), STEP_MARKER: step}
        read_end = -1
        out: int | IO[bytes] = log
        if isinstance(log, CappedLog) and log.cap > 0:
            read_end, out = os.pipe()
        before = census()  # what runs now is not the step's
        try:
            child = self._start(
                cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )
        except BaseException:
            if read_end >= 0:
                os.close(read_end)
            raise
        finally:
            if isinstance(out, int):
                os.close(out)  # the child holds the write end now
        try:
            pipe = None if read_end < 0 else (read_end, log.write)
            result = _logged(child, cmd, timeout, start, pipe)
        finally:
            self._forget(child)
            # Daemons the step left behind (``sleep 600 &``, ``setsid ...``) end with it.
            left = kill_marked(STEP_MARKER, step, since=before)
            if read_end >= 0:
                with contextlib.suppress(OSError, ValueError):
                    _drain(read_end, log.write)
                os.close(read_end)
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
